//! Crash-safe output: write to a temporary name next to the target, then rename.

use crate::DataError;
use std::path::{Path, PathBuf};

/// The temporary sibling of `path` used while it is being written.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` so that `path` either holds all of them or is untouched.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let tmp = temp_sibling(path);
    std::fs::write(&tmp, bytes).map_err(|e| DataError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))
}

/// Renames the finished temporary file `tmp` onto `path`, first making it readable by all
/// (0644 on Unix, like the outputs `write_file` makes): writers that stage through `tempfile`,
/// as safetensors does, leave owner-only (0600) files.
pub fn publish(tmp: &Path, path: &Path) -> Result<(), DataError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| DataError::io(tmp, e))?;
    }
    std::fs::rename(tmp, path).map_err(|e| DataError::io(path, e))
}

/// A directory built under a temporary name and renamed into place by `commit`;
/// dropped without `commit`, it is removed, so no half-written output remains.
pub struct StagedDir {
    staging: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Refuses an existing `target` unless `overwrite`.
    pub fn new(target: &Path, overwrite: bool) -> Result<Self, DataError> {
        if target.exists() && !overwrite {
            return Err(DataError::OutputExists {
                path: target.to_path_buf(),
            });
        }
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let staging = temp_sibling(target);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| DataError::io(&staging, e))?;
        }
        std::fs::create_dir(&staging).map_err(|e| DataError::io(&staging, e))?;
        Ok(StagedDir {
            staging,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// Where to write the contents until `commit`.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    pub fn commit(mut self) -> Result<PathBuf, DataError> {
        if self.target.exists() {
            std::fs::remove_dir_all(&self.target).map_err(|e| DataError::io(&self.target, e))?;
        }
        std::fs::rename(&self.staging, &self.target).map_err(|e| DataError::io(&self.target, e))?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn publish_moves_the_file_and_opens_it_to_readers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.safetensors");
        let tmp = temp_sibling(&path);
        std::fs::write(&tmp, b"bytes").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
        publish(&tmp, &path).unwrap();
        assert!(!tmp.exists());
        assert_eq!(std::fs::read(&path).unwrap(), b"bytes");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
