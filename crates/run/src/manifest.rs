//! `manifest.json`: the spec of a run (what it is) and, once it has finished, its outcome
//! (what it did: per-image seeds, timings). Written atomically; the spec part is written
//! before the first output file, so a killed run's directory still says what it was.

use crate::spec::{check_same, SpecMismatch};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a manifest: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has no `spec` (written by an older dmgd, or not by dmgd): its settings cannot be checked")]
    NoSpec { path: PathBuf },
    #[error(transparent)]
    Mismatch(#[from] SpecMismatch),
    #[error(transparent)]
    Write(#[from] dmgd_data::DataError),
}

/// The manifest of an output directory.
#[derive(Serialize)]
pub struct Manifest<'a, S: Serialize, O: Serialize> {
    pub tool: &'static str,
    pub version: &'static str,
    pub command: String,
    pub spec: &'a S,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'a O>,
}

impl<'a, S: Serialize, O: Serialize> Manifest<'a, S, O> {
    pub fn new(spec: &'a S, outcome: Option<&'a O>) -> Self {
        Manifest {
            tool: "dmgd",
            version: env!("CARGO_PKG_VERSION"),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            spec,
            outcome,
        }
    }

    /// Writes the manifest to `path` atomically (temporary name, then rename).
    pub fn write_to(&self, path: &Path) -> Result<(), ManifestError> {
        let json = serde_json::to_vec_pretty(self).expect("a manifest serialises");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| ManifestError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        Ok(dmgd_data::atomic::write_file(path, &json)?)
    }
}

/// The `spec` of the manifest at `path`.
pub fn read_spec(path: &Path) -> Result<Value, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut value: Value = serde_json::from_str(&text).map_err(|source| ManifestError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    match value.get_mut("spec") {
        Some(spec) => Ok(spec.take()),
        None => Err(ManifestError::NoSpec {
            path: path.to_path_buf(),
        }),
    }
}

/// Refuses unless the manifest at `path` holds exactly `spec`; the error names every key
/// that differs.
pub fn check_spec(path: &Path, spec: &impl Serialize) -> Result<(), ManifestError> {
    let stored = read_spec(path)?;
    let new = serde_json::to_value(spec).expect("a spec serialises");
    Ok(check_same(&stored, &new, path)?)
}

/// sha256 of a file, hex (streamed: checkpoints are large); names checkpoints in specs.
pub fn sha256_file(path: &Path) -> Result<String, ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_written_spec_reads_back_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let spec = json!({"config": {"seed": 0, "method": "dmgd"}});
        Manifest::<_, ()>::new(&spec, None).write_to(&path).unwrap();
        assert_eq!(read_spec(&path).unwrap(), spec);
        check_spec(&path, &spec).unwrap();
        let other = json!({"config": {"seed": 5, "method": "mgd3"}});
        let err = check_spec(&path, &other).unwrap_err().to_string();
        assert!(err.contains("config.method, config.seed"), "{err}");
    }

    #[test]
    fn a_manifest_without_spec_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        std::fs::write(&path, r#"{"tool": "dmgd", "details": {}}"#).unwrap();
        let err = read_spec(&path).unwrap_err().to_string();
        assert!(err.contains("no `spec`"), "{err}");
    }

    #[test]
    fn sha256_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"abc").unwrap();
        // sha256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
