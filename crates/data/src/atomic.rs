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
/// (0644 on Unix, whatever the umask): writers that stage through `tempfile`, as safetensors
/// does, leave owner-only (0600) files. On error `tmp` is removed.
pub fn publish(tmp: &Path, path: &Path) -> Result<(), DataError> {
    let moved = make_readable(tmp)
        .map_err(|e| DataError::io(tmp, e))
        .and_then(|()| std::fs::rename(tmp, path).map_err(|e| DataError::io(path, e)));
    if moved.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    moved
}

#[cfg(unix)]
fn make_readable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn make_readable(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// A directory built under a temporary name and renamed into place by `commit`;
/// dropped without `commit`, it is removed, so no half-written output remains.
pub struct StagedDir {
    staging: PathBuf,
    target: PathBuf,
    overwrite: bool,
    committed: bool,
}

impl StagedDir {
    /// Refuses an existing `target` unless `overwrite`, and a target without a name of its
    /// own (`.`, `..`, `/`): replacing it would empty a directory that holds other things.
    pub fn new(target: &Path, overwrite: bool) -> Result<Self, DataError> {
        if target.file_name().is_none() {
            return Err(DataError::OutputUnnamed {
                path: target.to_path_buf(),
            });
        }
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
            overwrite,
            committed: false,
        })
    }

    /// Where to write the contents until `commit`.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Renames the staged directory onto the target. A target that appeared since `new` is
    /// replaced only with `overwrite`; otherwise it is refused and left as it is.
    pub fn commit(mut self) -> Result<PathBuf, DataError> {
        if self.target.exists() {
            if !self.overwrite {
                return Err(DataError::OutputExists {
                    path: self.target.clone(),
                });
            }
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

    #[test]
    fn staged_dir_leaves_a_target_made_meanwhile_unless_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let staged = StagedDir::new(&target, false).unwrap();
        std::fs::write(staged.path().join("new"), b"new").unwrap();
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("theirs"), b"theirs").unwrap();
        assert!(matches!(
            staged.commit(),
            Err(DataError::OutputExists { .. })
        ));
        assert_eq!(std::fs::read(target.join("theirs")).unwrap(), b"theirs");
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "the staging directory is removed");

        let staged = StagedDir::new(&target, true).unwrap();
        std::fs::write(staged.path().join("new"), b"new").unwrap();
        staged.commit().unwrap();
        assert!(!target.join("theirs").exists());
        assert_eq!(std::fs::read(target.join("new")).unwrap(), b"new");
    }

    #[test]
    fn staged_dir_refuses_targets_without_a_name() {
        for target in [".", "..", "/", "runs/.."] {
            let err = StagedDir::new(Path::new(target), true).err().unwrap();
            assert!(
                matches!(err, DataError::OutputUnnamed { .. }),
                "{target}: {err}"
            );
        }
    }
}
