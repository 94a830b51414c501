//! The one error type of the core. Each variant says what a user sent wrong, precisely enough
//! to put in an API error message; `param` names the field or header at fault.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("request body is {size} bytes, over the limit of {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },

    #[error("{message}")]
    InvalidJson { message: String },

    #[error("{message}")]
    InvalidField { param: String, message: String },

    #[error("{message}")]
    InvalidHeader { param: String, message: String },

    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::InvalidJson {
            message: message.into(),
        }
    }

    pub fn invalid_field(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            param: param.into(),
            message: message.into(),
        }
    }

    pub fn invalid_header(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidHeader {
            param: param.into(),
            message: message.into(),
        }
    }

    /// The field or header at fault, if the error is about one.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidField { param, .. } | Self::InvalidHeader { param, .. } => Some(param),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
