//! `random`: IPC real training images per class, copied into the layout a generative run
//! writes (images/, grid.png, manifest.json): the standard baseline.

use crate::coreset::random_per_class;
use crate::run_dir::{RunDir, IMAGES_DIR};
use crate::shard::Shard;
use crate::spec::DistillSpec;
use dmgd_data::atomic::StagedDir;
use dmgd_data::{DataError, ImageSet};
use std::path::Path;
use std::time::Instant;

#[derive(Debug, serde::Serialize)]
pub struct RandomOutcome {
    /// Indices into the training set of the copied images, per class.
    pub source_indices: Vec<Vec<usize>>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RandomError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Manifest(#[from] dmgd_run::ManifestError),
}

/// Copies `spec.config.ipc` random images per class of `real` into `out`, all at once (the
/// folder appears complete or not at all); `overwrite` replaces an existing `out`.
pub fn write(
    real: &ImageSet,
    spec: &DistillSpec,
    out: &Path,
    overwrite: bool,
) -> Result<RandomOutcome, RandomError> {
    let started = Instant::now();
    let config = &spec.config;
    let picks = random_per_class(real, config.ipc, config.seed)?;
    let subset = real.subset(&picks.concat());
    let staged = StagedDir::new(out, overwrite)?;
    dmgd_data::image_folder::write_into(&subset, &staged.path().join(IMAGES_DIR))?;
    let run = RunDir::new(staged.path(), Shard::WHOLE);
    dmgd_data::grid::write_class_grid(&subset, config.ipc, &run.grid_path())?;
    let outcome = RandomOutcome {
        source_indices: picks,
        seconds: started.elapsed().as_secs_f64(),
    };
    dmgd_run::Manifest::new(spec, Some(&outcome)).write_to(&run.manifest_path())?;
    staged.commit()?;
    Ok(outcome)
}
