//! Differentiable Siamese Augmentation as the DSA/DM code applies it when it *trains a
//! student* (`evaluate_synset` -> `DiffAugment(img, 'color_crop_cutout_flip_scale_rotate',
//! seed=-1, param=ParamDiffAug())`): `aug_mode = 'S'`, so **one** of the six families is drawn
//! uniformly per batch, and each image of the batch gets its own random parameters
//! (`batchmode = False`). `color` runs brightness, saturation and contrast in that order.
//! Applied to normalised (N, C, H, W) batches, as in that code. Here it only feeds the
//! student, so it is plain Rust (no gradient to the images).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// ParamDiffAug of the DSA/DM code.
pub const RATIO_SCALE: f32 = 1.2;
pub const RATIO_ROTATE_DEG: f32 = 15.0;
pub const RATIO_CROP_PAD: f32 = 0.125;
pub const RATIO_CUTOUT: f32 = 0.5;
pub const PROB_FLIP: f32 = 0.5;
pub const BRIGHTNESS: f32 = 1.0;
pub const SATURATION: f32 = 2.0;
pub const CONTRAST: f32 = 0.5;

/// The families of 'color_crop_cutout_flip_scale_rotate', in strategy order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Color,
    Crop,
    Cutout,
    Flip,
    Scale,
    Rotate,
}

pub const FAMILIES: [Family; 6] = [
    Family::Color,
    Family::Crop,
    Family::Cutout,
    Family::Flip,
    Family::Scale,
    Family::Rotate,
];

/// Augments a batch in place: draws one family, then per-image parameters.
pub fn augment_batch(x: &mut [f32], n: usize, c: usize, h: usize, w: usize, rng: &mut ChaCha8Rng) {
    let family = FAMILIES[rng.gen_range(0..FAMILIES.len())];
    apply(family, x, n, c, h, w, rng);
}

/// torch's `int(v + 0.5)` for the non-negative sizes used here.
fn round_half_up(v: f32) -> usize {
    (v + 0.5) as usize
}

pub fn apply(
    family: Family,
    x: &mut [f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    rng: &mut ChaCha8Rng,
) {
    let image = c * h * w;
    let plane = h * w;
    match family {
        Family::Color => {
            for img in x.chunks_mut(image).take(n) {
                let b = (rng.gen::<f32>() - 0.5) * BRIGHTNESS;
                img.iter_mut().for_each(|v| *v += b);
            }
            for img in x.chunks_mut(image).take(n) {
                // Mean over channels per pixel: for one channel the mean is the pixel, a no-op.
                let s = rng.gen::<f32>() * SATURATION;
                for p in 0..plane {
                    let mean = (0..c).map(|ci| img[ci * plane + p]).sum::<f32>() / c as f32;
                    for ci in 0..c {
                        let v = &mut img[ci * plane + p];
                        *v = (*v - mean) * s + mean;
                    }
                }
            }
            for img in x.chunks_mut(image).take(n) {
                let k = rng.gen::<f32>() + CONTRAST;
                let mean = img.iter().sum::<f32>() / image as f32;
                img.iter_mut().for_each(|v| *v = (*v - mean) * k + mean);
            }
        }
        Family::Crop => {
            // Zero-pad by one, shift by up to ±int(size * 0.125 + 0.5); outside shows the zero pad.
            let (sx, sy) = (
                round_half_up(h as f32 * RATIO_CROP_PAD) as isize,
                round_half_up(w as f32 * RATIO_CROP_PAD) as isize,
            );
            let tx: Vec<isize> = (0..n).map(|_| rng.gen_range(-sx..=sx)).collect();
            let ty: Vec<isize> = (0..n).map(|_| rng.gen_range(-sy..=sy)).collect();
            let mut src = vec![0f32; image];
            for (img, (tx, ty)) in x.chunks_mut(image).zip(tx.into_iter().zip(ty)) {
                src.copy_from_slice(img);
                for ci in 0..c {
                    for i in 0..h {
                        for j in 0..w {
                            let (si, sj) = (i as isize + tx, j as isize + ty);
                            img[ci * plane + i * w + j] =
                                if si >= 0 && sj >= 0 && (si as usize) < h && (sj as usize) < w {
                                    src[ci * plane + si as usize * w + sj as usize]
                                } else {
                                    0.0
                                };
                        }
                    }
                }
            }
        }
        Family::Cutout => {
            let (ch, cw) = (
                round_half_up(h as f32 * RATIO_CUTOUT),
                round_half_up(w as f32 * RATIO_CUTOUT),
            );
            let ox: Vec<usize> = (0..n).map(|_| rng.gen_range(0..h + (1 - ch % 2))).collect();
            let oy: Vec<usize> = (0..n).map(|_| rng.gen_range(0..w + (1 - cw % 2))).collect();
            for (b, img) in x.chunks_mut(image).take(n).enumerate() {
                let clamp = |v: isize, hi: usize| v.clamp(0, hi as isize - 1) as usize;
                let (r0, r1) = (
                    clamp(ox[b] as isize - (ch / 2) as isize, h),
                    clamp(ox[b] as isize + ch as isize - 1 - (ch / 2) as isize, h),
                );
                let (c0, c1) = (
                    clamp(oy[b] as isize - (cw / 2) as isize, w),
                    clamp(oy[b] as isize + cw as isize - 1 - (cw / 2) as isize, w),
                );
                for ci in 0..c {
                    for i in r0..=r1 {
                        img[ci * plane + i * w + c0..=ci * plane + i * w + c1].fill(0.0);
                    }
                }
            }
        }
        Family::Flip => {
            for img in x.chunks_mut(image).take(n) {
                if rng.gen::<f32>() < PROB_FLIP {
                    img.chunks_mut(w).for_each(|row| row.reverse());
                }
            }
        }
        Family::Scale => {
            let lo = 1.0 / RATIO_SCALE;
            let sx: Vec<f32> = (0..n)
                .map(|_| rng.gen::<f32>() * (RATIO_SCALE - lo) + lo)
                .collect();
            let sy: Vec<f32> = (0..n)
                .map(|_| rng.gen::<f32>() * (RATIO_SCALE - lo) + lo)
                .collect();
            for (b, img) in x.chunks_mut(image).take(n).enumerate() {
                affine_sample(img, c, h, w, [[sx[b], 0.0], [0.0, sy[b]]]);
            }
        }
        Family::Rotate => {
            for img in x.chunks_mut(image).take(n) {
                let t = (rng.gen::<f32>() - 0.5) * 2.0 * RATIO_ROTATE_DEG / 180.0
                    * std::f32::consts::PI;
                affine_sample(img, c, h, w, [[t.cos(), -t.sin()], [t.sin(), t.cos()]]);
            }
        }
    }
}

/// torch `grid_sample(x, affine_grid(theta, align_corners=True), align_corners=True)`:
/// bilinear, zeros outside, theta without translation.
fn affine_sample(img: &mut [f32], c: usize, h: usize, w: usize, theta: [[f32; 2]; 2]) {
    let src = img.to_vec();
    let plane = h * w;
    let norm = |i: usize, size: usize| {
        if size > 1 {
            -1.0 + 2.0 * i as f32 / (size - 1) as f32
        } else {
            0.0
        }
    };
    for i in 0..h {
        for j in 0..w {
            let (xn, yn) = (norm(j, w), norm(i, h));
            let gx = theta[0][0] * xn + theta[0][1] * yn;
            let gy = theta[1][0] * xn + theta[1][1] * yn;
            let ix = (gx + 1.0) / 2.0 * (w - 1) as f32;
            let iy = (gy + 1.0) / 2.0 * (h - 1) as f32;
            let (x0, y0) = (ix.floor(), iy.floor());
            let (fx, fy) = (ix - x0, iy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            for ci in 0..c {
                let at = |yy: isize, xx: isize| {
                    if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                        src[ci * plane + yy as usize * w + xx as usize]
                    } else {
                        0.0
                    }
                };
                img[ci * plane + i * w + j] = at(y0, x0) * (1.0 - fx) * (1.0 - fy)
                    + at(y0, x0 + 1) * fx * (1.0 - fy)
                    + at(y0 + 1, x0) * (1.0 - fx) * fy
                    + at(y0 + 1, x0 + 1) * fx * fy;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp(n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
        (0..n * c * h * w)
            .map(|i| (i % 97) as f32 / 97.0 + 0.1)
            .collect()
    }

    #[test]
    fn identity_transforms_keep_the_image() {
        let mut x = ramp(1, 2, 5, 7);
        let orig = x.clone();
        affine_sample(&mut x, 2, 5, 7, [[1.0, 0.0], [0.0, 1.0]]);
        for (a, b) in x.iter().zip(&orig) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn each_family_keeps_shape_and_changes_something() {
        let (n, c, h, w) = (8, 3, 28, 28);
        let orig = ramp(n, c, h, w);
        for (k, family) in FAMILIES.into_iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
            let mut x = orig.clone();
            apply(family, &mut x, n, c, h, w, &mut rng);
            assert_eq!(x.len(), orig.len());
            assert!(x.iter().all(|v| v.is_finite()));
            assert!(
                x.iter().zip(&orig).any(|(a, b)| (a - b).abs() > 1e-4),
                "{family:?} changed nothing"
            );
        }
    }

    #[test]
    fn cutout_blanks_a_half_size_square_clipped_at_the_border() {
        // 28 px: cutout 14 x 14 centred on an offset in [0, 28]; the zeroed area is at most
        // 14 x 14 and at least 7 x 7 (offset at a corner).
        let (h, w) = (28, 28);
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut x = vec![1.0f32; h * w];
            apply(Family::Cutout, &mut x, 1, 1, h, w, &mut rng);
            let zeros = x.iter().filter(|&&v| v == 0.0).count();
            assert!((49..=196).contains(&zeros), "seed {seed}: {zeros} zeros");
        }
    }

    #[test]
    fn crop_shifts_by_at_most_four_pixels_at_28() {
        let (h, w) = (28, 28);
        let x0: Vec<f32> = (0..h * w)
            .map(|i| if i == 14 * w + 14 { 1.0 } else { 0.0 })
            .collect();
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut x = x0.clone();
            apply(Family::Crop, &mut x, 1, 1, h, w, &mut rng);
            let at = x.iter().position(|&v| v == 1.0).unwrap();
            let (di, dj) = ((at / w) as isize - 14, (at % w) as isize - 14);
            assert!(
                di.abs() <= 4 && dj.abs() <= 4,
                "seed {seed}: moved by {di}, {dj}"
            );
        }
    }
}
