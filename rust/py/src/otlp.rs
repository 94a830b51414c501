//! Binding of `floopy_core::otlp`: request rows to one OTLP trace export request, encoded with
//! the interpreter released.

use floopy_core::otlp;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// `(body, spans, skipped)`: the `ExportTraceServiceRequest` bytes of `rows` (the log's JSON
/// lines) under `resource` and `scope` (their messages' bytes), the spans it holds and the
/// rows it skipped as malformed.
#[pyfunction]
fn otlp_export_request<'py>(
    py: Python<'py>,
    rows: Vec<Bound<'py, PyBytes>>,
    resource: &[u8],
    scope: &[u8],
) -> (Bound<'py, PyBytes>, usize, usize) {
    let rows: Vec<&[u8]> = rows.iter().map(|row| row.as_bytes()).collect();
    let encoded = py.detach(|| otlp::export_request(&rows, resource, scope));
    (
        PyBytes::new(py, encoded.body()),
        encoded.spans,
        encoded.skipped,
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(otlp_export_request, m)?)?;
    Ok(())
}
