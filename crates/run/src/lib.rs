//! What a run is. Every command resolves its arguments into a spec (a serde value of the
//! library's types: settings, input fingerprints, checkpoint hashes); the spec heads the
//! manifest written into the output directory before work starts, `--resume` compares the
//! stored spec with the new one and refuses any difference, and default output folders are
//! derived from it, so two different runs never share a folder.

#[cfg(feature = "clap")]
pub mod flags;
pub mod manifest;
pub mod settings;
pub mod spec;

pub use manifest::{check_spec, sha256_file, Manifest, ManifestError, MANIFEST_FILE};
pub use settings::Settings;
pub use spec::{differing_keys, spec_hash, SpecMismatch};

/// What to do when the output directory already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Stop with an error that names the directory.
    Refuse,
    /// Keep what the interrupted run finished, if its spec is this run's; refuse otherwise.
    Resume,
    /// Replace it.
    Overwrite,
}

impl Existing {
    /// `--resume` / `--overwrite` as the commands spell them (at most one is set).
    pub fn from_flags(resume: bool, overwrite: bool) -> Self {
        match (resume, overwrite) {
            (true, _) => Existing::Resume,
            (_, true) => Existing::Overwrite,
            _ => Existing::Refuse,
        }
    }
}

/// Where dmgd caches what it can recompute (k-means supports, embedding networks):
/// `$XDG_CACHE_HOME/dmgd`, else `$HOME/.cache/dmgd`; an empty variable counts as unset.
pub fn cache_dir() -> Option<std::path::PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    var("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| var("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
        .map(|d| d.join("dmgd"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_empty_xdg_cache_home_counts_as_unset() {
        // The only test of this crate that touches the environment.
        std::env::set_var("XDG_CACHE_HOME", "");
        std::env::set_var("HOME", "/home/someone");
        assert_eq!(
            super::cache_dir(),
            Some(std::path::PathBuf::from("/home/someone/.cache/dmgd"))
        );
        std::env::set_var("XDG_CACHE_HOME", "/xdg");
        assert_eq!(
            super::cache_dir(),
            Some(std::path::PathBuf::from("/xdg/dmgd"))
        );
    }
}
