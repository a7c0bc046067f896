//! Student networks, fast CPU ops, training protocols and evaluation reports (DESIGN.md §8).

mod error;
pub mod nets;
pub mod ops;
pub mod optim;

pub use error::StudentError;
