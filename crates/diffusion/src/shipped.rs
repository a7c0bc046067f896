//! Where the shipped Fashion-MNIST DiT is found when no model is named: an installed binary
//! must find it as well as `cargo run` in the repository does (README.md, "Installing").

use crate::error::{DiffusionError, Result};
use std::path::{Path, PathBuf};

/// Folder name of the shipped model inside a models directory.
pub const SHIPPED_MODEL: &str = "fashion-mnist-dit";
/// Environment variable naming a models directory (the folder that holds `fashion-mnist-dit/`).
pub const MODELS_ENV: &str = "DMGD_MODELS";

/// The places looked in, in order: `$DMGD_MODELS`, `<binary's dir>/../share/dmgd/models`,
/// `<binary's dir>/models`, and the `models/` of the repository the binary was built from.
pub fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(MODELS_ENV).filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(bin_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        dirs.push(bin_dir.join("../share/dmgd/models"));
        dirs.push(bin_dir.join("models"));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    dirs.into_iter().map(|d| d.join(SHIPPED_MODEL)).collect()
}

/// The first candidate that holds the model's weights, or an error listing every place tried.
pub fn shipped_model_dir() -> Result<PathBuf> {
    let tried = candidate_dirs();
    tried
        .iter()
        .find(|dir| dir.join(crate::train::EMA_FILE).is_file())
        .cloned()
        .ok_or(DiffusionError::ShippedModelNotFound { tried })
}

/// `path` as given, or the shipped model; a `dmgd pretrain` directory stands for its EMA weights.
pub fn resolve_dit_weights(path: Option<&Path>) -> Result<PathBuf> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => shipped_model_dir()?,
    };
    Ok(if path.is_dir() {
        path.join(crate::train::EMA_FILE)
    } else {
        path
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_model_is_a_candidate_and_is_found() {
        let dirs = candidate_dirs();
        assert!(dirs.last().unwrap().ends_with("models/fashion-mnist-dit"));
        // This test runs inside the repository, which ships the model.
        let found = shipped_model_dir().unwrap();
        assert!(found.join(crate::train::EMA_FILE).is_file());
    }
}
