//! Bindings of `floopy_core::cache_key`: the exact-cache keyer, built once with its excluded
//! fields.

use floopy_core::cache_key as core;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::OrPy;
use crate::parse::DETACH_BODY_BYTES;

#[pyclass(module = "floopy._native", name = "CacheKeyer", frozen)]
pub struct CacheKeyer(core::CacheKeyer);

#[pymethods]
impl CacheKeyer {
    #[new]
    #[pyo3(signature = (excluded = None))]
    fn new(excluded: Option<Vec<String>>) -> Self {
        Self(match excluded {
            Some(excluded) => core::CacheKeyer::new(excluded),
            None => core::CacheKeyer::default(),
        })
    }

    #[getter]
    fn excluded(&self) -> Vec<&str> {
        self.0.excluded().iter().map(String::as_str).collect()
    }

    #[pyo3(signature = (body, scope = "", seed = None, ignore_keys = Vec::new()))]
    fn key(
        &self,
        py: Python<'_>,
        body: &[u8],
        scope: &str,
        seed: Option<&str>,
        ignore_keys: Vec<String>,
    ) -> PyResult<String> {
        let keyer = &self.0;
        let key = || keyer.key_hex(body, scope, seed, &ignore_keys);
        if body.len() > DETACH_BODY_BYTES {
            py.detach(key).or_py()
        } else {
            key().or_py()
        }
    }

    #[pyo3(signature = (body, ignore_keys = Vec::new()))]
    fn canonical<'py>(
        &self,
        py: Python<'py>,
        body: &[u8],
        ignore_keys: Vec<String>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let canonical = self.0.canonical(body, &ignore_keys).or_py()?;
        Ok(PyBytes::new(py, &canonical))
    }

    fn __repr__(&self) -> String {
        format!("CacheKeyer(excluded={:?})", self.0.excluded())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CacheKeyer>()?;
    Ok(())
}
