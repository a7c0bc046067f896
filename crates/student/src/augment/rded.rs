//! The soft-label protocol's training transform (RDED, docs/METHOD.md §10), per image:
//! ShufflePatches(factor) -> RandomResizedCrop(size, scale (1/factor, 1), ratio (3/4, 4/3))
//! -> horizontal flip (p 0.5) -> normalisation; then CutMix over the batch (`minimax::cutmix`).
//! With factor 1 the crop covers the whole image (torchvision falls back to it when no crop of
//! the full area has a drawn ratio), so small images are only flipped and mixed.

use super::minimax::{crop_box, resize_window};
use super::shuffle_patches::shuffle_patches;
use crate::classifier::Normalization;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The side of the crops the net sees: 224 for images of 224 px and more (ImageNet data,
/// 256 px DiT samples), else the images' own size.
pub fn crop_size(image_size: usize) -> usize {
    image_size.min(224)
}

/// RDED's ShufflePatches factor: 2 for ImageNet-sized crops (128 px and more), 1 below.
pub fn shuffle_factor(crop: usize) -> usize {
    if crop >= 128 {
        2
    } else {
        1
    }
}

/// The test images' short side before their center crop to `crop`: (crop / 7) * 8 for
/// ImageNet-sized crops (224 -> 256), none for small images (RDED's rule leaves 32 px as it is;
/// for 28 px it would zoom the test images in while the training images are not).
pub fn test_short_side(crop: usize) -> Option<usize> {
    (crop >= 128).then_some(crop / 7 * 8)
}

/// One training image: u8 (C, H, W) -> normalised f32 (C, size, size).
pub fn transform(
    pixels: &[u8],
    (c, h, w): (usize, usize, usize),
    size: usize,
    normalization: &Normalization,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let factor = shuffle_factor(size);
    let unit: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let shuffled = shuffle_patches(&unit, (c, h, w), factor, rng);
    let window = crop_box(h, w, (1.0 / factor as f64, 1.0), rng);
    let mut x = resize_window(&shuffled, c, h, w, window, size);
    if rng.gen::<f32>() < 0.5 {
        x.chunks_mut(size).for_each(|row| row.reverse());
    }
    let plane = size * size;
    for ci in 0..c {
        let (m, sd) = (normalization.mean[ci], normalization.std[ci]);
        x[ci * plane..(ci + 1) * plane]
            .iter_mut()
            .for_each(|v| *v = (*v - m) / sd);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sizes_follow_the_image_size() {
        assert_eq!(
            (crop_size(28), crop_size(256), crop_size(224)),
            (28, 224, 224)
        );
        assert_eq!((shuffle_factor(28), shuffle_factor(224)), (1, 2));
        assert_eq!(
            (test_short_side(224), test_short_side(28)),
            (Some(256), None)
        );
    }

    /// Factor 1 on a small image: the output is the normalised image or its mirror.
    #[test]
    fn small_images_are_only_flipped() {
        let pixels: Vec<u8> = (0..2 * 4 * 4).map(|i| (i * 7) as u8).collect();
        let norm = Normalization {
            mean: vec![0.5, 0.25],
            std: vec![0.5, 2.0],
        };
        let plain: Vec<f32> = pixels
            .iter()
            .enumerate()
            .map(|(i, &p)| (p as f32 / 255.0 - norm.mean[i / 16]) / norm.std[i / 16])
            .collect();
        let mirrored: Vec<f32> = plain
            .chunks(4)
            .flat_map(|row| row.iter().rev().copied())
            .collect();
        let mut seen = [false; 2];
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let x = transform(&pixels, (2, 4, 4), 4, &norm, &mut rng);
            let close = |y: &[f32]| x.iter().zip(y).all(|(a, b)| (a - b).abs() < 1e-6);
            assert!(close(&plain) || close(&mirrored), "{x:?}");
            seen[usize::from(close(&mirrored))] = true;
        }
        assert_eq!(seen, [true, true]);
    }

    /// Factor 2 on a 256 px image: a 224 px crop of at least half the area of the shuffled
    /// image; a flat image stays flat whatever is drawn.
    #[test]
    fn large_images_are_cropped_to_224() {
        let pixels = vec![51u8; 3 * 256 * 256];
        let norm = Normalization {
            mean: vec![0.0; 3],
            std: vec![1.0; 3],
        };
        let x = transform(
            &pixels,
            (3, 256, 256),
            224,
            &norm,
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        assert_eq!(x.len(), 3 * 224 * 224);
        assert!(x.iter().all(|v| (v - 0.2).abs() < 1e-6));
    }
}
