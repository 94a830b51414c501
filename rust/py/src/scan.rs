//! Bindings of `floopy_core::scan`: the scrubbers' literals, searched for in one pass.

use floopy_core::scan as core;
use pyo3::prelude::*;

use crate::errors::OrPy;
use crate::parse::DETACH_BODY_BYTES;

#[pyclass(module = "floopy._native", name = "Needles", frozen)]
pub struct Needles(core::Needles);

#[pymethods]
impl Needles {
    #[new]
    #[pyo3(signature = (patterns, digit_limit = 0))]
    fn new(patterns: Vec<String>, digit_limit: usize) -> PyResult<Self> {
        core::Needles::new(&patterns, digit_limit).map(Self).or_py()
    }

    /// True when no pattern occurs in `text` and it has fewer ASCII digits than the limit.
    fn quiet(&self, py: Python<'_>, text: &str) -> bool {
        let needles = &self.0;
        if text.len() > DETACH_BODY_BYTES {
            py.detach(|| needles.quiet(text.as_bytes()))
        } else {
            needles.quiet(text.as_bytes())
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Needles>()
}
