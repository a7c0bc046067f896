//! A picture of a set: every image tiled into one PNG, one row per class.

use crate::pixels::encode_png;
use crate::{DataError, ImageSet, ImageShape};
use std::path::Path;

/// Pixels between tiles (white, like torchvision's `make_grid` with pad_value 1).
const PAD: usize = 2;

/// Tiles `set` into one image: row r holds the images of class r in set order (up to
/// `max_columns`), with a white gutter. Returns the grid's shape and (C, H, W) pixels.
pub fn class_grid(set: &ImageSet, max_columns: usize) -> (ImageShape, Vec<u8>) {
    let by_class = set.indices_by_class();
    let columns = by_class
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .clamp(1, max_columns.max(1));
    let rows = by_class.len().max(1);
    let s = set.shape;
    let shape = ImageShape {
        channels: s.channels,
        height: rows * (s.height + PAD) + PAD,
        width: columns * (s.width + PAD) + PAD,
    };
    let mut pixels = vec![255u8; shape.numel()];
    for (r, members) in by_class.iter().enumerate() {
        for (col, &i) in members.iter().take(columns).enumerate() {
            let image = set.image(i);
            let (y0, x0) = (PAD + r * (s.height + PAD), PAD + col * (s.width + PAD));
            for c in 0..s.channels {
                for y in 0..s.height {
                    let src = &image[c * s.height * s.width + y * s.width..][..s.width];
                    let dst = c * shape.height * shape.width + (y0 + y) * shape.width + x0;
                    pixels[dst..dst + s.width].copy_from_slice(src);
                }
            }
        }
    }
    (shape, pixels)
}

/// Writes the class grid of `set` to `path` as PNG (atomically).
pub fn write_class_grid(set: &ImageSet, max_columns: usize, path: &Path) -> Result<(), DataError> {
    let (shape, pixels) = class_grid(set, max_columns);
    let png = encode_png(shape, &pixels, path)?;
    crate::atomic::write_file(path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_land_in_their_class_row() {
        let shape = ImageShape {
            channels: 1,
            height: 2,
            width: 3,
        };
        let set = ImageSet {
            shape,
            pixels: [vec![10u8; 6], vec![20u8; 6], vec![30u8; 6]].concat(),
            labels: vec![1, 0, 1],
            class_names: vec!["a".into(), "b".into()],
        };
        let (g, px) = class_grid(&set, 8);
        assert_eq!((g.height, g.width), (2 * 4 + 2, 2 * 5 + 2));
        let at = |y: usize, x: usize| px[y * g.width + x];
        assert_eq!(at(2, 2), 20); // row 0 (class a), column 0: image 1
        assert_eq!(at(6, 2), 10); // row 1 (class b), column 0: image 0
        assert_eq!(at(6, 7), 30); // row 1, column 1: image 2
        assert_eq!(at(0, 0), 255);
        assert_eq!(at(2, 7), 255); // class a has one image only
    }
}
