//! What a set is worth. `evaluate`: fresh students trained on each set and tested on the real
//! test split, resumable network by network. `select`: real-image baselines (random, herding,
//! k-center in a network's embedding). `quality`: how a classifier of real data sees a set.
//! `teacher`: the frozen network of soft-label evaluation; `score`: DD-Ranking's label- and
//! augmentation-robust scores from finished evaluations; `device_check`: a device against the
//! CPU, and the paper's workloads timed on it.

pub mod choices;
pub mod device_check;
mod error;
pub mod evaluate;
pub mod inputs;
mod networks;
pub mod quality;
pub mod score;
pub mod select;
pub mod teacher;

pub use choices::{Labels, OptimizerChoice, TrainChoices};
pub use error::{EvalError, NetworkRole};
pub use evaluate::{evaluate, EvalResult, EvalSpec, Evaluation, Event};

use dmgd_data::{DataSource, ImageSet};
use serde::{Deserialize, Serialize};

/// A set as a spec names it: how it was given (recorded), its size and its fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetRecord {
    pub source: String,
    pub images: usize,
    pub fingerprint: String,
}

impl SetRecord {
    pub fn of(source: &DataSource, set: &ImageSet) -> Self {
        SetRecord {
            source: source.describe(),
            images: set.len(),
            fingerprint: set.fingerprint(),
        }
    }
}

/// `set` (named `name`) has `reference`'s classes in the same order and its channels, and,
/// with `same_size`, its image size too.
pub fn check_compatible(
    set: &ImageSet,
    name: &str,
    reference: &ImageSet,
    reference_name: &str,
    same_size: bool,
) -> Result<(), EvalError> {
    let size_differs = same_size && set.shape != reference.shape;
    if set.class_names != reference.class_names
        || set.shape.channels != reference.shape.channels
        || size_differs
    {
        return Err(EvalError::Incompatible {
            set: name.into(),
            found: format!(
                "{} images in {} classes {:?}",
                set.shape,
                set.num_classes(),
                set.class_names
            ),
            reference: reference_name.into(),
            expected: format!(
                "{} images in {} classes {:?}",
                reference.shape,
                reference.num_classes(),
                reference.class_names
            ),
        });
    }
    Ok(())
}
