//! Local upstreams for the client's tests: raw TCP servers that write HTTP/1.1 by hand, so a
//! test controls every byte and every pause (slow heads, cut streams, resets).

#![allow(dead_code)] // each test file uses its own share of the helpers

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use floopy_upstream::Timeouts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves each accepted connection with `handle` on the test's runtime.
pub async fn serve<H, F>(handle: H) -> SocketAddr
where
    H: Fn(TcpStream) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream));
        }
    });
    addr
}

/// One request as received: its head (request line and headers, lower-cased) and body.
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

/// Reads one request; None when the client closed the connection first.
pub async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = find(&data, b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some(Received {
        head,
        body: data[head_end..head_end + length].to_vec(),
    })
}

fn find(data: &[u8], needle: &[u8]) -> Option<usize> {
    data.windows(needle.len()).position(|w| w == needle)
}

/// A whole answer with a content-length (the connection stays open for the next request).
pub async fn write_answer(stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
}

/// The head of a chunked (streamed) answer.
pub async fn write_stream_head(stream: &mut TcpStream) -> std::io::Result<()> {
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await
}

/// One chunk of a chunked body (an empty `data` ends the body).
pub async fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\r\n");
    stream.write_all(&frame).await?;
    stream.flush().await
}

pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/v1/chat/completions")
}

pub fn timeouts(first_byte_ms: Option<u64>, total_ms: Option<u64>) -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        first_byte: first_byte_ms.map(Duration::from_millis),
        total: total_ms.map(Duration::from_millis),
    }
}
