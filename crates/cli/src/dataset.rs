//! Which labelled image set a command reads: Fashion-MNIST or an ImageFolder, resolved from flags.

use anyhow::{Context, Result};
use dmgd_data::fashion_mnist::{self, Split};
use dmgd_data::image_folder::{self, LazyFolder, ReadOptions};
use dmgd_data::preprocess::Resize;
use dmgd_data::{class_list, ClassSource, ImageSet};
use std::path::PathBuf;

/// The literal that names the built-in Fashion-MNIST dataset in `--data` / `--train` / `--test`.
pub const FASHION_MNIST: &str = "fashion-mnist";

/// The ImageFolder a set names: a `dmgd distill` / `sample` output keeps it in `images/`.
pub fn run_images(set: &str) -> String {
    let images = std::path::Path::new(set).join(dmgd_distill::run_dir::IMAGES_DIR);
    if set != FASHION_MNIST && images.is_dir() {
        images.to_string_lossy().into_owned()
    } else {
        set.to_string()
    }
}

/// Flags shared by every command that reads real data.
#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct DataArgs {
    /// Real training data: `fashion-mnist` or an ImageFolder directory (`DIR/<class>/*.png|jpg`).
    #[arg(long, default_value = FASHION_MNIST)]
    pub data: String,
    /// Directory holding Fashion-MNIST's four `*-ubyte.gz` files.
    #[arg(long, default_value = fashion_mnist::DEFAULT_DIR)]
    pub fashion_mnist_dir: PathBuf,
    /// Class order of an ImageFolder: `woof`, `nette`, `imagenet1k` or a file with one class
    /// folder name per line. Default: all sub-folders, sorted.
    #[arg(long)]
    pub classes: Option<String>,
    /// Bring ImageFolder images to this square size (ADM center crop). Default: keep sizes.
    #[arg(long)]
    pub image_size: Option<usize>,
}

impl DataArgs {
    /// The shipped default: Fashion-MNIST from its usual place, nothing resized.
    pub fn is_default(&self) -> bool {
        self.data == FASHION_MNIST
            && self.fashion_mnist_dir == std::path::Path::new(fashion_mnist::DEFAULT_DIR)
            && self.classes.is_none()
            && self.image_size.is_none()
    }
}

/// A resolved data source.
#[derive(Debug, Clone)]
pub enum DataSource {
    FashionMnist { dir: PathBuf, split: Split },
    Folder { root: PathBuf, options: ReadOptions },
}

impl DataSource {
    /// `spec` is `fashion-mnist` or a folder; `split` applies to Fashion-MNIST only.
    pub fn resolve(
        spec: &str,
        args: &DataArgs,
        split: Split,
        resize: Option<Resize>,
    ) -> Result<Self> {
        if spec == FASHION_MNIST {
            return Ok(DataSource::FashionMnist {
                dir: args.fashion_mnist_dir.clone(),
                split,
            });
        }
        let classes = args
            .classes
            .as_deref()
            .map(class_list::resolve)
            .transpose()
            .context("resolving --classes")?;
        let resize = resize.unwrap_or(match args.image_size {
            Some(size) => Resize::AdmCenterCrop(size),
            None => Resize::Keep,
        });
        Ok(DataSource::Folder {
            root: PathBuf::from(spec),
            options: ReadOptions {
                classes,
                resize,
                channels: None,
            },
        })
    }

    pub fn load(&self) -> Result<ImageSet> {
        match self {
            DataSource::FashionMnist { dir, split } => fashion_mnist::load(dir, *split)
                .with_context(|| {
                    format!("loading Fashion-MNIST ({split:?}) from {}", dir.display())
                }),
            DataSource::Folder { root, options } => image_folder::read(root, options)
                .with_context(|| format!("loading image folder {}", root.display())),
        }
    }

    /// The data one class at a time: Fashion-MNIST is loaded whole (it is small), a folder
    /// is listed now and each class decoded when asked for.
    pub fn open_by_class(&self) -> Result<Box<dyn ClassSource>> {
        match self {
            DataSource::FashionMnist { .. } => Ok(Box::new(self.load()?)),
            DataSource::Folder { root, options } => Ok(Box::new(
                LazyFolder::open(root, options)
                    .with_context(|| format!("opening image folder {}", root.display()))?,
            )),
        }
    }

    /// How the source is named in manifests.
    pub fn describe(&self) -> String {
        match self {
            DataSource::FashionMnist { dir, split } => {
                format!("fashion-mnist {split:?} ({})", dir.display())
            }
            DataSource::Folder { root, .. } => format!("image folder {}", root.display()),
        }
    }
}
