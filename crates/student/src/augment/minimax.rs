//! The Minimax/IDC training transform for 224 px ImageNet subsets, per image:
//! RandomResizedCrop(224, scale (0.5, 1), ratio (3/4, 4/3)) -> horizontal flip (p 0.5) ->
//! ColorJitter(0.4, 0.4, 0.4) (random order) -> PCA lighting (0.1) -> ImageNet normalisation;
//! then CutMix over the batch (probability 1, Beta(1, 1)).
//! Resizing is plain bilinear (half-pixel centres, no antialiasing), not PIL's filter.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Normal};

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
pub const CROP_SIZE: usize = 224;
const CROP_SCALE: (f64, f64) = (0.5, 1.0);
const CROP_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);
const JITTER: f32 = 0.4;
/// Lighting noise std and the ImageNet RGB PCA (AlexNet; the IDC/Minimax `Lighting` transform).
const LIGHTING_STD: f64 = 0.1;
const PCA_EIGVAL: [f32; 3] = [0.2175, 0.0188, 0.0045];
const PCA_EIGVEC: [[f32; 3]; 3] = [
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
];

/// torchvision RandomResizedCrop.get_params with area fraction in `scale` and aspect ratio in
/// (3/4, 4/3): (top, left, height, width) of the crop.
pub(crate) fn crop_box(
    h: usize,
    w: usize,
    scale: (f64, f64),
    rng: &mut ChaCha8Rng,
) -> (usize, usize, usize, usize) {
    let area = (h * w) as f64;
    for _ in 0..10 {
        // torch draws uniform(scale); an empty range (scale (1, 1)) is that one value.
        let fraction = if scale.0 < scale.1 {
            rng.gen_range(scale.0..scale.1)
        } else {
            scale.0
        };
        let target = area * fraction;
        let ratio = rng.gen_range(CROP_RATIO.0.ln()..CROP_RATIO.1.ln()).exp();
        let cw = (target * ratio).sqrt().round() as usize;
        let ch = (target / ratio).sqrt().round() as usize;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            return (rng.gen_range(0..=h - ch), rng.gen_range(0..=w - cw), ch, cw);
        }
    }
    // Fallback: central crop with the ratio clamped into range.
    let in_ratio = w as f64 / h as f64;
    let (ch, cw) = if in_ratio < CROP_RATIO.0 {
        ((w as f64 / CROP_RATIO.0).round() as usize, w)
    } else if in_ratio > CROP_RATIO.1 {
        (h, (h as f64 * CROP_RATIO.1).round() as usize)
    } else {
        (h, w)
    };
    ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

/// Bilinear resize of a (C, ch, cw) window at (top, left) of `src` (C, H, W) to (C, S, S).
pub(crate) fn resize_window(
    src: &[f32],
    c: usize,
    h: usize,
    w: usize,
    window: (usize, usize, usize, usize),
    s: usize,
) -> Vec<f32> {
    let (top, left, ch, cw) = window;
    let mut out = vec![0f32; c * s * s];
    let coord = |o: usize, in_size: usize| -> (usize, usize, f32) {
        let v =
            ((o as f32 + 0.5) * in_size as f32 / s as f32 - 0.5).clamp(0.0, (in_size - 1) as f32);
        let i0 = v.floor() as usize;
        (i0, (i0 + 1).min(in_size - 1), v - i0 as f32)
    };
    for oy in 0..s {
        let (y0, y1, fy) = coord(oy, ch);
        for ox in 0..s {
            let (x0, x1, fx) = coord(ox, cw);
            for ci in 0..c {
                let at = |y: usize, x: usize| src[ci * h * w + (top + y) * w + left + x];
                out[ci * s * s + oy * s + ox] = at(y0, x0) * (1.0 - fx) * (1.0 - fy)
                    + at(y0, x1) * fx * (1.0 - fy)
                    + at(y1, x0) * (1.0 - fx) * fy
                    + at(y1, x1) * fx * fy;
            }
        }
    }
    out
}

fn gray(x: &[f32], plane: usize, p: usize) -> f32 {
    // torchvision rgb_to_grayscale weights.
    0.299 * x[p] + 0.587 * x[plane + p] + 0.114 * x[2 * plane + p]
}

/// ColorJitter(0.4, 0.4, 0.4) on an RGB image in [0, 1], factors U(0.6, 1.4), random order.
fn color_jitter(x: &mut [f32], plane: usize, rng: &mut ChaCha8Rng) {
    let mut order = [0usize, 1, 2];
    order.shuffle(rng);
    for op in order {
        let f = rng.gen_range(1.0 - JITTER..1.0 + JITTER);
        match op {
            0 => x.iter_mut().for_each(|v| *v = (*v * f).clamp(0.0, 1.0)),
            1 => {
                let mean = (0..plane).map(|p| gray(x, plane, p)).sum::<f32>() / plane as f32;
                x.iter_mut()
                    .for_each(|v| *v = ((*v - mean) * f + mean).clamp(0.0, 1.0));
            }
            _ => {
                for p in 0..plane {
                    let g = gray(x, plane, p);
                    for ci in 0..3 {
                        let v = &mut x[ci * plane + p];
                        *v = ((*v - g) * f + g).clamp(0.0, 1.0);
                    }
                }
            }
        }
    }
}

/// One training image: u8 (C, H, W) -> normalised f32 (C, 224, 224). Colour steps need C = 3.
pub fn transform(pixels: &[u8], c: usize, h: usize, w: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let unit: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let window = crop_box(h, w, CROP_SCALE, rng);
    let s = CROP_SIZE;
    let mut x = resize_window(&unit, c, h, w, window, s);
    if rng.gen::<f32>() < 0.5 {
        x.chunks_mut(s).for_each(|row| row.reverse());
    }
    let plane = s * s;
    if c == 3 {
        color_jitter(&mut x, plane, rng);
        let normal = Normal::new(0.0, LIGHTING_STD).expect("valid std");
        let alpha: [f32; 3] = std::array::from_fn(|_| normal.sample(rng) as f32);
        for ci in 0..3 {
            let shift: f32 = (0..3)
                .map(|k| PCA_EIGVEC[ci][k] * alpha[k] * PCA_EIGVAL[k])
                .sum();
            x[ci * plane..(ci + 1) * plane]
                .iter_mut()
                .for_each(|v| *v += shift);
        }
    }
    for ci in 0..c {
        let (m, sd) = (IMAGENET_MEAN[ci % 3], IMAGENET_STD[ci % 3]);
        x[ci * plane..(ci + 1) * plane]
            .iter_mut()
            .for_each(|v| *v = (*v - m) / sd);
    }
    x
}

/// CutMix of the IDC/Minimax code: a box of area (1 - lam) of each image is replaced by the
/// same box of a permuted partner. Returns the partner of each image and the weight of the
/// original label (1 - box area / image area).
pub fn cutmix(
    x: &mut [f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, f32) {
    let lam: f64 = Beta::new(1.0, 1.0).expect("valid beta").sample(rng);
    let mut partner: Vec<usize> = (0..n).collect();
    partner.shuffle(rng);
    let cut = (1.0 - lam).sqrt();
    let (cut_h, cut_w) = ((h as f64 * cut) as isize, (w as f64 * cut) as isize);
    let (cy, cx) = (rng.gen_range(0..h) as isize, rng.gen_range(0..w) as isize);
    let (y1, y2) = (
        (cy - cut_h / 2).clamp(0, h as isize) as usize,
        (cy + cut_h / 2).clamp(0, h as isize) as usize,
    );
    let (x1, x2) = (
        (cx - cut_w / 2).clamp(0, w as isize) as usize,
        (cx + cut_w / 2).clamp(0, w as isize) as usize,
    );
    let src = x.to_vec();
    let image = c * h * w;
    for (i, &j) in partner.iter().enumerate() {
        for ci in 0..c {
            for y in y1..y2 {
                let row = ci * h * w + y * w;
                x[i * image + row + x1..i * image + row + x2]
                    .copy_from_slice(&src[j * image + row + x1..j * image + row + x2]);
            }
        }
    }
    let ratio = 1.0 - ((y2 - y1) * (x2 - x1)) as f32 / (h * w) as f32;
    (partner, ratio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn crops_stay_inside_and_cover_half_to_all_of_the_area() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let (top, left, ch, cw) = crop_box(256, 300, CROP_SCALE, &mut rng);
            assert!(top + ch <= 256 && left + cw <= 300);
            let frac = (ch * cw) as f64 / (256.0 * 300.0);
            assert!((0.45..=1.0).contains(&frac), "{frac}");
        }
    }

    #[test]
    fn transform_of_a_flat_grey_image_is_its_normalised_value_up_to_colour_noise() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let pixels = vec![128u8; 3 * 64 * 80];
        let x = transform(&pixels, 3, 64, 80, &mut rng);
        assert_eq!(x.len(), 3 * 224 * 224);
        // Jitter scales a flat image's brightness by at most 1.4 and lighting shifts it a little.
        for ci in 0..3 {
            let v = x[ci * 224 * 224 + 1000];
            let unit = v * IMAGENET_STD[ci] + IMAGENET_MEAN[ci];
            assert!((0.25..=0.8).contains(&unit), "channel {ci}: {unit}");
        }
    }

    #[test]
    fn cutmix_ratio_matches_the_pasted_area() {
        let (n, c, h, w) = (4, 1, 10, 10);
        let mut x: Vec<f32> = (0..n).flat_map(|i| vec![i as f32; c * h * w]).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (partner, ratio) = cutmix(&mut x, n, c, h, w, &mut rng);
        for i in 0..n {
            let img = &x[i * 100..(i + 1) * 100];
            let own = img.iter().filter(|&&v| v == i as f32).count();
            if partner[i] != i {
                assert_eq!(own as f32 / 100.0, ratio, "image {i}");
            }
        }
    }
}
