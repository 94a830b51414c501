//! `floopy._native`: thin PyO3 bindings over `floopy-core`, one file per core module.
//! Errors are mapped to Python exceptions in one place, `errors.rs`.

use pyo3::prelude::*;

mod args;
mod cache_key;
mod errors;
mod headers;
mod jsonl;
mod otlp;
mod parse;
mod scan;
mod sse;
mod trace;
mod upstream;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    parse::register(m)?;
    headers::register(m)?;
    cache_key::register(m)?;
    sse::register(m)?;
    jsonl::register(m)?;
    otlp::register(m)?;
    scan::register(m)?;
    upstream::register(m)?;
    trace::register(m)?;
    Ok(())
}
