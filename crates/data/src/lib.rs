//! Labelled image sets for dmgd: readers (Fashion-MNIST IDX, ImageFolder), class lists,
//! the ADM preprocessing, and crash-safe PNG writing.

pub mod atomic;
pub mod class_list;
pub mod class_source;
pub mod error;
pub mod fashion_mnist;
pub mod grid;
pub mod image_folder;
pub mod image_set;
pub mod pixels;
pub mod preprocess;
pub mod source;

pub use class_source::ClassSource;
pub use error::DataError;
pub use image_set::{ImageSet, ImageShape};
pub use source::{DataOptions, DataSource, Part, FASHION_MNIST};
