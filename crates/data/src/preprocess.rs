//! Resizing and cropping images to a square size: the ADM center crop used for latent
//! extraction (docs/METHOD.md §3) and the plain resize + center crop of evaluation.

use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};

/// How the ImageFolder reader brings images to one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Keep images as they are; all must have the same size.
    Keep,
    /// ADM / guided-diffusion `center_crop_arr` to `size` (latent extraction).
    AdmCenterCrop(usize),
    /// Short side to `size` with bilinear filtering, then center crop (evaluation).
    CenterCrop(usize),
    /// Short side to `short` (bilinear), then a centred `size` crop (RDED's test images:
    /// 256, then 224).
    CenterCropOf { short: usize, size: usize },
}

/// ADM center crop: while the short side >= 2 x size, halve with a BOX filter; then resize
/// so the short side = size with BICUBIC (other side rounded half-to-even); center crop.
pub fn adm_center_crop(img: &RgbImage, size: usize) -> RgbImage {
    let mut img = img.clone();
    while (img.width().min(img.height()) as usize) >= 2 * size {
        img = box_resize(&img, img.width() / 2, img.height() / 2);
    }
    let scale = size as f64 / img.width().min(img.height()) as f64;
    let w = (img.width() as f64 * scale).round_ties_even() as u32;
    let h = (img.height() as f64 * scale).round_ties_even() as u32;
    let img = image::imageops::resize(&img, w, h, FilterType::CatmullRom);
    crop_center(&img, size)
}

/// Short side to `short` (bilinear), then a centred `size` x `size` crop (`size` <= `short`).
pub fn resize_center_crop(img: &RgbImage, short: usize, size: usize) -> RgbImage {
    let scale = short as f64 / img.width().min(img.height()) as f64;
    let w = ((img.width() as f64 * scale).round() as u32).max(short as u32);
    let h = ((img.height() as f64 * scale).round() as u32).max(short as u32);
    let img = image::imageops::resize(img, w, h, FilterType::Triangle);
    crop_center(&img, size)
}

fn crop_center(img: &RgbImage, size: usize) -> RgbImage {
    let y = (img.height() as usize - size) / 2;
    let x = (img.width() as usize - size) / 2;
    image::imageops::crop_imm(img, x as u32, y as u32, size as u32, size as u32).to_image()
}

/// PIL's BOX resampling: each output pixel averages the input area it covers, with
/// fractional weights at the borders.
pub fn box_resize(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let wx = box_weights(img.width(), w);
    let wy = box_weights(img.height(), h);
    let mut out = RgbImage::new(w, h);
    for (oy, row_w) in wy.iter().enumerate() {
        for (ox, col_w) in wx.iter().enumerate() {
            let mut acc = [0f64; 3];
            for &(iy, fy) in row_w {
                for &(ix, fx) in col_w {
                    let p = img.get_pixel(ix, iy);
                    for c in 0..3 {
                        acc[c] += fy * fx * p[c] as f64;
                    }
                }
            }
            let px = acc.map(|v| v.round().clamp(0.0, 255.0) as u8);
            out.put_pixel(ox as u32, oy as u32, image::Rgb(px));
        }
    }
    out
}

/// For each output index: the (input index, weight) pairs of its box, weights summing to 1.
fn box_weights(src: u32, dst: u32) -> Vec<Vec<(u32, f64)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            let mut taps = Vec::new();
            for i in lo.floor() as u32..(hi.ceil() as u32).min(src) {
                let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
                if overlap > 0.0 {
                    taps.push((i, overlap / scale));
                }
            }
            taps
        })
        .collect()
}

/// Converts any decoded image to RGB (grayscale, alpha and 16-bit images included).
pub fn to_rgb(img: DynamicImage) -> RgbImage {
    img.into_rgb8()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_halving_averages_2x2_blocks() {
        let img = RgbImage::from_fn(4, 2, |x, y| image::Rgb([(x * 10 + y * 100) as u8; 3]));
        let out = box_resize(&img, 2, 1);
        // block (0..2, 0..2): mean of 0, 10, 100, 110 = 55
        assert_eq!(out.get_pixel(0, 0)[0], 55);
        assert_eq!(out.get_pixel(1, 0)[0], 75);
    }

    #[test]
    fn box_weights_sum_to_one_for_odd_sizes() {
        for taps in box_weights(7, 3) {
            let total: f64 = taps.iter().map(|t| t.1).sum();
            assert!((total - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn adm_crop_gives_the_target_square() {
        let img = RgbImage::from_fn(500, 375, |x, _| image::Rgb([(x % 256) as u8; 3]));
        let out = adm_center_crop(&img, 64);
        assert_eq!((out.width(), out.height()), (64, 64));
        // 375 -> 187 -> 93 (two BOX halvings, since 93 < 128), then bicubic to a short side of 64.
        let out = adm_center_crop(&RgbImage::new(256, 300), 256);
        assert_eq!((out.width(), out.height()), (256, 256));
    }

    /// RDED's test transform: short side 256 (here already), then the centred 224 crop, which
    /// starts (400 - 224) / 2 = 88 columns in: columns 88..312 of the image.
    #[test]
    fn center_crop_of_a_resized_image_keeps_the_middle() {
        let img = RgbImage::from_fn(400, 256, |x, _| {
            image::Rgb([if x < 200 { 0 } else { 255 }; 3])
        });
        let out = resize_center_crop(&img, 256, 224);
        assert_eq!((out.width(), out.height()), (224, 224));
        assert_eq!(
            (out.get_pixel(111, 5)[0], out.get_pixel(112, 5)[0]),
            (0, 255)
        );
        // From 512 x 800 the short side halves first: the same picture.
        let big = RgbImage::from_fn(800, 512, |x, _| {
            image::Rgb([if x < 400 { 0 } else { 255 }; 3])
        });
        let out = resize_center_crop(&big, 256, 224);
        assert_eq!((out.get_pixel(0, 0)[0], out.get_pixel(223, 0)[0]), (0, 255));
    }
}
