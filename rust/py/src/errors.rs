//! The one place where core errors become Python exceptions.
//!
//! `NativeError(ValueError)` is the base; each subclass carries `param`, the field or header at
//! fault (or `None`). I/O errors become `OSError`.
//!
//! The upstream client's errors: a provider that cannot be reached or breaks the connection
//! is `UpstreamError(OSError)`; a time limit that ran out is `UpstreamTimeout(TimeoutError)`
//! with `phase` ("connect", "first_byte" or "total"); a request that cannot be sent as given
//! (bad URL or header) is `InvalidField` with `param` the URL or header name.

use floopy_core::Error;
use floopy_upstream::Error as UpstreamFailure;
use pyo3::exceptions::{PyOSError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    NativeError,
    PyValueError,
    "Base of every native-core error."
);
pyo3::create_exception!(
    _native,
    PayloadTooLarge,
    NativeError,
    "The body exceeds the size limit."
);
pyo3::create_exception!(
    _native,
    InvalidJson,
    NativeError,
    "The body is not valid JSON."
);
pyo3::create_exception!(_native, InvalidField, NativeError, "A body field is wrong.");
pyo3::create_exception!(
    _native,
    InvalidHeader,
    NativeError,
    "A header value is wrong."
);

pyo3::create_exception!(
    _native,
    UpstreamError,
    PyOSError,
    "A provider could not be reached, or broke the connection."
);
pyo3::create_exception!(
    _native,
    UpstreamTimeout,
    PyTimeoutError,
    "A time limit of an upstream call ran out; `phase` says which."
);

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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("NativeError", py.get_type::<NativeError>())?;
    m.add("PayloadTooLarge", py.get_type::<PayloadTooLarge>())?;
    m.add("InvalidJson", py.get_type::<InvalidJson>())?;
    m.add("InvalidField", py.get_type::<InvalidField>())?;
    m.add("InvalidHeader", py.get_type::<InvalidHeader>())?;
    m.add("UpstreamError", py.get_type::<UpstreamError>())?;
    m.add("UpstreamTimeout", py.get_type::<UpstreamTimeout>())?;
    // `param` exists on the class too, so `e.param` is None rather than AttributeError.
    py.get_type::<NativeError>().setattr("param", py.None())?;
    py.get_type::<UpstreamTimeout>()
        .setattr("phase", py.None())?;
    Ok(())
}
