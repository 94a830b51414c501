//! Sizes and counts given to native constructors, checked on the way in. Taken as `usize`,
//! a negative would raise PyO3's `OverflowError`, which does not say which argument was
//! wrong; a `ValueError` naming it matches the constructors' other argument errors.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `value` as an unsigned size or count; a negative, or one too large for `T`, raises
/// `ValueError` naming the argument.
pub fn size<T: TryFrom<i64>>(name: &str, value: i64) -> PyResult<T> {
    T::try_from(value).map_err(|_| {
        let complaint = if value < 0 {
            "must not be negative"
        } else {
            "is too large"
        };
        PyValueError::new_err(format!("{name} {complaint}, got {value}"))
    })
}
