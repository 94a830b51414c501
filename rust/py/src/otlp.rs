//! Binding of `floopy_core::otlp`: request rows to one OTLP trace export request, encoded with
//! the interpreter released; and `ExportRow`, a request's row written for the export by its
//! trace (`Trace.export_row`), which the encoder reads without parsing.

use floopy_core::otlp::{self, Source, Tape};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A request's row for the trace export, written by its `Trace`: frozen, read by the
/// encoder with the interpreter released.
#[pyclass(module = "floopy._native", name = "ExportRow", frozen)]
pub struct ExportRow {
    pub(crate) tape: Tape,
}

#[pymethods]
impl ExportRow {
    /// How many spans the row holds (the root among them).
    #[getter]
    fn spans(&self) -> usize {
        self.tape.spans()
    }
}

/// `(body, spans, skipped)`: the `ExportTraceServiceRequest` bytes of `rows` (each an
/// `ExportRow`, or the log's JSON line) under `resource` and `scope` (their messages'
/// bytes), the spans it holds and the rows it skipped as malformed.
#[pyfunction]
fn otlp_export_request<'py>(
    py: Python<'py>,
    rows: Vec<Bound<'py, PyAny>>,
    resource: &[u8],
    scope: &[u8],
) -> PyResult<(Bound<'py, PyBytes>, usize, usize)> {
    let sources = rows
        .iter()
        .map(|row| {
            if let Ok(row) = row.cast::<ExportRow>() {
                Ok(Source::Tape(&row.get().tape))
            } else if let Ok(line) = row.cast::<PyBytes>() {
                Ok(Source::Line(line.as_bytes()))
            } else {
                Err(PyTypeError::new_err("a row is an ExportRow or bytes"))
            }
        })
        .collect::<PyResult<Vec<Source<'_>>>>()?;
    let encoded = py.detach(|| otlp::export_request(&sources, resource, scope));
    Ok((
        PyBytes::new(py, encoded.body()),
        encoded.spans,
        encoded.skipped,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ExportRow>()?;
    m.add_function(wrap_pyfunction!(otlp_export_request, m)?)?;
    Ok(())
}
