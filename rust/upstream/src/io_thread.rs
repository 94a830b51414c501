//! One thread running a current-thread tokio runtime: where every upstream call of a worker
//! process runs.
//!
//! One thread, because the gateway runs one worker process per core and the event loop of
//! that process needs most of its core; a current-thread runtime driven by `block_on` on its
//! own thread is that, without tokio's multi-thread scheduler (and its build time). It must
//! be started inside the worker process, after granian forks: a thread does not survive a
//! fork, and a runtime copied into a child would wait forever on a thread that is not there.

use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

pub struct IoThread {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl IoThread {
    pub fn start(name: &str) -> io::Result<Self> {
        let runtime = Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Calls still in flight are dropped, which closes their connections. A DNS
                // lookup blocking a helper thread is not waited for.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        Ok(Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stops the runtime and waits for its thread; calls in flight are abandoned.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        self.stop();
    }
}
