//! The output directory of a distillation run:
//!
//! ```text
//! OUT/images/<class>/<index>.png            the synthetic images (an ImageFolder)
//! OUT/latents/<class>/<index>.safetensors   final latents: the memory a resumed run needs
//! OUT/manifest.json                         (or manifest.shard-<i>-of-<n>.json)
//! OUT/grid.png                              (or grid.shard-<i>-of-<n>.png)
//! ```
//!
//! The latents stay outside `images/` so that ImageFolder readers (torchvision's included)
//! see only class folders of images. Every file is written under a temporary name and
//! renamed, so a killed run leaves only whole files (and temporaries, swept on resume).
//! An image counts as done when both its latent and its PNG exist.

use crate::shard::Shard;
use candle_core::{Device, Tensor};
use dmgd_data::atomic::write_file;
use dmgd_data::image_folder::image_file_name;
use dmgd_data::DataError;
use std::path::{Path, PathBuf};

pub const IMAGES_DIR: &str = dmgd_data::source::RUN_IMAGES_DIR;
const LATENTS_DIR: &str = "latents";
const LATENT_KEY: &str = "latent";

pub struct RunDir {
    pub root: PathBuf,
    pub shard: Shard,
}

impl RunDir {
    pub fn new(root: &Path, shard: Shard) -> Self {
        RunDir {
            root: root.to_path_buf(),
            shard,
        }
    }

    fn suffix(&self) -> String {
        if self.shard == Shard::WHOLE {
            String::new()
        } else {
            format!(".shard-{}-of-{}", self.shard.index, self.shard.count)
        }
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.root.join(format!("manifest{}.json", self.suffix()))
    }

    pub fn grid_path(&self) -> PathBuf {
        self.root.join(format!("grid{}.png", self.suffix()))
    }

    pub fn image_path(&self, class_name: &str, index: usize) -> PathBuf {
        self.root
            .join(IMAGES_DIR)
            .join(class_name)
            .join(image_file_name(index))
    }

    pub fn latent_path(&self, class_name: &str, index: usize) -> PathBuf {
        self.root
            .join(LATENTS_DIR)
            .join(class_name)
            .join(format!("{index:05}.safetensors"))
    }

    /// Whether this run's share of the directory already holds output (its manifest or any
    /// image or latent of its classes).
    pub fn has_output(&self, class_names: &[&str]) -> bool {
        self.manifest_path().exists()
            || class_names
                .iter()
                .any(|c| self.image_path(c, 0).exists() || self.latent_path(c, 0).exists())
    }

    /// Removes this run's share (its classes' images and latents, manifest and grid).
    pub fn clear(&self, class_names: &[&str]) -> Result<(), DataError> {
        for c in class_names {
            for dir in [
                self.root.join(IMAGES_DIR).join(c),
                self.root.join(LATENTS_DIR).join(c),
            ] {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
                }
            }
        }
        for file in [self.manifest_path(), self.grid_path()] {
            if file.exists() {
                std::fs::remove_file(&file).map_err(|e| DataError::io(&file, e))?;
            }
        }
        Ok(())
    }

    /// Removes the temporary files a killed run left in this run's class folders, and those of
    /// this shard's manifest and grid (other shards may be writing theirs).
    pub fn sweep_temporaries(&self, class_names: &[&str]) -> Result<(), DataError> {
        let own: Vec<String> = [self.manifest_path(), self.grid_path()]
            .iter()
            .map(|f| format!(".{}.", f.file_name().unwrap_or_default().to_string_lossy()))
            .collect();
        remove_temporaries(&self.root, |name| own.iter().any(|p| name.starts_with(p)))?;
        for c in class_names {
            for dir in [
                self.root.join(IMAGES_DIR).join(c),
                self.root.join(LATENTS_DIR).join(c),
            ] {
                remove_temporaries(&dir, |name| name.starts_with('.'))?;
            }
        }
        Ok(())
    }

    /// Refuses unless every manifest in the directory (this shard's and the other shards')
    /// holds a spec whose `identity` is `expected`: one directory, one run.
    pub fn check_shared_spec(
        &self,
        expected: &serde_json::Value,
        identity: fn(serde_json::Value) -> serde_json::Value,
    ) -> Result<(), dmgd_run::ManifestError> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Ok(()); // no directory yet: nothing to share
        };
        let mut manifests: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with("manifest") && name.ends_with(".json")
            })
            .collect();
        manifests.sort();
        for path in manifests {
            let stored = identity(dmgd_run::manifest::read_spec(&path)?);
            dmgd_run::spec::check_same(&stored, expected, &path)?;
        }
        Ok(())
    }

    /// How many images of the class are complete, counting from 0 without gaps.
    pub fn completed(&self, class_name: &str, ipc: usize) -> usize {
        (0..ipc)
            .take_while(|&i| {
                self.image_path(class_name, i).exists() && self.latent_path(class_name, i).exists()
            })
            .count()
    }

    /// Writes the final latent (C, H, W) of one image, atomically.
    pub fn write_latent(
        &self,
        class_name: &str,
        index: usize,
        latent: &Tensor,
    ) -> Result<(), DataError> {
        let path = self.latent_path(class_name, index);
        create_parent(&path)?;
        let latent = latent
            .to_device(&Device::Cpu)
            .and_then(|t| t.contiguous())
            .map_err(|e| DataError::io(&path, std::io::Error::other(e)))?;
        // Serialised in memory and written by `write_file`: the safetensors file writer uses
        // temporary names of its own, which a killed run would leave behind.
        let bytes = safetensors::serialize([(LATENT_KEY, &latent)], None)
            .map_err(|e| DataError::io(&path, std::io::Error::other(e)))?;
        write_file(&path, &bytes)
    }

    pub fn read_latent(
        &self,
        class_name: &str,
        index: usize,
        device: &Device,
    ) -> Result<Tensor, DataError> {
        let path = self.latent_path(class_name, index);
        let mut tensors = dmgd_kernels::weights::load_safetensors(&path, device)
            .map_err(|e| DataError::io(&path, std::io::Error::other(e)))?;
        tensors.remove(LATENT_KEY).ok_or_else(|| {
            DataError::io(
                &path,
                std::io::Error::other(format!("no `{LATENT_KEY}` tensor")),
            )
        })
    }

    /// Writes PNG bytes of one image, atomically.
    pub fn write_image(&self, class_name: &str, index: usize, png: &[u8]) -> Result<(), DataError> {
        let path = self.image_path(class_name, index);
        create_parent(&path)?;
        write_file(&path, png)
    }
}

fn create_parent(path: &Path) -> Result<(), DataError> {
    let parent = path.parent().expect("run files live in a directory");
    std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))
}

/// Removes the files of `dir` named `*.tmp` that `owned` accepts; a missing `dir` has none.
fn remove_temporaries(dir: &Path, owned: impl Fn(&str) -> bool) -> Result<(), DataError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") && owned(&name) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| DataError::io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_counts_whole_images_only() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path(), Shard::WHOLE);
        let latent = Tensor::ones((1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(!run.has_output(&["a"]));
        run.write_latent("a", 0, &latent).unwrap();
        run.write_image("a", 0, b"png").unwrap();
        run.write_latent("a", 1, &latent).unwrap(); // killed before its PNG
        run.write_image("a", 2, b"png").unwrap();
        run.write_latent("a", 2, &latent).unwrap();
        assert_eq!(run.completed("a", 10), 1);
        assert!(run.has_output(&["a"]));
        let back = run.read_latent("a", 0, &Device::Cpu).unwrap();
        assert_eq!(
            back.to_vec3::<f32>().unwrap(),
            latent.to_vec3::<f32>().unwrap()
        );
        run.clear(&["a"]).unwrap();
        assert!(!run.has_output(&["a"]));
    }

    #[test]
    fn sweep_removes_this_shards_temporaries_only() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path(), Shard { index: 0, count: 2 });
        let other = RunDir::new(dir.path(), Shard { index: 1, count: 2 });
        let latent = Tensor::ones((1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        run.write_latent("a", 0, &latent).unwrap();
        run.write_image("a", 0, b"png").unwrap();
        let killed = [
            dmgd_data::atomic::temp_sibling(&run.manifest_path()),
            dmgd_data::atomic::temp_sibling(&run.grid_path()),
            dmgd_data::atomic::temp_sibling(&run.image_path("a", 1)),
        ];
        let theirs = dmgd_data::atomic::temp_sibling(&other.manifest_path());
        for path in killed.iter().chain([&theirs]) {
            std::fs::write(path, b"half").unwrap();
        }
        run.sweep_temporaries(&["a"]).unwrap();
        for path in &killed {
            assert!(!path.exists(), "{} left", path.display());
        }
        assert!(theirs.exists(), "another shard's file was removed");
    }

    #[test]
    fn shard_files_are_named_apart() {
        let run = RunDir::new(Path::new("out"), Shard { index: 1, count: 4 });
        assert_eq!(
            run.manifest_path(),
            Path::new("out/manifest.shard-1-of-4.json")
        );
        assert_eq!(
            RunDir::new(Path::new("out"), Shard::WHOLE).grid_path(),
            Path::new("out/grid.png")
        );
    }
}
