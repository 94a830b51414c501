//! The pooled client: hyper 1 over hyper-util's keep-alive pool, HTTPS through rustls, with
//! a connect, a first-byte and a total time limit per call.
//!
//! hyper-util sets the connect timeout on the connector, not on the request, so the client
//! keeps one pool per distinct connect timeout (in practice one or two: the global default
//! and a provider's own). Connections are per host either way, so splitting pools by timeout
//! costs nothing. One semaphore across all pools caps the calls in flight, as a connection
//! limit would: a call beyond it waits (inside its first-byte time) for a free slot.
//!
//! Bodies are never compressed upstream: every request says `accept-encoding: identity`
//! (LLM answers are small and their streams are never compressed anyway), so the bytes
//! relayed are the bytes read, with no decoder on the hot path. An answer encoded anyway
//! is refused as broken rather than relayed as garbage.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING};
use http::{HeaderMap, Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout_at, Instant};

use crate::error::{Error, Phase, Result};
use crate::tls;

type Pool = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How the client is built; fixed for its life.
#[derive(Debug, Clone)]
pub struct Config {
    /// Calls in flight at once, across all providers, and idle connections kept per host.
    pub max_connections: usize,
    /// How long an idle keep-alive connection stays in the pool.
    pub idle_timeout: Duration,
    /// PEM certificates trusted besides the system's (a private CA, a test server).
    pub extra_roots_pem: Option<Vec<u8>>,
    /// The largest whole (non-stream) answer read; a longer one fails with `TooLarge`
    /// rather than grow the worker without bound. Streams are bounded by their window.
    pub max_answer_bytes: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_connections: 256,
            idle_timeout: Duration::from_secs(30),
            extra_roots_pem: None,
            max_answer_bytes: None,
        }
    }
}

/// The time limits of one call. `first_byte` runs from the start of the call to the
/// response's status and headers (a non-stream answer's headers come with its whole body,
/// so callers usually leave it to `total`); `total` bounds the whole call, stream included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Option<Duration>,
    pub total: Option<Duration>,
}

/// A POST ready to send: URL and headers already checked, so a mistake in them is an error
/// at the caller, before any task starts.
#[derive(Debug)]
pub struct Prepared {
    request: http::Request<Full<Bytes>>,
    timeouts: Timeouts,
}

/// Status and headers of an answer; header names are lower-case, values read as UTF-8
/// (bytes that are not become U+FFFD).
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

/// A whole answer.
#[derive(Debug)]
pub struct Response {
    pub head: Head,
    pub body: Bytes,
}

/// An answer whose body is still arriving. Dropping it closes the connection, unless the
/// body was read to its end (then the connection goes back to the pool).
#[derive(Debug)]
pub struct Streaming {
    pub head: Head,
    body: Incoming,
    deadline: Option<Instant>,
    _slot: OwnedSemaphorePermit,
}

impl Streaming {
    /// The rest of the body, whole (an error answer), within the call's limits.
    pub async fn read_rest(self) -> Result<Response> {
        let body = within(self.deadline, read_all(self.body, Some(ERROR_BODY_LIMIT))).await??;
        Ok(Response {
            head: self.head,
            body,
        })
    }

    /// The next piece of the body as the connection delivered it; None at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            match within(self.deadline, self.body.frame()).await? {
                None => return Ok(None),
                Some(Err(err)) => return Err(Error::from_body(err)),
                Some(Ok(frame)) => {
                    // Trailers, and empty data frames, carry nothing to relay.
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }
}

/// The most of an error answer read from a stream's call: an error body is small.
const ERROR_BODY_LIMIT: usize = 1024 * 1024;

/// Cheap to clone: clones share the pools and the limit on calls in flight.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    pools: Mutex<HashMap<Duration, Pool>>,
    tls: rustls::ClientConfig,
    slots: Arc<Semaphore>,
    idle_per_host: usize,
    idle_timeout: Duration,
    max_answer_bytes: Option<usize>,
}

impl Client {
    /// Reads the system's certificate store; needs no runtime (pools are made on first use,
    /// inside the runtime that runs the calls).
    pub fn new(config: Config) -> Result<Self> {
        if config.max_connections == 0 || config.max_connections > Semaphore::MAX_PERMITS {
            return Err(Error::invalid(
                "max_connections",
                format!(
                    "max_connections must be between 1 and {}",
                    Semaphore::MAX_PERMITS
                ),
            ));
        }
        let tls = tls::client_config(config.extra_roots_pem.as_deref())?;
        Ok(Self {
            inner: Arc::new(Inner {
                pools: Mutex::new(HashMap::new()),
                tls,
                slots: Arc::new(Semaphore::new(config.max_connections)),
                idle_per_host: config.max_connections,
                idle_timeout: config.idle_timeout,
                max_answer_bytes: config.max_answer_bytes,
            }),
        })
    }

    /// Checks and builds a POST of `body` to `url`.
    pub fn prepare<'a>(
        &self,
        url: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: Bytes,
        timeouts: Timeouts,
    ) -> Result<Prepared> {
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::invalid("url", format!("bad upstream URL {url:?}: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(Error::invalid(
                "url",
                format!("upstream URL {url:?} is not an absolute http(s) URL"),
            ));
        }
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        fill_headers(request.headers_mut(), headers)?;
        Ok(Prepared { request, timeouts })
    }

    /// Sends the request and reads the whole answer, whatever its status.
    pub async fn fetch(&self, prepared: Prepared) -> Result<Response> {
        let deadline = deadline(prepared.timeouts.total);
        let (response, _slot) = self.send(prepared).await?;
        let head = head_of(&response)?;
        let limit = self.inner.max_answer_bytes;
        let body = within(deadline, read_all(response.into_body(), limit)).await??;
        Ok(Response { head, body })
    }

    /// Sends the request and returns once status and headers are in; the body follows.
    pub async fn open(&self, prepared: Prepared) -> Result<Streaming> {
        let deadline = deadline(prepared.timeouts.total);
        let (response, slot) = self.send(prepared).await?;
        let head = head_of(&response)?;
        Ok(Streaming {
            head,
            body: response.into_body(),
            deadline,
            _slot: slot,
        })
    }

    async fn send(
        &self,
        prepared: Prepared,
    ) -> Result<(http::Response<Incoming>, OwnedSemaphorePermit)> {
        let Prepared { request, timeouts } = prepared;
        let pool = self.pool(timeouts.connect);
        let slots = Arc::clone(&self.inner.slots);
        let exchange = async move {
            let slot = slots.acquire_owned().await.map_err(|_| Error::Closed)?;
            let response = pool.request(request).await.map_err(Error::from_client)?;
            Ok((response, slot))
        };
        match head_limit(Instant::now(), timeouts) {
            None => exchange.await,
            Some((at, phase)) => timeout_at(at, exchange)
                .await
                .map_err(|_| Error::Timeout { phase })?,
        }
    }

    fn pool(&self, connect_timeout: Duration) -> Pool {
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .entry(connect_timeout)
            .or_insert_with(|| self.new_pool(connect_timeout))
            .clone()
    }

    fn new_pool(&self, connect_timeout: Duration) -> Pool {
        let mut http = HttpConnector::new();
        http.enforce_http(false); // the TLS layer above handles https URLs
        http.set_connect_timeout(Some(connect_timeout));
        // Requests are small: Nagle would hold them back waiting for an ACK.
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.inner.tls.clone())
            .https_or_http()
            // HTTP/2 where the server offers it through ALPN, HTTP/1.1 otherwise.
            .enable_all_versions()
            .wrap_connector(http);
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(self.inner.idle_per_host)
            .pool_idle_timeout(self.inner.idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https)
    }
}

fn fill_headers<'a>(
    map: &mut HeaderMap,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<()> {
    for (name, value) in headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::invalid(name, format!("bad header name {name:?}")))?;
        // Never quote the value: it may be an API key.
        let value = HeaderValue::from_str(value)
            .map_err(|_| Error::invalid(name, format!("header {name} has a bad value")))?;
        // Names differing only in case are one header: the last one given wins.
        map.insert(header, value);
    }
    // Always, even over a configured header: nothing here could decode another encoding.
    map.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    Ok(())
}

fn head_of(response: &http::Response<Incoming>) -> Result<Head> {
    let headers = response.headers();
    if let Some(encoding) = headers.get(CONTENT_ENCODING) {
        if !encoding.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err(Error::Broken(format!(
                "the provider sent a {}-encoded body although the gateway asked for identity",
                String::from_utf8_lossy(encoding.as_bytes())
            )));
        }
    }
    let headers = headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    Ok(Head {
        status: response.status().as_u16(),
        headers,
    })
}

async fn read_all(mut body: Incoming, limit: Option<usize>) -> Result<Bytes> {
    let mut whole = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(Error::from_body)?.into_data() {
            if limit.is_some_and(|limit| whole.len() + data.len() > limit) {
                // Dropping the body closes the connection: the rest is never read.
                return Err(Error::TooLarge {
                    limit: limit.unwrap_or_default(),
                });
            }
            whole.extend_from_slice(&data);
        }
    }
    Ok(whole.freeze())
}

fn deadline(limit: Option<Duration>) -> Option<Instant> {
    limit.map(|limit| Instant::now() + limit)
}

/// When the status and headers must be in by, and which limit that is: the earlier of the
/// first-byte and the total limit.
fn head_limit(start: Instant, timeouts: Timeouts) -> Option<(Instant, Phase)> {
    let first_byte = timeouts.first_byte.map(|t| (start + t, Phase::FirstByte));
    let total = timeouts.total.map(|t| (start + t, Phase::Total));
    match (first_byte, total) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

async fn within<F: Future>(deadline: Option<Instant>, work: F) -> Result<F::Output> {
    match deadline {
        None => Ok(work.await),
        Some(at) => timeout_at(at, work).await.map_err(|_| Error::Timeout {
            phase: Phase::Total,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts(first_byte: Option<u64>, total: Option<u64>) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(1),
            first_byte: first_byte.map(Duration::from_secs),
            total: total.map(Duration::from_secs),
        }
    }

    #[test]
    fn head_waits_for_the_earlier_limit() {
        let start = Instant::now();
        let limit = |f, t| head_limit(start, timeouts(f, t)).map(|(at, p)| (at - start, p));
        assert_eq!(limit(None, None), None);
        assert_eq!(
            limit(Some(5), Some(9)),
            Some((Duration::from_secs(5), Phase::FirstByte))
        );
        assert_eq!(
            limit(Some(9), Some(5)),
            Some((Duration::from_secs(5), Phase::Total))
        );
        assert_eq!(
            limit(None, Some(7)),
            Some((Duration::from_secs(7), Phase::Total))
        );
    }

    #[test]
    fn prepare_refuses_bad_urls_and_headers_without_quoting_values() {
        let client = Client::new(Config::default()).unwrap();
        let t = timeouts(None, None);
        let bad_url = client
            .prepare("not a url", [], Bytes::new(), t)
            .unwrap_err();
        assert!(matches!(bad_url, Error::InvalidRequest { ref param, .. } if param == "url"));
        let relative = client.prepare("/v1/chat", [], Bytes::new(), t).unwrap_err();
        assert!(matches!(relative, Error::InvalidRequest { .. }));
        let secret = "sk-secret\n";
        let bad_value = client
            .prepare("http://x/", [("authorization", secret)], Bytes::new(), t)
            .unwrap_err();
        assert!(!bad_value.to_string().contains("sk-secret"));
        assert!(
            matches!(bad_value, Error::InvalidRequest { ref param, .. } if param == "authorization")
        );
    }

    #[test]
    fn prepare_always_asks_for_identity() {
        let client = Client::new(Config::default()).unwrap();
        let t = timeouts(None, None);
        let plain = client.prepare("http://x/", [], Bytes::new(), t).unwrap();
        assert_eq!(plain.request.headers()[ACCEPT_ENCODING], "identity");
        let told = client
            .prepare("http://x/", [("Accept-Encoding", "gzip")], Bytes::new(), t)
            .unwrap();
        assert_eq!(told.request.headers()[ACCEPT_ENCODING], "identity");
    }

    #[test]
    fn a_header_named_twice_in_different_cases_is_sent_once() {
        let client = Client::new(Config::default()).unwrap();
        let headers = [
            ("Content-Type", "text/plain"),
            ("content-type", "application/json"),
        ];
        let prepared = client
            .prepare("http://x/", headers, Bytes::new(), timeouts(None, None))
            .unwrap();
        let sent: Vec<_> = prepared
            .request
            .headers()
            .get_all("content-type")
            .iter()
            .collect();
        assert_eq!(sent, ["application/json"]);
    }

    #[test]
    fn zero_connections_is_refused() {
        let config = Config {
            max_connections: 0,
            ..Config::default()
        };
        assert!(Client::new(config).is_err());
    }
}
