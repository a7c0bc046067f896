//! `manifest.json`: what produced an output directory (tool version, command line, resolved
//! configuration, input fingerprints), written with every output.

use anyhow::{Context, Result};
use std::path::Path;

pub const MANIFEST_FILE: &str = "manifest.json";

/// The common head of every manifest; commands add their own fields under `details`.
#[derive(serde::Serialize)]
pub struct Manifest<T: serde::Serialize> {
    pub tool: &'static str,
    pub version: &'static str,
    pub command: String,
    pub details: T,
}

impl<T: serde::Serialize> Manifest<T> {
    pub fn new(details: T) -> Self {
        Manifest {
            tool: "dmgd",
            version: env!("CARGO_PKG_VERSION"),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            details,
        }
    }

    /// Writes `dir/manifest.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.write_to(&dir.join(MANIFEST_FILE))
    }

    /// Writes the manifest to `path` atomically.
    pub fn write_to(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        dmgd_data::atomic::write_file(path, &json)
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// sha256 of a file, hex (`dmgd_run::sha256_file`, with anyhow's error).
pub fn sha256_file(path: &Path) -> Result<String> {
    Ok(dmgd_run::sha256_file(path)?)
}
