//! `--out/networks/`: one file per finished student network, written as soon as it finishes, so
//! that `dmgd eval --resume` after a kill (a preempted job, a session's end) trains only the
//! networks that are missing. Each file names the sets it was trained and tested on, and its
//! report carries the full configuration and seed, so a file from another run is refused.

use anyhow::{bail, Context, Result};
use dmgd_student::{RunReport, TrainConfig};
use std::path::{Path, PathBuf};

pub const NETWORKS_DIR: &str = "networks";

#[derive(serde::Serialize, serde::Deserialize)]
pub struct FinishedNetwork {
    pub train_fingerprint: String,
    pub test_fingerprint: String,
    pub report: RunReport,
}

/// What a finished network must have been trained with to stand in for network `r` of set `s`.
pub struct Expected<'a> {
    pub config: &'a TrainConfig,
    pub train_fingerprint: &'a str,
    pub test_fingerprint: &'a str,
}

/// `out/networks/set<s>-run<r>.json`.
pub fn path(out: &Path, set: usize, run: usize) -> PathBuf {
    out.join(NETWORKS_DIR)
        .join(format!("set{set}-run{run}.json"))
}

/// Number of finished-network files in `out/networks/`.
pub fn count(out: &Path) -> Result<usize> {
    let dir = out.join(NETWORKS_DIR);
    if !dir.is_dir() {
        return Ok(0);
    }
    let entries = std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut n = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.path().extension().is_some_and(|e| e == "json") {
            n += 1;
        }
    }
    Ok(n)
}

/// Removes `out/networks/` and everything in it.
pub fn clear(out: &Path) -> Result<()> {
    let dir = out.join(NETWORKS_DIR);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

/// Writes the report of a network that just finished (atomically).
pub fn save(path: &Path, network: &FinishedNetwork) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    dmgd_data::atomic::write_file(path, &serde_json::to_vec_pretty(network)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The report kept at `path`, if there is one; an error if it was made with other sets or
/// another configuration.
pub fn load(path: &Path, expected: &Expected) -> Result<Option<RunReport>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let network: FinishedNetwork = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a finished-network report", path.display()))?;
    let mismatch = if network.train_fingerprint != expected.train_fingerprint {
        Some(format!(
            "was trained on a set with fingerprint {}, not {}",
            network.train_fingerprint, expected.train_fingerprint
        ))
    } else if network.test_fingerprint != expected.test_fingerprint {
        Some(format!(
            "was tested on a set with fingerprint {}, not {}",
            network.test_fingerprint, expected.test_fingerprint
        ))
    } else if &network.report.config != expected.config {
        Some(format!(
            "was trained with the configuration {}, not {}",
            serde_json::to_string(&network.report.config)?,
            serde_json::to_string(expected.config)?
        ))
    } else {
        None
    };
    if let Some(why) = mismatch {
        bail!(
            "{} {why}; remove it, or pass --overwrite to start the evaluation again",
            path.display()
        );
    }
    Ok(Some(network.report))
}
