//! What can go wrong calling a provider. The Python bindings map each kind to one exception
//! (`rust/py/src/errors.rs`); messages never quote header values, which hold API keys.

use std::error::Error as StdError;
use std::io;

/// Which time limit of a call ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening the TCP connection.
    Connect,
    /// From the start of the call to the response's status and headers.
    FirstByte,
    /// The whole call, body or stream included.
    Total,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::FirstByte => "first_byte",
            Phase::Total => "total",
        }
    }

    fn sentence(self) -> &'static str {
        match self {
            Phase::Connect => "no connection within the connect timeout",
            Phase::FirstByte => "no response within the first-byte timeout",
            Phase::Total => "the call outlasted its total timeout",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be sent as given: a malformed URL or header (a configuration
    /// mistake, caught before anything is sent). `param` names the URL or the header.
    #[error("{message}")]
    InvalidRequest { message: String, param: String },
    /// No connection: refused, unknown host, failed TLS handshake.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A time limit ran out.
    #[error("{}", phase.sentence())]
    Timeout { phase: Phase },
    /// The connection broke, or the answer was not valid HTTP, once the request was sent.
    #[error("{0}")]
    Broken(String),
    /// A whole answer longer than the client's `max_answer_bytes`.
    #[error("sent an answer of more than {limit} bytes")]
    TooLarge { limit: usize },
    /// The runtime thread or the wake-up socket could not be made.
    #[error("cannot start the upstream client: {0}")]
    Startup(#[from] io::Error),
    /// The client was shut down (its worker is closing); nothing was sent.
    #[error("the upstream client is closed")]
    Closed,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(param: &str, message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            message: message.into(),
            param: param.to_owned(),
        }
    }

    /// Sorts a failure of hyper's pooled client: connecting, or after the request left.
    pub(crate) fn from_client(err: hyper_util::client::legacy::Error) -> Self {
        if err.is_connect() {
            if caused_by(&err, io::ErrorKind::TimedOut) {
                return Error::Timeout {
                    phase: Phase::Connect,
                };
            }
            return Error::Connect(causes(&err));
        }
        Error::Broken(causes(&err))
    }

    /// A failure while reading the body.
    pub(crate) fn from_body(err: hyper::Error) -> Self {
        Error::Broken(causes(&err))
    }
}

/// The causes of an error, outermost first, without hyper's generic outer wrapper
/// ("client error (Connect)"): "tcp connect error: Connection refused (os error 111)".
fn causes(err: &(dyn StdError + 'static)) -> String {
    let mut parts = Vec::new();
    let mut current = if err.source().is_some() {
        err.source()
    } else {
        Some(err)
    };
    while let Some(cause) = current {
        parts.push(cause.to_string());
        current = cause.source();
    }
    parts.join(": ")
}

fn caused_by(err: &(dyn StdError + 'static), kind: io::ErrorKind) -> bool {
    let mut current = Some(err);
    while let Some(cause) = current {
        if cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == kind)
        {
            return true;
        }
        current = cause.source();
    }
    false
}
