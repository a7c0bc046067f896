//! Typed errors of the data layer; every variant names the file or value at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("Fashion-MNIST file {path} not found; install it with `apt-get install -y dataset-fashion-mnist` or pass the directory that holds the four *-ubyte.gz files")]
    FashionMnistMissing { path: PathBuf },
    #[error("set {name}: expected {expected} (a folder of that name: ./{name})")]
    BadSetName { name: String, expected: String },
    #[error("{path}: not a valid IDX file: {reason}")]
    BadIdx { path: PathBuf, reason: String },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image folder {path} does not exist or is not a directory")]
    NoSuchFolder { path: PathBuf },
    #[error("image folder {path} holds no class sub-folders")]
    NoClasses { path: PathBuf },
    #[error("class folder {path} holds no PNG or JPEG images")]
    EmptyClass { path: PathBuf },
    #[error("class `{class}` of the class list is missing from image folder {path}")]
    ClassMissing { class: String, path: PathBuf },
    #[error("cannot decode image {path}")]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("cannot encode image {path}")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("image {path} is {found}, expected {expected} like the other images (pass an image size to resize)")]
    SizeMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("class list {path} is empty")]
    EmptyClassList { path: PathBuf },
    #[error("unknown class list `{name}`: expected `woof`, `nette`, `imagenet1k`, `fashion-mnist` or a path to a file with one class per line")]
    UnknownClassList { name: String },
    #[error("class `{class}` has {available} images, fewer than the {requested} requested")]
    NotEnoughImages {
        class: String,
        available: usize,
        requested: usize,
    },
    #[error("output {path} already exists")]
    OutputExists { path: PathBuf },
    #[error("output {path} has no name of its own: name a directory to create or replace, not ., .. or /")]
    OutputUnnamed { path: PathBuf },
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}
