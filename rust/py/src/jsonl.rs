//! Bindings of `floopy_core::jsonl`: the journal writer and its reader. A worker appends a
//! request's rows on its event loop: a write of a few kilobytes to the page cache costs less
//! than releasing and taking back the GIL, so the GIL is released only for writes above
//! `DETACH_WRITE_BYTES` (and for every read, rotation and sync, which may touch the disk).

use std::path::PathBuf;

use floopy_core::jsonl as core;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::args::size;
use crate::errors::OrPy;

const DETACH_WRITE_BYTES: usize = 64 * 1024;

/// Frozen: every method takes `&self` (the core serializes writers behind its own lock), so
/// threads share one writer without contending for a Python-side borrow.
#[pyclass(module = "floopy._native", name = "JsonlWriter", frozen)]
pub struct JsonlWriter(core::JsonlWriter);

#[pymethods]
impl JsonlWriter {
    #[new]
    #[pyo3(signature = (path, max_bytes = core::DEFAULT_MAX_BYTES as i64, generations = core::DEFAULT_GENERATIONS as i64))]
    fn new(path: PathBuf, max_bytes: i64, generations: i64) -> PyResult<Self> {
        let max_bytes = size("max_bytes", max_bytes)?;
        let generations = size("generations", generations)?;
        core::JsonlWriter::with_limits(path, max_bytes, generations)
            .or_py()
            .map(Self)
    }

    #[getter]
    fn path(&self) -> String {
        self.0.path().to_string_lossy().into_owned()
    }

    #[getter]
    fn max_bytes(&self) -> u64 {
        self.0.max_bytes()
    }

    #[getter]
    fn generations(&self) -> u32 {
        self.0.generations()
    }

    fn write(&self, py: Python<'_>, record: &[u8]) -> PyResult<u64> {
        if record.len() > DETACH_WRITE_BYTES {
            return py.detach(|| self.0.write(record)).or_py();
        }
        self.0.write(record).or_py()
    }

    fn write_many(&self, py: Python<'_>, records: Vec<Bound<'_, PyBytes>>) -> PyResult<u64> {
        let records: Vec<&[u8]> = records.iter().map(|record| record.as_bytes()).collect();
        if records.iter().map(|record| record.len()).sum::<usize>() > DETACH_WRITE_BYTES {
            return py.detach(|| self.0.write_many(&records)).or_py();
        }
        self.0.write_many(&records).or_py()
    }

    fn hand_over(&self, py: Python<'_>) -> PyResult<bool> {
        py.detach(|| self.0.hand_over()).or_py()
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.0.flush()).or_py()
    }

    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.0.sync()).or_py()
    }

    fn close(&self, py: Python<'_>) {
        py.detach(|| self.0.close());
    }

    fn files(&self, py: Python<'_>) -> Vec<String> {
        let files = py.detach(|| self.0.files());
        files
            .iter()
            .map(|path| path.to_string_lossy().into_owned())
            .collect()
    }
}

#[pyclass(module = "floopy._native", name = "JsonlReader")]
pub struct JsonlReader(core::JsonlReader);

#[pymethods]
impl JsonlReader {
    #[new]
    #[pyo3(signature = (path, batch_size = core::DEFAULT_BATCH_SIZE as i64, offset = 0))]
    fn new(path: PathBuf, batch_size: i64, offset: i64) -> PyResult<Self> {
        let batch_size = size("batch_size", batch_size)?;
        let offset: u64 = size("offset", offset)?;
        core::JsonlReader::open_at(path, batch_size, offset)
            .or_py()
            .map(Self)
    }

    #[getter]
    fn position(&self) -> u64 {
        self.0.position()
    }

    #[getter]
    fn skipped(&self) -> u64 {
        self.0.skipped()
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Vec<Bound<'py, PyBytes>>>> {
        let batch = py.detach(|| self.0.next_batch()).or_py()?;
        Ok(batch.map(|records| {
            records
                .iter()
                .map(|record| PyBytes::new(py, record))
                .collect()
        }))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<JsonlWriter>()?;
    m.add_class::<JsonlReader>()?;
    Ok(())
}
