//! Bindings of `floopy_core::headers`: the header extractor, built once with its limits, and
//! the frozen headers it returns. Header pairs come as str (granian) or bytes (tests, other
//! servers) and are read in place, without copies.

use std::borrow::Cow;

use floopy_core::headers as core;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::args::size;
use crate::errors::OrPy;
use crate::parse::{py_bool, py_optional};

#[pyclass(module = "floopy._native", name = "FloopyHeaders", frozen, eq)]
#[derive(PartialEq)]
pub struct FloopyHeaders(core::FloopyHeaders);

#[pymethods]
impl FloopyHeaders {
    #[getter]
    fn api_key(&self) -> Option<&str> {
        self.0.api_key.as_deref()
    }

    #[getter]
    fn session_id(&self) -> Option<&str> {
        self.0.session_id.as_deref()
    }

    #[getter]
    fn session_name(&self) -> Option<&str> {
        self.0.session_name.as_deref()
    }

    #[getter]
    fn session_path(&self) -> Option<&str> {
        self.0.session_path.as_deref()
    }

    #[getter]
    fn project_id(&self) -> Option<&str> {
        self.0.project_id.as_deref()
    }

    #[getter]
    fn user_id(&self) -> Option<&str> {
        self.0.user_id.as_deref()
    }

    /// A new dict on each access: the object stays frozen whatever the caller does with it.
    #[getter]
    fn properties<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let properties = PyDict::new(py);
        for (name, value) in &self.0.properties {
            properties.set_item(name, value)?;
        }
        Ok(properties)
    }

    #[getter]
    fn model_override(&self) -> Option<&str> {
        self.0.model_override.as_deref()
    }

    #[getter]
    fn routing_rule(&self) -> Option<&str> {
        self.0.routing_rule.as_deref()
    }

    #[getter]
    fn fallbacks(&self) -> Vec<&str> {
        self.0.fallbacks.iter().map(String::as_str).collect()
    }

    #[getter]
    fn cache_enabled(&self) -> Option<bool> {
        self.0.cache_enabled
    }

    #[getter]
    fn cache_advanced(&self) -> bool {
        self.0.cache_advanced
    }

    #[getter]
    fn cache_seed(&self) -> Option<&str> {
        self.0.cache_seed.as_deref()
    }

    #[getter]
    fn cache_bucket_max_size(&self) -> Option<u64> {
        self.0.cache_bucket_max_size
    }

    #[getter]
    fn cache_ignore_keys(&self) -> Vec<&str> {
        self.0
            .cache_ignore_keys
            .iter()
            .map(String::as_str)
            .collect()
    }

    #[getter]
    fn cache_max_age(&self) -> Option<u64> {
        self.0.cache_max_age
    }

    #[getter]
    fn llm_security_enabled(&self) -> Option<bool> {
        self.0.llm_security_enabled
    }

    #[getter]
    fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    #[getter]
    fn forwarded_for(&self) -> Option<&str> {
        self.0.forwarded_for.as_deref()
    }

    /// Only the headers that were sent; the API key is never shown.
    fn __repr__(&self) -> String {
        let fields = repr_fields(&self.0);
        format!("FloopyHeaders({})", fields.join(", "))
    }
}

fn repr_fields(headers: &core::FloopyHeaders) -> Vec<String> {
    let mut fields = Vec::new();
    if headers.api_key.is_some() {
        fields.push("api_key=<hidden>".to_owned());
    }
    let texts = [
        ("session_id", &headers.session_id),
        ("session_name", &headers.session_name),
        ("session_path", &headers.session_path),
        ("project_id", &headers.project_id),
        ("user_id", &headers.user_id),
        ("model_override", &headers.model_override),
        ("routing_rule", &headers.routing_rule),
        ("cache_seed", &headers.cache_seed),
        ("user_agent", &headers.user_agent),
        ("forwarded_for", &headers.forwarded_for),
    ];
    for (name, value) in texts {
        if let Some(value) = value {
            fields.push(format!("{name}={}", py_optional(Some(value))));
        }
    }
    if !headers.properties.is_empty() {
        let pairs: Vec<String> = headers
            .properties
            .iter()
            .map(|(name, value)| format!("{name:?}: {value:?}"))
            .collect();
        fields.push(format!("properties={{{}}}", pairs.join(", ")));
    }
    for (name, list) in [
        ("fallbacks", &headers.fallbacks),
        ("cache_ignore_keys", &headers.cache_ignore_keys),
    ] {
        if !list.is_empty() {
            fields.push(format!("{name}={list:?}"));
        }
    }
    for (name, flag) in [
        ("cache_enabled", headers.cache_enabled),
        ("llm_security_enabled", headers.llm_security_enabled),
    ] {
        if let Some(flag) = flag {
            fields.push(format!("{name}={}", py_bool(flag)));
        }
    }
    if headers.cache_advanced {
        fields.push("cache_advanced=True".to_owned());
    }
    for (name, number) in [
        ("cache_bucket_max_size", headers.cache_bucket_max_size),
        ("cache_max_age", headers.cache_max_age),
    ] {
        if let Some(number) = number {
            fields.push(format!("{name}={number}"));
        }
    }
    fields
}

#[pyclass(module = "floopy._native", name = "HeaderExtractor", frozen)]
pub struct HeaderExtractor(core::HeaderExtractor);

#[pymethods]
impl HeaderExtractor {
    #[new]
    #[pyo3(signature = (max_value_len = 4096, max_properties = 64))]
    fn new(max_value_len: i64, max_properties: i64) -> PyResult<Self> {
        Ok(Self(core::HeaderExtractor::new(
            size("max_value_len", max_value_len)?,
            size("max_properties", max_properties)?,
        )))
    }

    #[getter]
    fn max_value_len(&self) -> usize {
        self.0.max_value_len()
    }

    #[getter]
    fn max_properties(&self) -> usize {
        self.0.max_properties()
    }

    #[pyo3(signature = (headers, names = None))]
    fn extract(
        &self,
        headers: &Bound<'_, PyAny>,
        names: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<FloopyHeaders> {
        let items = headers
            .try_iter()?
            .map(|item| item?.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>())
            .collect::<PyResult<Vec<_>>>()?;
        let pairs = items
            .iter()
            .map(|(name, value)| Ok((header_bytes(name)?, header_bytes(value)?)))
            .collect::<PyResult<Vec<_>>>()?;
        let pairs = pairs.iter().map(|(name, value)| (&**name, &**value));
        let Some(names) = names else {
            return self.0.extract(pairs).or_py().map(FloopyHeaders);
        };
        let names = names.try_iter()?.collect::<PyResult<Vec<_>>>()?;
        let names = names
            .iter()
            .map(header_bytes)
            .collect::<PyResult<Vec<_>>>()?;
        let pairs = pairs.collect::<Vec<_>>();
        let names = names.iter().map(|name| &**name);
        self.0
            .extract_named(&pairs, names)
            .or_py()
            .map(FloopyHeaders)
    }

    fn __repr__(&self) -> String {
        format!(
            "HeaderExtractor(max_value_len={}, max_properties={})",
            self.0.max_value_len(),
            self.0.max_properties()
        )
    }
}

/// The bytes of a header name or value. A str holding lone surrogates (from a server that
/// decoded raw bytes) is encoded with them, into bytes that are not UTF-8, so the core refuses
/// it like any other non-UTF-8 value, and only if it is a header the gateway reads.
fn header_bytes<'a>(part: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(bytes) = part.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(bytes.as_bytes()));
    }
    let text = part
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("header names and values must be str or bytes"))?;
    if let Ok(text) = text.to_str() {
        return Ok(Cow::Borrowed(text.as_bytes()));
    }
    let raw = text.call_method1("encode", ("utf-8", "surrogatepass"))?;
    Ok(Cow::Owned(raw.cast::<PyBytes>()?.as_bytes().to_vec()))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FloopyHeaders>()?;
    m.add_class::<HeaderExtractor>()?;
    Ok(())
}
