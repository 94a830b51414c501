//! Bindings of `floopy_core::parse`: the request parser, built once with its limits, and the
//! frozen facts it returns for each body.

use floopy_core::parse as core;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::args::size;
use crate::errors::OrPy;

/// Bodies over this size are parsed without the GIL: long enough to let other requests run,
/// while small bodies do not pay for the hand-over.
pub(crate) const DETACH_BODY_BYTES: usize = 64 * 1024;

#[pyclass(module = "floopy._native", name = "ChatRequest", frozen, eq)]
#[derive(PartialEq)]
pub struct ChatRequest(core::ChatRequest);

#[pymethods]
impl ChatRequest {
    #[getter]
    fn model(&self) -> &str {
        &self.0.model
    }

    #[getter]
    fn stream(&self) -> bool {
        self.0.stream
    }

    #[getter]
    fn include_usage(&self) -> bool {
        self.0.include_usage
    }

    #[getter]
    fn message_count(&self) -> usize {
        self.0.message_count
    }

    #[getter]
    fn last_user_text(&self) -> Option<&str> {
        self.0.last_user_text.as_deref()
    }

    #[getter]
    fn user(&self) -> Option<&str> {
        self.0.user.as_deref()
    }

    #[getter]
    fn has_tools(&self) -> bool {
        self.0.has_tools
    }

    /// The prompt is shown by its length only: reprs end up in logs.
    fn __repr__(&self) -> String {
        let request = &self.0;
        let last_user_text = match &request.last_user_text {
            Some(text) => format!("<{} chars>", text.chars().count()),
            None => "None".to_owned(),
        };
        format!(
            "ChatRequest(model={:?}, stream={}, include_usage={}, message_count={}, \
             last_user_text={last_user_text}, user={}, has_tools={})",
            request.model,
            py_bool(request.stream),
            py_bool(request.include_usage),
            request.message_count,
            py_optional(request.user.as_deref()),
            py_bool(request.has_tools),
        )
    }
}

/// `True` / `False`, as Python writes them in a repr.
pub(crate) fn py_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

/// A quoted string, or `None`, for reprs.
pub(crate) fn py_optional(value: Option<&str>) -> String {
    value.map_or_else(|| "None".to_owned(), |value| format!("{value:?}"))
}

#[pyclass(module = "floopy._native", name = "RequestParser", frozen)]
pub struct RequestParser(core::RequestParser);

#[pymethods]
impl RequestParser {
    #[new]
    #[pyo3(signature = (max_body_bytes = 10_485_760, max_depth = 64))]
    fn new(max_body_bytes: i64, max_depth: i64) -> PyResult<Self> {
        let max_body_bytes = size("max_body_bytes", max_body_bytes)?;
        let max_depth: usize = size("max_depth", max_depth)?;
        if !(1..=core::MAX_SUPPORTED_DEPTH).contains(&max_depth) {
            let message = format!(
                "max_depth must be between 1 and {}, got {max_depth}",
                core::MAX_SUPPORTED_DEPTH
            );
            return Err(PyValueError::new_err(message));
        }
        Ok(Self(core::RequestParser::new(max_body_bytes, max_depth)))
    }

    #[getter]
    fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes()
    }

    #[getter]
    fn max_depth(&self) -> usize {
        self.0.max_depth()
    }

    fn parse(&self, py: Python<'_>, body: &[u8]) -> PyResult<ChatRequest> {
        let parser = &self.0;
        let parsed = if body.len() > DETACH_BODY_BYTES {
            py.detach(|| parser.parse(body))
        } else {
            parser.parse(body)
        };
        parsed.or_py().map(ChatRequest)
    }

    fn __repr__(&self) -> String {
        format!(
            "RequestParser(max_body_bytes={}, max_depth={})",
            self.0.max_body_bytes(),
            self.0.max_depth()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ChatRequest>()?;
    m.add_class::<RequestParser>()?;
    Ok(())
}
