//! The client as an event loop sees it: start a call, get its number back at once, and
//! collect what happened to it later from the completion queue.
//!
//! A fetch ends with one event (`Answered` or `Failed`). A stream sends `Opened` (status and
//! headers), then `Chunk`s as they arrive, then `Ended` or `Failed`. Streams are bounded: once
//! `window` bytes were queued that the caller has not reported `consumed`, the call stops
//! reading from the provider until it does, so a slow client slows the provider down instead
//! of filling the gateway's memory. `cancel` aborts a call at any point and closes its
//! connection (a client that went away must not keep the provider generating).
//!
//! A relayed stream (`relay`) goes further: its chunks never cross to the event loop one by
//! one. The runtime thread reads them, turns them into what the client gets (a [`Translate`])
//! and appends the result to the call's outbox; `Ready` says the outbox went from empty to
//! holding bytes, once, however many chunks join it before the event loop `take`s them. The
//! window then counts the outbox's bytes. Before the stream's first event a read must come by
//! the relay's `first_event` limit, after it no read may wait longer than `idle`; both are
//! reported as the first-byte phase (the caller knows which it was).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::{timeout_at, Instant};

use crate::client::{Client, Config, Head, Prepared, Response};
use crate::completions::Completions;
use crate::error::{Error, Phase, Result};
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
    /// A relayed stream's outbox holds bytes (see [`Bridge::take_out`]).
    Ready,
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
    /// Relayed streams' outboxes, kept past the call's end until `release`: the last bytes
    /// may still wait there when the call is over.
    outboxes: Mutex<HashMap<CallId, Arc<Outbox>>>,
}

/// Turns a stream's upstream bytes into what its client gets, on the runtime thread.
pub trait Translate: Send + 'static {
    /// Appends to `out` what `chunk` completes; false once the stream must stop here (an
    /// event too long to be real: the translator says so to whoever reads it afterwards).
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool;
    /// The end of the upstream body: appends what it completes.
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// How a relayed stream is read: its translator and its time limits between reads.
pub struct Relay {
    pub translate: Box<dyn Translate>,
    /// From the start of the call to the first bytes for the client.
    pub first_event: Option<Duration>,
    /// The longest silence between two reads once the first event came.
    pub idle: Option<Duration>,
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
                outboxes: Mutex::new(HashMap::new()),
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

    /// A stream read and translated on the runtime thread: `Opened` (or, for a status other
    /// than 200, `Answered` with the whole answer), then `Ready` whenever its outbox fills
    /// from empty, then `Ended` or `Failed`. Its outbox outlives the call until `release`.
    pub fn relay(&self, prepared: Prepared, relay: Relay) -> CallId {
        let client = self.client.clone();
        let credit = Arc::new(Credit::new(self.window));
        let outbox = Arc::new(Outbox::default());
        let (relayed, filled) = (Arc::clone(&credit), Arc::clone(&outbox));
        let id = self.launch(Some(credit), move |id, shared| async move {
            let pipe = Pipe {
                id,
                shared: &shared,
                credit: &relayed,
                outbox: &filled,
            };
            let event = match translate(&client, prepared, relay, &pipe).await {
                Ok(Some(answer)) => Event::Answered(answer),
                Ok(None) => Event::Ended,
                Err(err) => Event::Failed(err),
            };
            shared.finish(id, event);
        });
        self.shared.outboxes().insert(id, outbox);
        id
    }

    /// The bytes waiting in a relayed stream's outbox, taken off it (the window counts them
    /// no more); empty for a call with none.
    pub fn take_out(&self, id: CallId) -> Vec<u8> {
        let Some(outbox) = self.shared.outboxes().get(&id).cloned() else {
            return Vec::new();
        };
        let taken = outbox.take();
        self.consumed(id, taken.len());
        taken
    }

    /// Forgets a relayed stream's outbox (its caller is done with the stream).
    pub fn release(&self, id: CallId) {
        self.shared.outboxes().remove(&id);
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
                self.shared.outboxes().remove(&id);
                true
            }
            None => {
                self.shared.outboxes().remove(&id);
                false
            }
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
        self.shared.outboxes().clear();
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

    fn outboxes(&self) -> MutexGuard<'_, HashMap<CallId, Arc<Outbox>>> {
        self.outboxes.lock().unwrap_or_else(|e| e.into_inner())
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

/// Where a relayed stream's translated bytes wait for the event loop.
#[derive(Default)]
struct Outbox(Mutex<Waiting>);

#[derive(Default)]
struct Waiting {
    bytes: Vec<u8>,
    /// A `Ready` was sent that no `take` has answered yet.
    flagged: bool,
}

impl Outbox {
    /// Appends `bytes`; true when the event loop must be told (the outbox was not flagged).
    fn put(&self, bytes: &mut Vec<u8>) -> bool {
        let mut waiting = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.bytes.is_empty() {
            std::mem::swap(&mut waiting.bytes, bytes);
        } else {
            waiting.bytes.append(bytes);
        }
        !std::mem::replace(&mut waiting.flagged, true)
    }

    fn take(&self) -> Vec<u8> {
        let mut waiting = self.0.lock().unwrap_or_else(|e| e.into_inner());
        waiting.flagged = false;
        std::mem::take(&mut waiting.bytes)
    }
}

/// A relayed stream's way out: its outbox, its window, and the queue that tells the loop.
struct Pipe<'a> {
    id: CallId,
    shared: &'a Shared,
    credit: &'a Credit,
    outbox: &'a Outbox,
}

impl Pipe<'_> {
    fn post(&self, out: &mut Vec<u8>) {
        if out.is_empty() {
            return;
        }
        self.credit.queued(out.len());
        if self.outbox.put(out) {
            self.shared.completions.push(self.id, Event::Ready);
        }
        out.clear();
    }
}

/// Reads a relayed stream to its end through its translator. A status other than 200 comes
/// back whole, for the caller to read as the provider's error.
async fn translate(
    client: &Client,
    prepared: Prepared,
    mut relay: Relay,
    pipe: &Pipe<'_>,
) -> Result<Option<Response>> {
    let first_by = relay.first_event.map(|limit| Instant::now() + limit);
    let streaming = client.open(prepared).await?;
    if streaming.head.status != 200 {
        return streaming.read_rest().await.map(Some);
    }
    let mut streaming = streaming;
    pipe.shared
        .completions
        .push(pipe.id, Event::Opened(streaming.head.clone()));
    let mut out = Vec::new();
    let mut opened = false;
    loop {
        let until = if opened {
            relay.idle.map(|limit| Instant::now() + limit)
        } else {
            first_by
        };
        let read = streaming.next_chunk();
        let chunk = match until {
            None => read.await?,
            Some(at) => timeout_at(at, read).await.map_err(|_| Error::Timeout {
                phase: Phase::FirstByte,
            })??,
        };
        let Some(chunk) = chunk else { break };
        let going = relay.translate.feed(&chunk, &mut out);
        opened |= !out.is_empty();
        pipe.post(&mut out);
        if !going {
            return Ok(None);
        }
        pipe.credit.room().await;
    }
    relay.translate.finish(&mut out);
    pipe.post(&mut out);
    Ok(None)
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
