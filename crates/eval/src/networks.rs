//! `<out>/networks/`: one report per finished student network, written as soon as it
//! finishes, so that a resumed evaluation (after a kill: a preempted job, a session's end)
//! trains only the networks that are missing. Each report names the sets it was trained and
//! tested on and carries its full configuration and seed, so a report of another run is
//! refused.

use crate::EvalError;
use dmgd_student::{RunReport, TrainConfig};
use std::path::{Path, PathBuf};

pub const NETWORKS_DIR: &str = "networks";

#[derive(serde::Serialize, serde::Deserialize)]
pub struct FinishedNetwork {
    pub train_fingerprint: String,
    pub test_fingerprint: String,
    pub report: RunReport,
}

/// What a finished network must have been trained with to stand in for one of this run.
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

/// Number of reports in `out/networks/`.
pub fn count(out: &Path) -> Result<usize, EvalError> {
    let dir = out.join(NETWORKS_DIR);
    if !dir.is_dir() {
        return Ok(0);
    }
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).map_err(|e| EvalError::io(&dir, e))? {
        let entry = entry.map_err(|e| EvalError::io(&dir, e))?;
        n += usize::from(entry.path().extension().is_some_and(|e| e == "json"));
    }
    Ok(n)
}

/// Removes `out/networks/` and everything in it.
pub fn clear(out: &Path) -> Result<(), EvalError> {
    let dir = out.join(NETWORKS_DIR);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| EvalError::io(&dir, e))?;
    }
    Ok(())
}

/// Writes the report of a network that just finished (atomically).
pub fn save(path: &Path, network: &FinishedNetwork) -> Result<(), EvalError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    }
    let json = serde_json::to_vec_pretty(network).expect("a report serialises");
    Ok(dmgd_data::atomic::write_file(path, &json)?)
}

/// The report kept at `path`, if there is one; an error if it was made with other sets or
/// another configuration.
pub fn load(path: &Path, expected: &Expected) -> Result<Option<RunReport>, EvalError> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    let network: FinishedNetwork =
        serde_json::from_slice(&bytes).map_err(|source| EvalError::NotAReport {
            path: path.into(),
            source,
        })?;
    let json = |c: &TrainConfig| serde_json::to_string(c).expect("a config serialises");
    let why = if network.train_fingerprint != expected.train_fingerprint {
        format!(
            "was trained on a set with fingerprint {}, not {}",
            network.train_fingerprint, expected.train_fingerprint
        )
    } else if network.test_fingerprint != expected.test_fingerprint {
        format!(
            "was tested on a set with fingerprint {}, not {}",
            network.test_fingerprint, expected.test_fingerprint
        )
    } else if &network.report.config != expected.config {
        format!(
            "was trained with the configuration {}, not {}",
            json(&network.report.config),
            json(expected.config)
        )
    } else {
        return Ok(Some(network.report));
    };
    Err(EvalError::NetworkMismatch {
        path: path.into(),
        why,
    })
}
