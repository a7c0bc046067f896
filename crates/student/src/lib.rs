//! Student networks, training protocols and evaluation reports (docs/METHOD.md §8).
//!
//! The CLI's entry points: `TrainConfig::{dc, minimax}` -> `train_and_test` -> `Trained`
//! (a `RunReport` and a `Classifier`), and `Summary::of` over repeated runs.

pub mod augment;
pub mod classifier;
mod error;
pub mod frechet;
pub mod nets;

pub mod protocol;
pub mod report;
pub mod soft_label;
pub mod train;

pub use classifier::{Classifier, Normalization};
pub use dmgd_kernels::optim::{self, OptimizerKind};
pub use error::StudentError;
pub use nets::{Arch, Net, NetSpec, NormKind};
pub use protocol::{Augment, Protocol, SoftLabels, Teacher, TrainConfig};
pub use report::{Progress, RunReport, Summary};
pub use train::{train_and_test, train_and_test_with, Trained};
