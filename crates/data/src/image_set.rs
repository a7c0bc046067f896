//! `ImageSet`: N labelled images of one shape, stored as u8 in (N, C, H, W) order.

use sha2::{Digest, Sha256};

/// Channels, height and width of every image of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    pub fn numel(&self) -> usize {
        self.channels * self.height * self.width
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// A labelled image set. Pixels are u8, image-major, channel-planar: (N, C, H, W).
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub shape: ImageShape,
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
    /// Class names in label order; label k is `class_names[k]`.
    pub class_names: Vec<String>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The pixels of image `i`, (C, H, W).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.numel();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Indices of the images of each class, in set order.
    pub fn indices_by_class(&self) -> Vec<Vec<usize>> {
        let mut by_class = vec![Vec::new(); self.num_classes()];
        for (i, &y) in self.labels.iter().enumerate() {
            by_class[y].push(i);
        }
        by_class
    }

    /// The images at `indices`, in that order, with the same classes.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.shape.numel());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        ImageSet {
            shape: self.shape,
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        }
    }

    /// Splits off a validation set: the last `per_class` images of every class, in set order,
    /// go to the second set, the rest (in set order) to the first. Deterministic and
    /// seed-free, so that every command that holds out "the same" images holds out these.
    /// `per_class` larger than a class takes the whole class.
    pub fn split_validation(&self, per_class: usize) -> (ImageSet, ImageSet) {
        let mut held_out = vec![false; self.len()];
        for indices in self.indices_by_class() {
            let keep = indices.len().saturating_sub(per_class);
            for &i in &indices[keep..] {
                held_out[i] = true;
            }
        }
        let (val, train): (Vec<usize>, Vec<usize>) = (0..self.len()).partition(|&i| held_out[i]);
        (self.subset(&train), self.subset(&val))
    }

    /// Pixels as f32 in [0, 1], (N, C, H, W).
    pub fn to_unit_f32(&self) -> Vec<f32> {
        self.pixels.iter().map(|&p| p as f32 / 255.0).collect()
    }

    /// sha256 over shape, labels, class names and pixels: names a dataset in manifests and caches.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!("{}|{}|", self.shape, self.len()).as_bytes());
        for name in &self.class_names {
            h.update(name.as_bytes());
            h.update(b"\n");
        }
        for &y in &self.labels {
            h.update((y as u32).to_le_bytes());
        }
        h.update(&self.pixels);
        format!("{:x}", h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(labels: &[usize]) -> ImageSet {
        ImageSet {
            shape: ImageShape {
                channels: 1,
                height: 1,
                width: 1,
            },
            pixels: (0..labels.len() as u8).collect(),
            labels: labels.to_vec(),
            class_names: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn validation_split_holds_out_the_last_images_of_each_class() {
        // Images 0..6 with classes a b a a b b: a = {0, 2, 3}, b = {1, 4, 5}.
        let (train, val) = set(&[0, 1, 0, 0, 1, 1]).split_validation(1);
        assert_eq!(train.pixels, vec![0, 1, 2, 4]);
        assert_eq!(train.labels, vec![0, 1, 0, 1]);
        assert_eq!(val.pixels, vec![3, 5]);
        assert_eq!(val.labels, vec![0, 1]);
    }

    #[test]
    fn validation_split_of_zero_keeps_everything() {
        let all = set(&[0, 1, 0]);
        let (train, val) = all.split_validation(0);
        assert_eq!(train.fingerprint(), all.fingerprint());
        assert!(val.is_empty());
    }
}
