//! The one place where core errors become Python exceptions.
//!
//! `NativeError(ValueError)` is the base; each subclass carries `param`, the field or header at
//! fault (or `None`). I/O errors become `OSError`.

use floopy_core::Error;
use pyo3::exceptions::{PyOSError, PyValueError};
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
    Python::attach(|py| {
        let _ = py_err.value(py).setattr("param", param);
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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("NativeError", py.get_type::<NativeError>())?;
    m.add("PayloadTooLarge", py.get_type::<PayloadTooLarge>())?;
    m.add("InvalidJson", py.get_type::<InvalidJson>())?;
    m.add("InvalidField", py.get_type::<InvalidField>())?;
    m.add("InvalidHeader", py.get_type::<InvalidHeader>())?;
    // `param` exists on the class too, so `e.param` is None rather than AttributeError.
    py.get_type::<NativeError>().setattr("param", py.None())?;
    Ok(())
}
