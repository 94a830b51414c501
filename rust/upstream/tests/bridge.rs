//! The bridge as the event loop uses it: calls started from one thread, their events
//! collected from the completion queue; cancellation, backpressure and shutdown.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{read_request, serve, timeouts, url, write_answer, write_chunk, write_stream_head};
use floopy_upstream::{Bridge, CallId, Config, Error, Event};

const WINDOW: usize = 4096;

fn bridge() -> Bridge {
    Bridge::start(Config::default(), WINDOW).unwrap()
}

fn start_stream(bridge: &Bridge, addr: std::net::SocketAddr) -> CallId {
    let prepared = bridge
        .client()
        .prepare(
            &url(addr),
            [],
            Bytes::new(),
            timeouts(Some(5000), Some(10_000)),
        )
        .unwrap();
    bridge.stream(prepared)
}

/// Collects the call's events until `done` says so (the test's servers run on this runtime,
/// so waiting must yield to it).
async fn events_until(
    bridge: &Bridge,
    call: CallId,
    done: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let mut seen = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(10);
    while !done(&seen) {
        assert!(Instant::now() < give_up, "no end after {seen:?}");
        seen.extend(
            bridge
                .take()
                .into_iter()
                .filter(|(id, _)| *id == call)
                .map(|(_, e)| e),
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    seen
}

fn over(events: &[Event]) -> bool {
    matches!(
        events.last(),
        Some(Event::Answered(_) | Event::Ended | Event::Failed(_))
    )
}

fn chunk_bytes(events: &[Event]) -> usize {
    events
        .iter()
        .map(|e| if let Event::Chunk(c) = e { c.len() } else { 0 })
        .sum()
}

#[tokio::test]
async fn a_fetch_ends_in_one_answer() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_answer(
            &mut stream,
            "200 OK",
            "x-request-id: abc\r\n",
            b"{\"ok\":true}",
        )
        .await;
    })
    .await;
    let bridge = bridge();
    let prepared = bridge
        .client()
        .prepare(
            &url(addr),
            [],
            Bytes::from_static(b"{}"),
            timeouts(None, Some(5000)),
        )
        .unwrap();
    let call = bridge.fetch(prepared);
    let events = events_until(&bridge, call, over).await;
    let [Event::Answered(response)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(response.head.status, 200);
    assert_eq!(&response.body[..], b"{\"ok\":true}");
    assert_eq!(bridge.in_flight(), 0);
}

#[tokio::test]
async fn a_stream_opens_then_relays_chunks_then_ends() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_stream_head(&mut stream).await.unwrap();
        for i in 0..3 {
            write_chunk(&mut stream, format!("data: {i}\n\n").as_bytes())
                .await
                .unwrap();
        }
        write_chunk(&mut stream, b"").await.unwrap();
    })
    .await;
    let bridge = bridge();
    let call = start_stream(&bridge, addr);
    let events = events_until(&bridge, call, over).await;
    assert!(matches!(events.first(), Some(Event::Opened(head)) if head.status == 200));
    assert!(matches!(events.last(), Some(Event::Ended)));
    assert_eq!(chunk_bytes(&events), 27);
}

#[tokio::test]
async fn a_refused_call_fails() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let bridge = bridge();
    let call = start_stream(&bridge, addr);
    let events = events_until(&bridge, call, over).await;
    assert!(
        matches!(&events[..], [Event::Failed(Error::Connect(_))]),
        "{events:?}"
    );
}

#[tokio::test]
async fn cancel_closes_the_upstream_connection() {
    let sent = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicBool::new(false));
    let (sent_by_server, closed_by_server) = (Arc::clone(&sent), Arc::clone(&closed));
    let addr = serve(move |mut stream| {
        let (sent, closed) = (Arc::clone(&sent_by_server), Arc::clone(&closed_by_server));
        async move {
            read_request(&mut stream).await.unwrap();
            write_stream_head(&mut stream).await.unwrap();
            for _ in 0..500 {
                if write_chunk(&mut stream, b"data: drip\n\n").await.is_err() {
                    closed.store(true, Ordering::SeqCst);
                    return;
                }
                sent.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    })
    .await;
    let bridge = bridge();
    let call = start_stream(&bridge, addr);
    events_until(&bridge, call, |e| {
        e.iter().any(|e| matches!(e, Event::Chunk(_)))
    })
    .await;
    assert!(bridge.cancel(call));
    assert_eq!(bridge.in_flight(), 0);
    assert!(!bridge.cancel(call), "a second cancel finds nothing");
    let give_up = Instant::now() + Duration::from_secs(5);
    while !closed.load(Ordering::SeqCst) && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        closed.load(Ordering::SeqCst),
        "the server kept writing to an open connection"
    );
    assert!(sent.load(Ordering::SeqCst) < 500);
    assert!(!bridge
        .take()
        .iter()
        .any(|(id, e)| *id == call && matches!(e, Event::Ended)));
}

#[tokio::test]
async fn an_unread_stream_stops_at_its_window_until_consumed() {
    const CHUNK: usize = 1024;
    const CHUNKS: usize = 64;
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_stream_head(&mut stream).await.unwrap();
        for _ in 0..CHUNKS {
            write_chunk(&mut stream, &[b'x'; CHUNK]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        write_chunk(&mut stream, b"").await.unwrap();
    })
    .await;
    let bridge = bridge();
    let call = start_stream(&bridge, addr);
    // Never consumed: the queue holds one window and at most one more chunk, then stops.
    let mut events = events_until(&bridge, call, |e| chunk_bytes(e) > WINDOW).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    events.extend(bridge.take().into_iter().map(|(_, e)| e));
    let queued = chunk_bytes(&events);
    assert!(
        queued <= WINDOW + CHUNK,
        "{queued} bytes queued past a {WINDOW}-byte window"
    );
    assert!(!over(&events));
    // Consuming what arrived lets the rest through.
    let mut total = queued;
    bridge.consumed(call, queued);
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < give_up, "the stream never finished");
        let batch: Vec<Event> = bridge.take().into_iter().map(|(_, e)| e).collect();
        let got = chunk_bytes(&batch);
        total += got;
        bridge.consumed(call, got);
        if over(&batch) {
            assert!(matches!(batch.last(), Some(Event::Ended)));
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(total, CHUNK * CHUNKS);
}

#[tokio::test]
async fn after_close_calls_fail_at_once() {
    let bridge = bridge();
    bridge.close();
    let prepared = bridge
        .client()
        .prepare(
            "http://127.0.0.1:9/",
            [],
            Bytes::new(),
            timeouts(None, None),
        )
        .unwrap();
    let call = bridge.fetch(prepared);
    let events = events_until(&bridge, call, over).await;
    assert!(
        matches!(&events[..], [Event::Failed(Error::Closed)]),
        "{events:?}"
    );
}

/// Upper-cases what it reads, and stops at a `!`: a translator the tests can see through.
struct Upper;

impl floopy_upstream::Translate for Upper {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
        let stop = chunk.iter().position(|b| *b == b'!');
        let kept = &chunk[..stop.unwrap_or(chunk.len())];
        out.extend(kept.iter().map(u8::to_ascii_uppercase));
        stop.is_none()
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<end>");
    }
}

fn start_relay(bridge: &Bridge, addr: std::net::SocketAddr, idle_ms: u64) -> CallId {
    let prepared = bridge
        .client()
        .prepare(
            &url(addr),
            [],
            Bytes::new(),
            timeouts(Some(5000), Some(10_000)),
        )
        .unwrap();
    let relay = floopy_upstream::Relay {
        translate: Box::new(Upper),
        first_event: Some(Duration::from_secs(5)),
        idle: Some(Duration::from_millis(idle_ms)),
    };
    bridge.relay(prepared, relay)
}

#[tokio::test]
async fn a_relayed_stream_fills_its_outbox_and_says_so_once_per_take() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_stream_head(&mut stream).await.unwrap();
        for word in ["one ", "two ", "three "] {
            write_chunk(&mut stream, word.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        write_chunk(&mut stream, b"").await.unwrap();
    })
    .await;
    let bridge = bridge();
    let call = start_relay(&bridge, addr, 5000);
    // Not taken until the end: every chunk joins the outbox under the one Ready.
    let events = events_until(&bridge, call, over).await;
    let readies = events.iter().filter(|e| matches!(e, Event::Ready)).count();
    assert!(matches!(events.first(), Some(Event::Opened(_))));
    assert!(matches!(events.last(), Some(Event::Ended)));
    assert_eq!(readies, 1, "{events:?}");
    assert_eq!(bridge.take_out(call), b"ONE TWO THREE <end>");
    assert!(bridge.take_out(call).is_empty());
    bridge.release(call);
}

#[tokio::test]
async fn a_relayed_stream_gone_silent_fails_at_its_idle_limit() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_stream_head(&mut stream).await.unwrap();
        write_chunk(&mut stream, b"first").await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let bridge = bridge();
    let call = start_relay(&bridge, addr, 100);
    let events = events_until(&bridge, call, over).await;
    let Some(Event::Failed(Error::Timeout { phase })) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(phase.as_str(), "first_byte");
    assert_eq!(bridge.take_out(call), b"FIRST", "what came is still there");
}

#[tokio::test]
async fn a_relayed_stream_stops_where_its_translator_says() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_stream_head(&mut stream).await.unwrap();
        let _ = write_chunk(&mut stream, b"ok!never").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let bridge = bridge();
    let call = start_relay(&bridge, addr, 5000);
    let events = events_until(&bridge, call, over).await;
    assert!(matches!(events.last(), Some(Event::Ended)), "{events:?}");
    assert_eq!(bridge.take_out(call), b"OK", "no finish after a stop");
}

#[tokio::test]
async fn a_relayed_call_answered_with_an_error_comes_back_whole() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_answer(&mut stream, "429 Too Many Requests", "", b"{\"error\":{}}").await;
    })
    .await;
    let bridge = bridge();
    let call = start_relay(&bridge, addr, 5000);
    let events = events_until(&bridge, call, over).await;
    let [Event::Answered(response)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(response.head.status, 429);
    assert_eq!(&response.body[..], b"{\"error\":{}}");
}
