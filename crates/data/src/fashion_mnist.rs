//! Fashion-MNIST from its gzip IDX files (Debian package `dataset-fashion-mnist`).

use crate::{DataError, ImageSet, ImageShape};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the Debian package `dataset-fashion-mnist` installs the files.
pub const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Class names in label order. The digit prefix keeps sorted folder order equal to label order,
/// so a written ImageFolder reads back (here or in torchvision) with the same labels.
pub const CLASS_NAMES: [&str; 10] = [
    "0-tshirt-top",
    "1-trouser",
    "2-pullover",
    "3-dress",
    "4-coat",
    "5-sandal",
    "6-shirt",
    "7-sneaker",
    "8-bag",
    "9-ankle-boot",
];

/// Per-channel normalisation of the DC/DM/MTT Fashion-MNIST protocols (docs/METHOD.md §8).
pub const MEAN: f32 = 0.2861;
pub const STD: f32 = 0.3530;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Loads one split from `dir` (the four `*-ubyte.gz` files).
pub fn load(dir: &Path, split: Split) -> Result<ImageSet, DataError> {
    let images_path = dir.join(format!("{}-images-idx3-ubyte.gz", split.prefix()));
    let labels_path = dir.join(format!("{}-labels-idx1-ubyte.gz", split.prefix()));
    let (image_dims, pixels) = read_idx(&images_path)?;
    let (label_dims, labels) = read_idx(&labels_path)?;
    let bad = |path: &PathBuf, reason: String| DataError::BadIdx {
        path: path.clone(),
        reason,
    };
    if image_dims.len() != 3 {
        return Err(bad(
            &images_path,
            format!("expected 3 dimensions, found {image_dims:?}"),
        ));
    }
    if label_dims.len() != 1 || label_dims[0] != image_dims[0] {
        return Err(bad(
            &labels_path,
            format!(
                "expected {} labels, found dimensions {label_dims:?}",
                image_dims[0]
            ),
        ));
    }
    if let Some(&y) = labels.iter().find(|&&y| y as usize >= CLASS_NAMES.len()) {
        return Err(bad(&labels_path, format!("label {y} out of range 0..10")));
    }
    Ok(ImageSet {
        shape: ImageShape {
            channels: 1,
            height: image_dims[1],
            width: image_dims[2],
        },
        pixels,
        labels: labels.into_iter().map(usize::from).collect(),
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
    })
}

/// Reads a gzip IDX file of u8 values: (dimensions, data).
fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::FashionMnistMissing {
            path: path.to_path_buf(),
        },
        _ => DataError::io(path, e),
    })?;
    let mut bytes = Vec::new();
    GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    parse_idx(&bytes).map_err(|reason| DataError::BadIdx {
        path: path.to_path_buf(),
        reason,
    })
}

/// IDX: magic 0x00 0x00 0x08 (u8) n_dims, then n_dims big-endian u32 sizes, then the data.
fn parse_idx(bytes: &[u8]) -> Result<(Vec<usize>, Vec<u8>), String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("missing IDX magic number".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x}, expected 0x08 (u8)",
            bytes[2]
        ));
    }
    let n_dims = bytes[3] as usize;
    let header = 4 + 4 * n_dims;
    if bytes.len() < header {
        return Err("truncated header".into());
    }
    let dims: Vec<usize> = (0..n_dims)
        .map(|d| {
            let b = &bytes[4 + 4 * d..8 + 4 * d];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let count: usize = dims.iter().product();
    if bytes.len() != header + count {
        return Err(format!(
            "{} data bytes for dimensions {dims:?}, expected {count}",
            bytes.len() - header
        ));
    }
    Ok((dims, bytes[header..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_small_idx() {
        let bytes = [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6];
        let (dims, data) = parse_idx(&bytes).unwrap();
        assert_eq!(dims, vec![2, 3]);
        assert_eq!(data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_truncated_data() {
        let bytes = [0, 0, 8, 1, 0, 0, 0, 5, 1, 2];
        assert!(parse_idx(&bytes).unwrap_err().contains("expected 5"));
    }

    #[test]
    fn missing_directory_names_the_package() {
        let err = load(Path::new("/nonexistent/fmnist"), Split::Train).unwrap_err();
        assert!(err.to_string().contains("dataset-fashion-mnist"), "{err}");
    }
}
