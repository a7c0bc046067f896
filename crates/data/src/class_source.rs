//! Labelled images one class at a time: a set already in memory (Fashion-MNIST), or an
//! `image_folder::LazyFolder` that decodes a class only when asked for.

use crate::{DataError, ImageSet, ImageShape};

pub trait ClassSource: Sync {
    /// The shape every image has (after preprocessing).
    fn shape(&self) -> ImageShape;

    /// Class names in label order.
    fn class_names(&self) -> &[String];

    fn num_classes(&self) -> usize {
        self.class_names().len()
    }

    /// The images of `class`, in order, as a set that keeps every class name (labels all
    /// `class`).
    fn class_images(&self, class: usize) -> Result<ImageSet, DataError>;

    /// Number of images of `class`.
    fn class_len(&self, class: usize) -> usize;

    /// Checks, before any output is written, that every image of these classes can be read
    /// (a folder decodes each file's header); the error names the first bad file.
    fn check_classes(&self, _classes: &[usize]) -> Result<(), DataError> {
        Ok(())
    }

    /// Names the data in manifests.
    fn fingerprint(&self) -> String;
}

impl ClassSource for ImageSet {
    fn shape(&self) -> ImageShape {
        self.shape
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn class_images(&self, class: usize) -> Result<ImageSet, DataError> {
        Ok(self.subset(&self.indices_by_class()[class]))
    }

    fn class_len(&self, class: usize) -> usize {
        self.labels.iter().filter(|&&y| y == class).count()
    }

    fn fingerprint(&self) -> String {
        ImageSet::fingerprint(self)
    }
}
