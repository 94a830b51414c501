//! The one place where core and upstream errors become Python exceptions: the classes of
//! `floopy.errors`, imported once, so the gateway has a single error tree.
//!
//! Core errors: a body over the limit is `PayloadTooLarge`; the rest are `InvalidJson`,
//! `InvalidField` or `InvalidHeader` (all `InvalidInput`, a `BadRequest` and a `ValueError`),
//! with `param` the field's dotted path or the header's name. I/O errors become `OSError`.
//!
//! The upstream client's errors: a provider that cannot be reached or breaks the connection
//! is `UpstreamError`; a time limit that ran out is `UpstreamTimeout` with `phase`
//! ("connect", "first_byte" or "total"); a request that cannot be sent as given (bad URL or
//! header) is `InvalidField` with `param` the URL or header name. `providers/http.py` adds the
//! provider's name, which this client does not know.

use floopy_core::Error;
use floopy_upstream::Error as UpstreamFailure;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

pyo3::import_exception!(floopy.errors, PayloadTooLarge);
pyo3::import_exception!(floopy.errors, InvalidJson);
pyo3::import_exception!(floopy.errors, InvalidField);
pyo3::import_exception!(floopy.errors, InvalidHeader);
pyo3::import_exception!(floopy.errors, UpstreamError);
pyo3::import_exception!(floopy.errors, UpstreamTimeout);

/// Converts a core error into the matching Python exception, with `param` set.
pub fn to_py(err: Error) -> PyErr {
    let param = err.param().map(str::to_owned);
    let message = err.to_string();
    let py_err = match err {
        Error::PayloadTooLarge { .. } => PayloadTooLarge::new_err(message),
        Error::InvalidJson { .. } => InvalidJson::new_err(message),
        Error::InvalidField { .. } => InvalidField::new_err(message),
        Error::InvalidHeader { .. } => InvalidHeader::new_err(message),
        Error::Io(io) => return PyOSError::new_err(io.to_string()),
    };
    with_attribute(py_err, "param", param)
}

/// Converts an upstream client error into the matching Python exception.
pub fn upstream_to_py(err: UpstreamFailure) -> PyErr {
    let message = err.to_string();
    match err {
        UpstreamFailure::InvalidRequest { param, .. } => {
            with_attribute(InvalidField::new_err(message), "param", Some(param))
        }
        UpstreamFailure::Timeout { phase } => {
            with_attribute(UpstreamTimeout::new_err(message), "phase", phase.as_str())
        }
        UpstreamFailure::TooLarge { .. } => {
            with_attribute(UpstreamError::new_err(message), "too_large", true)
        }
        UpstreamFailure::Connect(_)
        | UpstreamFailure::Broken(_)
        | UpstreamFailure::Startup(_)
        | UpstreamFailure::Closed => UpstreamError::new_err(message),
    }
}

fn with_attribute<V>(py_err: PyErr, name: &str, value: V) -> PyErr
where
    V: for<'py> IntoPyObject<'py>,
{
    Python::attach(|py| {
        let _ = py_err.value(py).setattr(name, value);
    });
    py_err
}

/// `?`-friendly: `core_call().map_err(to_py)?` reads better as `core_call().or_py()?`.
pub trait OrPy<T> {
    fn or_py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for floopy_core::Result<T> {
    fn or_py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

impl<T> OrPy<T> for floopy_upstream::Result<T> {
    fn or_py(self) -> PyResult<T> {
        self.map_err(upstream_to_py)
    }
}

/// Imports `floopy.errors` while the module loads, so a broken install fails at import time
/// rather than at the first error.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.py().import("floopy.errors")?;
    Ok(())
}
