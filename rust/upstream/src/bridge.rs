//! The client as an event loop sees it: start a call, get its number back at once, and
//! collect what happened to it later from the completion queue.
//!
//! A fetch ends with one event (`Answered` or `Failed`). A stream sends `Opened` (status and
//! headers), then `Chunk`s as they arrive, then `Ended` or `Failed`. Streams are bounded: once
//! `window` bytes were queued that the caller has not reported `consumed`, the call stops
//! reading from the provider until it does, so a slow client slows the provider down instead
//! of filling the gateway's memory. `cancel` aborts a call at any point and closes its
//! connection (a client that went away must not keep the provider generating).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::client::{Client, Config, Head, Prepared, Response};
use crate::completions::Completions;
use crate::error::{Error, Result};
use crate::io_thread::IoThread;

pub type CallId = u64;

#[derive(Debug)]
pub enum Event {
    /// A fetch's whole answer, whatever its status.
    Answered(Response),
    /// A stream's status and headers; its chunks follow.
    Opened(Head),
    Chunk(Bytes),
    /// The stream's body ended normally.
    Ended,
    /// The call failed; nothing more comes for it.
    Failed(Error),
}

pub struct Bridge {
    client: Client,
    io: Mutex<Option<IoThread>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    window: usize,
}

struct Shared {
    completions: Completions<Event>,
    calls: Mutex<HashMap<CallId, Flight>>,
}

/// A call in flight: how to abort it, and a stream's unread bytes.
struct Flight {
    task: AbortHandle,
    credit: Option<Arc<Credit>>,
}

impl Bridge {
    /// Starts the runtime thread. `window` is the most bytes one stream queues unread.
    pub fn start(config: Config, window: usize) -> Result<Self> {
        let client = Client::new(config)?;
        let io = IoThread::start("floopy-upstream")?;
        let completions = Completions::new()?;
        Ok(Self {
            client,
            io: Mutex::new(Some(io)),
            shared: Arc::new(Shared {
                completions,
                calls: Mutex::new(HashMap::new()),
            }),
            next_id: AtomicU64::new(1),
            window: window.max(1),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The descriptor that turns readable when `take` has events.
    pub fn fileno(&self) -> RawFd {
        self.shared.completions.fileno()
    }

    /// Every event since the last call.
    pub fn take(&self) -> Vec<(CallId, Event)> {
        self.shared.completions.take()
    }

    /// Calls started and not yet over (nor cancelled).
    pub fn in_flight(&self) -> usize {
        self.shared.calls().len()
    }

    pub fn fetch(&self, prepared: Prepared) -> CallId {
        let client = self.client.clone();
        self.launch(None, move |id, shared| async move {
            let event = match client.fetch(prepared).await {
                Ok(response) => Event::Answered(response),
                Err(err) => Event::Failed(err),
            };
            shared.finish(id, event);
        })
    }

    pub fn stream(&self, prepared: Prepared) -> CallId {
        let client = self.client.clone();
        let credit = Arc::new(Credit::new(self.window));
        let relayed = Arc::clone(&credit);
        self.launch(Some(credit), move |id, shared| async move {
            let event = match relay(&client, prepared, id, &shared, &relayed).await {
                Ok(()) => Event::Ended,
                Err(err) => Event::Failed(err),
            };
            shared.finish(id, event);
        })
    }

    /// The caller took `bytes` of a stream's chunks off its hands.
    pub fn consumed(&self, id: CallId, bytes: usize) {
        if let Some(credit) = self.shared.calls().get(&id).and_then(|f| f.credit.clone()) {
            credit.consumed(bytes);
        }
    }

    /// Aborts a call in flight, closing its connection; no more events come for it. False
    /// when the call was already over.
    pub fn cancel(&self, id: CallId) -> bool {
        match self.shared.calls().remove(&id) {
            Some(flight) => {
                flight.task.abort();
                true
            }
            None => false,
        }
    }

    /// Stops the runtime thread: calls in flight are dropped with their connections, and
    /// calls started later fail at once with `Error::Closed`.
    pub fn close(&self) {
        let io = self.io.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut io) = io {
            io.stop();
        }
        self.shared.calls().clear();
    }

    fn launch<F, W>(&self, credit: Option<Arc<Credit>>, work: W) -> CallId
    where
        W: FnOnce(CallId, Arc<Shared>) -> F,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let Some(io) = io.as_ref() else {
            self.shared
                .completions
                .push(id, Event::Failed(Error::Closed));
            return id;
        };
        // Registered under the lock the task takes to finish, so it cannot finish (and
        // deregister) before it is registered.
        let mut calls = self.shared.calls();
        let task = io.handle().spawn(work(id, Arc::clone(&self.shared)));
        calls.insert(
            id,
            Flight {
                task: task.abort_handle(),
                credit,
            },
        );
        id
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn calls(&self) -> MutexGuard<'_, HashMap<CallId, Flight>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The call's last event. Deregistered first, so a cancel that comes after the event is
    /// a no-op rather than an abort of a finished task.
    fn finish(&self, id: CallId, event: Event) {
        self.calls().remove(&id);
        self.completions.push(id, event);
    }
}

async fn relay(
    client: &Client,
    prepared: Prepared,
    id: CallId,
    shared: &Shared,
    credit: &Credit,
) -> Result<()> {
    let mut streaming = client.open(prepared).await?;
    shared
        .completions
        .push(id, Event::Opened(streaming.head.clone()));
    while let Some(chunk) = streaming.next_chunk().await? {
        credit.queued(chunk.len());
        shared.completions.push(id, Event::Chunk(chunk));
        credit.room().await;
    }
    Ok(())
}

/// A stream's bytes queued but not yet consumed, against its window.
struct Credit {
    unread: AtomicUsize,
    window: usize,
    freed: Notify,
}

impl Credit {
    fn new(window: usize) -> Self {
        Self {
            unread: AtomicUsize::new(0),
            window,
            freed: Notify::new(),
        }
    }

    fn queued(&self, bytes: usize) {
        self.unread.fetch_add(bytes, Ordering::SeqCst);
    }

    fn consumed(&self, bytes: usize) {
        let _ = self
            .unread
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |unread| {
                Some(unread.saturating_sub(bytes))
            });
        // notify_one keeps a permit when nobody waits yet, so a wake-up is never lost.
        self.freed.notify_one();
    }

    /// Returns once the unread bytes fit in the window.
    async fn room(&self) {
        while self.unread.load(Ordering::SeqCst) > self.window {
            self.freed.notified().await;
        }
    }
}
