//! The client against local servers: answers, streams, keep-alive, time limits, refused and
//! broken connections, and HTTPS with HTTP/2 negotiated through ALPN.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{read_request, serve, timeouts, url, write_answer, write_chunk, write_stream_head};
use floopy_upstream::{Client, Config, Error, Phase, Timeouts};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

fn client() -> Client {
    Client::new(Config::default()).unwrap()
}

async fn post(client: &Client, url: &str, t: Timeouts) -> Result<(u16, Bytes), Error> {
    let prepared = client.prepare(url, [], Bytes::from_static(b"{}"), t)?;
    let response = client.fetch(prepared).await?;
    Ok((response.head.status, response.body))
}

#[tokio::test]
async fn fetch_sends_the_post_and_reads_status_headers_and_body() {
    let (seen, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let addr = serve(move |mut stream| {
        let seen = seen.clone();
        async move {
            let request = read_request(&mut stream).await.unwrap();
            seen.send(request).unwrap();
            write_answer(
                &mut stream,
                "429 Too Many Requests",
                "Retry-After: 3\r\n",
                b"slow down",
            )
            .await;
        }
    })
    .await;
    let client = client();
    let headers = [
        ("authorization", "Bearer sk-test"),
        ("content-type", "application/json"),
    ];
    let prepared = client
        .prepare(
            &url(addr),
            headers,
            Bytes::from_static(b"{\"model\":\"m\"}"),
            timeouts(None, Some(5000)),
        )
        .unwrap();
    let response = client.fetch(prepared).await.unwrap();
    assert_eq!(response.head.status, 429);
    assert!(response
        .head
        .headers
        .contains(&("retry-after".into(), "3".into())));
    assert_eq!(&response.body[..], b"slow down");
    let request = heard.recv().await.unwrap();
    assert!(request
        .head
        .starts_with("post /v1/chat/completions http/1.1\r\n"));
    assert!(request.head.contains("authorization: bearer sk-test\r\n"));
    assert!(request.head.contains("accept-encoding: identity\r\n"));
    assert_eq!(request.body, b"{\"model\":\"m\"}");
}

#[tokio::test]
async fn a_whole_answer_over_the_limit_is_refused_and_one_within_it_read() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_answer(&mut stream, "200 OK", "", &[b'x'; 4096]).await;
    })
    .await;
    let capped = |limit| {
        Client::new(Config {
            max_answer_bytes: Some(limit),
            ..Config::default()
        })
        .unwrap()
    };
    let err = post(&capped(4095), &url(addr), timeouts(None, Some(5000)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 4095 }), "{err:?}");
    let (status, body) = post(&capped(4096), &url(addr), timeouts(None, Some(5000)))
        .await
        .unwrap();
    assert_eq!((status, body.len()), (200, 4096));
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let addr = serve(move |mut stream| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            while read_request(&mut stream).await.is_some() {
                write_answer(&mut stream, "200 OK", "", b"ok").await;
            }
        }
    })
    .await;
    let client = client();
    for _ in 0..3 {
        let (status, body) = post(&client, &url(addr), timeouts(None, Some(5000)))
            .await
            .unwrap();
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_stream_arrives_chunk_by_chunk() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_stream_head(&mut stream).await.unwrap();
        for i in 0..3 {
            write_chunk(&mut stream, format!("data: {i}\n\n").as_bytes())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        write_chunk(&mut stream, b"").await.unwrap();
    })
    .await;
    let client = client();
    let prepared = client
        .prepare(
            &url(addr),
            [],
            Bytes::new(),
            timeouts(Some(5000), Some(5000)),
        )
        .unwrap();
    let mut streaming = client.open(prepared).await.unwrap();
    assert_eq!(streaming.head.status, 200);
    let mut chunks = Vec::new();
    while let Some(chunk) = streaming.next_chunk().await.unwrap() {
        chunks.push(chunk);
    }
    assert_eq!(chunks.len(), 3, "each pause ends a read: {chunks:?}");
    assert_eq!(chunks.concat(), b"data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

#[tokio::test]
async fn a_slow_first_byte_times_out() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let err = post(&client(), &url(addr), timeouts(Some(200), Some(5000)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::FirstByte
            }
        ),
        "{err:?}"
    );
    // Without a first-byte limit, the total limit bounds the wait for the head too.
    let err = post(&client(), &url(addr), timeouts(None, Some(200)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Total
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_total_limit_cuts_a_stream_that_stalls() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_stream_head(&mut stream).await.unwrap();
        write_chunk(&mut stream, b"data: 0\n\n").await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let client = client();
    let prepared = client
        .prepare(
            &url(addr),
            [],
            Bytes::new(),
            timeouts(Some(5000), Some(300)),
        )
        .unwrap();
    let mut streaming = client.open(prepared).await.unwrap();
    assert_eq!(
        streaming.next_chunk().await.unwrap().unwrap(),
        "data: 0\n\n"
    );
    let err = streaming.next_chunk().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Total
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = post(&client(), &url(addr), timeouts(None, Some(5000)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn a_connection_never_accepted_hits_the_connect_timeout() {
    // A listener whose accept queue is full and never drained: Linux then drops further
    // SYNs, so a connect hangs the way it does to a host that is down.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let _listener = socket.listen(0).unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
        {
            fillers.push(stream);
        }
    }
    let t = Timeouts {
        connect: Duration::from_millis(300),
        ..timeouts(None, Some(10_000))
    };
    let err = post(&client(), &url(addr), t).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Connect
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_reset_mid_stream_is_a_broken_stream() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_stream_head(&mut stream).await.unwrap();
        write_chunk(&mut stream, b"data: 0\n\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.set_zero_linger().unwrap(); // close with a RST
    })
    .await;
    let client = client();
    let prepared = client
        .prepare(&url(addr), [], Bytes::new(), timeouts(None, Some(5000)))
        .unwrap();
    let mut streaming = client.open(prepared).await.unwrap();
    assert_eq!(
        streaming.next_chunk().await.unwrap().unwrap(),
        "data: 0\n\n"
    );
    let err = streaming.next_chunk().await.unwrap_err();
    assert!(matches!(err, Error::Broken(_)), "{err:?}");
}

#[tokio::test]
async fn a_compressed_answer_is_refused() {
    let addr = serve(|mut stream| async move {
        read_request(&mut stream).await.unwrap();
        write_answer(
            &mut stream,
            "200 OK",
            "content-encoding: gzip\r\n",
            b"\x1f\x8b",
        )
        .await;
    })
    .await;
    let err = post(&client(), &url(addr), timeouts(None, Some(5000)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Broken(ref m) if m.contains("gzip")),
        "{err:?}"
    );
}

mod https {
    use super::*;
    use http_body_util::Full;
    use hyper::server::conn::{http1, http2};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio_rustls::rustls;

    /// An HTTPS server for `localhost` that offers HTTP/2 and answers with the protocol
    /// version it served; returns its address and its certificate (PEM).
    async fn tls_server() -> (std::net::SocketAddr, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let pem = cert.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    let service = hyper::service::service_fn(
                        |request: hyper::Request<hyper::body::Incoming>| async move {
                            let version = format!("{:?}", request.version());
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(version),
                            )))
                        },
                    );
                    let io = TokioIo::new(tls);
                    if h2 {
                        let _ = http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await;
                    } else {
                        let _ = http1::Builder::new().serve_connection(io, service).await;
                    }
                });
            }
        });
        (addr, pem)
    }

    #[tokio::test]
    async fn https_negotiates_http2_with_a_trusted_certificate() {
        let (addr, pem) = tls_server().await;
        let config = Config {
            extra_roots_pem: Some(pem.into_bytes()),
            ..Config::default()
        };
        let client = Client::new(config).unwrap();
        let url = format!("https://localhost:{}/v1/messages", addr.port());
        let (status, body) = post(&client, &url, timeouts(None, Some(5000)))
            .await
            .unwrap();
        assert_eq!((status, &body[..]), (200, &b"HTTP/2.0"[..]));
    }

    #[tokio::test]
    async fn https_refuses_an_untrusted_certificate() {
        let (addr, _) = tls_server().await;
        let url = format!("https://localhost:{}/v1/messages", addr.port());
        let err = post(&client(), &url, timeouts(None, Some(5000)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Connect(ref m) if m.contains("certificate")),
            "{err:?}"
        );
    }
}
