//! Errors of the student crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StudentError {
    #[error("unknown net `{name}`; valid names: {valid}")]
    UnknownNet { name: String, valid: String },
    #[error("unknown protocol `{name}`; valid names: dc, minimax")]
    UnknownProtocol { name: String },
    #[error("invalid training configuration: {reason}")]
    InvalidConfig { reason: String },
    #[error("training set is {train}, test set is {test}: {reason}")]
    MismatchedSets {
        train: String,
        test: String,
        reason: String,
    },
    #[error("tensor computation failed")]
    Tensor(#[from] candle_core::Error),
    #[error("reading or writing weights {path}")]
    Weights {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("weights {path} do not fit the net: missing keys {missing:?}, unexpected keys {unexpected:?}")]
    WeightKeys {
        path: PathBuf,
        missing: Vec<String>,
        unexpected: Vec<String>,
    },
    #[error("weights {path}: `{key}` has shape {found:?}, the net expects {expected:?}")]
    WeightShape {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
}
