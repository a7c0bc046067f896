//! RDED's ShufflePatches (docs/METHOD.md §10): cut the image into `factor` column strips and
//! permute them, then cut the result into `factor` row strips and permute those.

use rand::seq::SliceRandom;
use rand::Rng;

/// Strip boundaries of `len` into `factor` parts; as `torch.chunk`, every part but the last
/// has ceil(len / factor) elements.
fn strips(len: usize, factor: usize) -> Vec<std::ops::Range<usize>> {
    let size = len.div_ceil(factor);
    (0..len)
        .step_by(size.max(1))
        .map(|s| s..(s + size).min(len))
        .collect()
}

/// Shuffles one image (C, H, W), row-major, in place of a copy; `factor` 1 returns it as is.
pub fn shuffle_patches(
    image: &[f32],
    (channels, height, width): (usize, usize, usize),
    factor: usize,
    rng: &mut impl Rng,
) -> Vec<f32> {
    if factor <= 1 {
        return image.to_vec();
    }
    // Columns: the new column order is the concatenation of the permuted column strips.
    let mut col_strips = strips(width, factor);
    col_strips.shuffle(rng);
    let cols: Vec<usize> = col_strips.into_iter().flatten().collect();
    let mut row_strips = strips(height, factor);
    row_strips.shuffle(rng);
    let rows: Vec<usize> = row_strips.into_iter().flatten().collect();
    let mut out = Vec::with_capacity(image.len());
    for c in 0..channels {
        let plane = &image[c * height * width..(c + 1) * height * width];
        for &y in &rows {
            out.extend(cols.iter().map(|&x| plane[y * width + x]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn factor_two_permutes_column_then_row_strips() {
        // 1 x 4 x 4, value = 10 * row + column.
        let image: Vec<f32> = (0..16).map(|i| (10 * (i / 4) + i % 4) as f32).collect();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let out = shuffle_patches(&image, (1, 4, 4), 2, &mut rng);
            // Every output row is an input row with its two column halves in one common order.
            let first_col = out[0] as usize % 10;
            assert!(first_col == 0 || first_col == 2, "{out:?}");
            for y in 0..4 {
                let row = &out[y * 4..y * 4 + 4];
                let r = row[0] as usize / 10;
                assert!(row.iter().all(|v| *v as usize / 10 == r), "{out:?}");
                let cols: Vec<usize> = row.iter().map(|v| *v as usize % 10).collect();
                assert_eq!(cols[1], cols[0] + 1);
                assert_eq!(cols[0], first_col);
            }
            seen.insert(out.iter().map(|v| *v as i32).collect::<Vec<_>>());
        }
        // Two orders of columns x two of rows: exactly the 4 outcomes, all reached.
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn factor_one_is_the_identity_and_odd_sizes_split_like_torch_chunk() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let image: Vec<f32> = (0..6).map(|v| v as f32).collect();
        assert_eq!(shuffle_patches(&image, (1, 2, 3), 1, &mut rng), image);
        assert_eq!(strips(5, 2), vec![0..3, 3..5]);
        assert_eq!(strips(4, 2), vec![0..2, 2..4]);
    }
}
