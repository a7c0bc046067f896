//! The flags that say how real data are read, shared by every command that reads them.

use dmgd_data::{fashion_mnist, DataOptions, FASHION_MNIST};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Real training data: `fashion-mnist`, `fashion-mnist-fit<N>` (its training split without
    /// the last N images of every class, which `fashion-mnist-val<N>` names: validation images
    /// for tuning), or an ImageFolder directory (`DIR/<class>/*.png|jpg`).
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
    pub fn options(&self) -> DataOptions {
        DataOptions {
            fashion_mnist_dir: self.fashion_mnist_dir.clone(),
            classes: self.classes.clone(),
            image_size: self.image_size,
        }
    }

    /// The shipped default: Fashion-MNIST from its usual place, nothing resized.
    pub fn is_default(&self) -> bool {
        self.data == FASHION_MNIST && self.options() == DataOptions::default()
    }
}
