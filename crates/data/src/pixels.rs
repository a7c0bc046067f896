//! Conversions between model values in [-1, 1] and u8 pixels, and PNG encoding.

use crate::{DataError, ImageShape};
use std::path::Path;

/// docs/METHOD.md §3: clamp to [-1, 1], then floor((v + 1) / 2 * 255 + 0.5).
pub fn model_to_u8(v: f32) -> u8 {
    let v = v.clamp(-1.0, 1.0);
    ((v + 1.0) / 2.0 * 255.0 + 0.5).floor() as u8
}

/// u8 pixel to the model range [-1, 1].
pub fn u8_to_model(p: u8) -> f32 {
    p as f32 / 127.5 - 1.0
}

/// Encodes one (C, H, W) u8 image (C = 1 or 3) as PNG bytes.
pub fn encode_png(
    shape: ImageShape,
    chw: &[u8],
    path_for_errors: &Path,
) -> Result<Vec<u8>, DataError> {
    let (h, w) = (shape.height, shape.width);
    let plane = h * w;
    let color = match shape.channels {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        c => panic!("encode_png supports 1 or 3 channels, got {c}"),
    };
    // PNG stores pixels interleaved (H, W, C).
    let mut hwc = vec![0u8; chw.len()];
    for c in 0..shape.channels {
        for i in 0..plane {
            hwc[i * shape.channels + c] = chw[c * plane + i];
        }
    }
    let mut bytes = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    image::ImageEncoder::write_image(encoder, &hwc, w as u32, h as u32, color).map_err(
        |source| DataError::Encode {
            path: path_for_errors.to_path_buf(),
            source,
        },
    )?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_range_maps_like_the_reference() {
        // torch: (x * 127.5 + 128).clip(0, 255) on [-1, 1] is the same rule.
        assert_eq!(model_to_u8(-1.0), 0);
        assert_eq!(model_to_u8(1.0), 255);
        assert_eq!(model_to_u8(0.0), 128); // 127.5 + 0.5 = 128
        assert_eq!(model_to_u8(-2.0), 0);
        assert_eq!(model_to_u8(f32::INFINITY), 255);
        for p in 0..=255u8 {
            assert_eq!(model_to_u8(u8_to_model(p)), p);
        }
    }
}
