//! Which labelled image set a command reads: Fashion-MNIST (a split) or an ImageFolder,
//! named the way the command line names it, and how manifests describe it.

use crate::fashion_mnist::{self, Split};
use crate::image_folder::{self, LazyFolder, ReadOptions};
use crate::preprocess::Resize;
use crate::{class_list, ClassSource, DataError, ImageSet};
use std::path::{Path, PathBuf};

/// The name of the built-in Fashion-MNIST dataset wherever a set is named.
pub const FASHION_MNIST: &str = "fashion-mnist";

/// Fashion-MNIST's training split without the last N images of every class:
/// `fashion-mnist-fit<N>`; those N per class alone: `fashion-mnist-val<N>` (the images
/// `dmgd pretrain --holdout-per-class N` keeps out, `ImageSet::split_validation`).
const FIT_PREFIX: &str = "fashion-mnist-fit";
const VAL_PREFIX: &str = "fashion-mnist-val";

/// Which images of a Fashion-MNIST split a source holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Whole,
    /// The training split without the last N images of every class.
    Fit(usize),
    /// The last N images of every class of the training split: validation images.
    Validation(usize),
}

/// The folder under which `dmgd distill` / `sample` put their ImageFolder.
pub const RUN_IMAGES_DIR: &str = "images";

/// How sets named by path are read (the same for every set of one command).
#[derive(Debug, Clone, PartialEq)]
pub struct DataOptions {
    /// Where Fashion-MNIST's four `*-ubyte.gz` files are.
    pub fashion_mnist_dir: PathBuf,
    /// Class order of an ImageFolder: a class-list name (`woof`, ...) or a file; `None`: every
    /// sub-folder, sorted.
    pub classes: Option<String>,
    /// Bring ImageFolder images to this square size (ADM center crop); `None`: keep sizes.
    pub image_size: Option<usize>,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            fashion_mnist_dir: PathBuf::from(fashion_mnist::DEFAULT_DIR),
            classes: None,
            image_size: None,
        }
    }
}

/// A resolved data source.
#[derive(Debug, Clone)]
pub enum DataSource {
    FashionMnist {
        dir: PathBuf,
        split: Split,
        part: Part,
    },
    Folder {
        root: PathBuf,
        options: ReadOptions,
    },
}

impl DataSource {
    /// `name` is `fashion-mnist` (then `split` applies), `fashion-mnist-fit<N>` /
    /// `fashion-mnist-val<N>` (the training split without / with only the last N images of
    /// every class, whatever `split`), an ImageFolder, or a `dmgd distill` / `sample` output
    /// directory (its `images/` folder is read). `resize` overrides the options' image size.
    pub fn resolve(
        name: &str,
        options: &DataOptions,
        split: Split,
        resize: Option<Resize>,
    ) -> Result<Self, DataError> {
        let fashion_mnist = |split, part| {
            Ok(DataSource::FashionMnist {
                dir: options.fashion_mnist_dir.clone(),
                split,
                part,
            })
        };
        if name == FASHION_MNIST {
            return fashion_mnist(split, Part::Whole);
        }
        for (prefix, part) in [
            (FIT_PREFIX, Part::Fit as fn(usize) -> Part),
            (VAL_PREFIX, Part::Validation),
        ] {
            if let Some(count) = name.strip_prefix(prefix) {
                return match count.parse::<usize>() {
                    Ok(n) if n > 0 && count == n.to_string() => {
                        fashion_mnist(Split::Train, part(n))
                    }
                    _ => Err(DataError::BadSetName {
                        name: name.into(),
                        expected: format!("{prefix}<N>, N a whole number of at least 1"),
                    }),
                };
            }
        }
        let classes = options
            .classes
            .as_deref()
            .map(class_list::resolve)
            .transpose()?;
        let resize = resize.unwrap_or(match options.image_size {
            Some(size) => Resize::AdmCenterCrop(size),
            None => Resize::Keep,
        });
        let root = Path::new(name);
        let images = root.join(RUN_IMAGES_DIR);
        Ok(DataSource::Folder {
            root: if images.is_dir() { images } else { root.into() },
            options: ReadOptions {
                classes,
                resize,
                channels: None,
            },
        })
    }

    pub fn load(&self) -> Result<ImageSet, DataError> {
        match self {
            DataSource::FashionMnist { dir, split, part } => {
                let whole = fashion_mnist::load(dir, *split)?;
                Ok(match *part {
                    Part::Whole => whole,
                    Part::Fit(n) => whole.split_validation(n).0,
                    Part::Validation(n) => whole.split_validation(n).1,
                })
            }
            DataSource::Folder { root, options } => image_folder::read(root, options),
        }
    }

    /// The data one class at a time: Fashion-MNIST is loaded whole (it is small), a folder
    /// is listed now (headers checked) and each class decoded when asked for.
    pub fn open_by_class(&self) -> Result<Box<dyn ClassSource>, DataError> {
        match self {
            DataSource::FashionMnist { .. } => Ok(Box::new(self.load()?)),
            DataSource::Folder { root, options } => Ok(Box::new(LazyFolder::open(root, options)?)),
        }
    }

    /// How the source is named in manifests.
    pub fn describe(&self) -> String {
        match self {
            DataSource::FashionMnist { dir, split, part } => {
                let part = match part {
                    Part::Whole => String::new(),
                    Part::Fit(n) => format!(" without the last {n} images of every class"),
                    Part::Validation(n) => format!(", the last {n} images of every class"),
                };
                format!("fashion-mnist {split:?}{part} ({})", dir.display())
            }
            DataSource::Folder { root, .. } => format!("image folder {}", root.display()),
        }
    }

    /// A short name for output folders: `fashion-mnist`, or the folder's name (its parent's
    /// for a run's `images/`).
    pub fn short_name(&self) -> String {
        match self {
            DataSource::FashionMnist { part, .. } => match part {
                Part::Whole => FASHION_MNIST.into(),
                Part::Fit(n) => format!("{FIT_PREFIX}{n}"),
                Part::Validation(n) => format!("{VAL_PREFIX}{n}"),
            },
            DataSource::Folder { root, .. } => {
                let named = match root.file_name() {
                    Some(n) if n == RUN_IMAGES_DIR => root.parent().and_then(Path::file_name),
                    other => other,
                };
                named.map_or_else(|| "set".into(), |n| n.to_string_lossy().into_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_directory_names_its_images_folder_and_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("distill-x");
        std::fs::create_dir_all(run.join(RUN_IMAGES_DIR).join("a")).unwrap();
        let options = DataOptions::default();
        let source =
            DataSource::resolve(run.to_str().unwrap(), &options, Split::Train, None).unwrap();
        match &source {
            DataSource::Folder { root, .. } => assert_eq!(root, &run.join(RUN_IMAGES_DIR)),
            other => panic!("{other:?}"),
        }
        assert_eq!(source.short_name(), "distill-x");
        let plain = DataSource::resolve(
            run.join(RUN_IMAGES_DIR).to_str().unwrap(),
            &options,
            Split::Train,
            None,
        )
        .unwrap();
        assert_eq!(plain.short_name(), "distill-x");
        let fm = DataSource::resolve(FASHION_MNIST, &options, Split::Test, None).unwrap();
        assert_eq!(fm.short_name(), FASHION_MNIST);
    }

    #[test]
    fn fit_and_validation_parts_are_named_and_bad_counts_refused() {
        let options = DataOptions::default();
        let resolve = |name| DataSource::resolve(name, &options, Split::Test, None);
        for (name, part) in [
            ("fashion-mnist-fit500", Part::Fit(500)),
            ("fashion-mnist-val7", Part::Validation(7)),
        ] {
            let source = resolve(name).unwrap();
            match &source {
                // A part of the training split, whatever split the command reads.
                DataSource::FashionMnist { split, part: p, .. } => {
                    assert_eq!((*split, *p), (Split::Train, part))
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(source.short_name(), name);
        }
        for bad in [
            "fashion-mnist-fit",
            "fashion-mnist-val0",
            "fashion-mnist-fit05",
            "fashion-mnist-val1x",
        ] {
            let err = resolve(bad).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("at least 1"), "{err}");
        }
    }

    #[test]
    fn fit_and_validation_split_the_training_images() {
        let options = DataOptions::default();
        let load = |name| {
            DataSource::resolve(name, &options, Split::Train, None)
                .unwrap()
                .load()
                .unwrap()
        };
        let (whole, fit, val) = (
            load(FASHION_MNIST),
            load("fashion-mnist-fit500"),
            load("fashion-mnist-val500"),
        );
        assert_eq!((fit.len(), val.len()), (55_000, 5_000));
        let (expected_fit, expected_val) = whole.split_validation(500);
        assert_eq!(fit.fingerprint(), expected_fit.fingerprint());
        assert_eq!(val.fingerprint(), expected_val.fingerprint());
    }
}
