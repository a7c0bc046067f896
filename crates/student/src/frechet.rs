//! Fréchet distance between two sets of feature vectors, each summarised by a Gaussian
//! (mean, covariance): the FID formula, in whatever feature space the caller chooses.
//!
//!   d² = |μ1 − μ2|² + tr(Σ1) + tr(Σ2) − 2 tr((Σ1 Σ2)^{1/2})
//!
//! tr((Σ1 Σ2)^{1/2}) is computed as tr((Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}): the two matrices have the
//! same eigenvalues, and the second is symmetric positive semi-definite, so two symmetric
//! eigendecompositions suffice (no general matrix square root, no complex parts to drop).

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Rows per covariance block: bounds the f64 copy of the features (2048-d: 64 MB).
const BLOCK_ROWS: usize = 4096;

/// Mean and covariance (divided by n − 1, as `numpy.cov`) of row vectors.
#[derive(Debug, Clone)]
pub struct Gaussian {
    pub mean: DVector<f64>,
    pub cov: DMatrix<f64>,
    pub count: usize,
}

impl Gaussian {
    /// Fits rows of `features` (`rows` × `dim`, row-major), in f64. Needs at least two rows.
    pub fn fit(features: &[f32], rows: usize, dim: usize) -> Gaussian {
        assert_eq!(features.len(), rows * dim, "features are not rows x dim");
        assert!(rows >= 2, "a covariance needs at least two samples");
        let mut mean = vec![0.0f64; dim];
        for row in features.chunks(dim) {
            for (m, &x) in mean.iter_mut().zip(row) {
                *m += f64::from(x);
            }
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        // Σ of centred outer products, block by block, with the gemm kernel (60,000 x 2048
        // features are 250 GFLOP: seconds here, minutes in a plain loop).
        let mut sum = vec![0.0f64; dim * dim];
        let mut centred = Vec::with_capacity(BLOCK_ROWS.min(rows) * dim);
        for (b, block) in features.chunks(BLOCK_ROWS * dim).enumerate() {
            centred.clear();
            for row in block.chunks(dim) {
                centred.extend(row.iter().zip(&mean).map(|(&x, m)| f64::from(x) - m));
            }
            let n = block.len() / dim;
            // SAFETY: sum is dim x dim, centred is n x dim, both row-major; the strides below
            // address (dim x n) * (n x dim) inside them.
            unsafe {
                gemm::gemm(
                    dim,
                    dim,
                    n,
                    sum.as_mut_ptr(),
                    1,
                    dim as isize,
                    b > 0,
                    centred.as_ptr(),
                    dim as isize,
                    1,
                    centred.as_ptr(),
                    1,
                    dim as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(rayon::current_num_threads()),
                )
            }
        }
        let scale = 1.0 / (rows as f64 - 1.0);
        Gaussian {
            mean: DVector::from_vec(mean),
            cov: DMatrix::from_row_slice(dim, dim, &sum) * scale,
            count: rows,
        }
    }
}

/// A Gaussian many sets are compared with: its covariance's square root is computed once.
pub struct FrechetReference {
    gaussian: Gaussian,
    root: DMatrix<f64>,
}

impl FrechetReference {
    pub fn new(gaussian: Gaussian) -> FrechetReference {
        let root = psd_sqrt(&gaussian.cov);
        FrechetReference { gaussian, root }
    }

    /// The Fréchet distance d² between `other` and the reference.
    pub fn distance(&self, other: &Gaussian) -> f64 {
        let a = &self.gaussian;
        assert_eq!(a.mean.len(), other.mean.len(), "feature dimensions differ");
        let mean_term = (&a.mean - &other.mean).norm_squared();
        let middle = &self.root * &other.cov * &self.root;
        let middle = (&middle + middle.transpose()) * 0.5; // exact symmetry for the solver
        let cross: f64 = middle
            .symmetric_eigenvalues()
            .iter()
            .map(|&l| l.max(0.0).sqrt())
            .sum();
        mean_term + a.cov.trace() + other.cov.trace() - 2.0 * cross
    }
}

/// The Fréchet distance d² between two Gaussians of the same dimension.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    FrechetReference::new(a.clone()).distance(b)
}

/// Square root of a symmetric positive semi-definite matrix (round-off negatives clamped).
fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eig = SymmetricEigen::new(m.clone());
    let roots = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eig.eigenvectors * DMatrix::from_diagonal(&roots) * eig.eigenvectors.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(mean: &[f64], cov: &[f64]) -> Gaussian {
        let d = mean.len();
        Gaussian {
            mean: DVector::from_column_slice(mean),
            cov: DMatrix::from_row_slice(d, d, cov),
            count: 0,
        }
    }

    #[test]
    fn diagonal_covariances_give_the_closed_form() {
        // d² = |μ1 − μ2|² + Σ (√a_i − √b_i)²
        let a = gaussian(
            &[1.0, 2.0, 0.0],
            &[4.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 1.0],
        );
        let b = gaussian(
            &[0.0, 0.0, 0.5],
            &[1.0, 0.0, 0.0, 0.0, 16.0, 0.0, 0.0, 0.0, 0.25],
        );
        let want = (1.0 + 4.0 + 0.25) + (1.0 + 1.0 + 0.25);
        assert!((frechet_distance(&a, &b) - want).abs() < 1e-10);
        assert!(frechet_distance(&a, &a).abs() < 1e-10);
    }

    #[test]
    fn non_commuting_2x2_matches_the_determinant_formula() {
        // For 2x2, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) with M = Σ1 Σ2.
        let s1: [f64; 4] = [2.0, 1.0, 1.0, 3.0];
        let s2: [f64; 4] = [1.0, -0.5, -0.5, 2.0];
        let m = [
            s1[0] * s2[0] + s1[1] * s2[2],
            s1[0] * s2[1] + s1[1] * s2[3],
            s1[2] * s2[0] + s1[3] * s2[2],
            s1[2] * s2[1] + s1[3] * s2[3],
        ];
        let (tr, det) = (m[0] + m[3], m[0] * m[3] - m[1] * m[2]);
        let cross = (tr + 2.0 * det.sqrt()).sqrt();
        let want = 0.09 + 0.16 + (2.0 + 3.0) + (1.0 + 2.0) - 2.0 * cross;
        let got = frechet_distance(&gaussian(&[0.3, 0.0], &s1), &gaussian(&[0.0, 0.4], &s2));
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    }

    #[test]
    fn fit_matches_the_sample_moments() {
        // rows (1, 2), (3, 2), (2, 5): mean (2, 3); cov with n − 1.
        let g = Gaussian::fit(&[1.0, 2.0, 3.0, 2.0, 2.0, 5.0], 3, 2);
        assert_eq!(g.mean.as_slice(), &[2.0, 3.0]);
        assert_eq!(g.cov.as_slice(), &[1.0, 0.0, 0.0, 3.0]);
    }

    #[test]
    fn blocked_covariance_equals_the_direct_sum() {
        // More rows than one block, so blocks accumulate.
        let (rows, dim) = (BLOCK_ROWS + 37, 3);
        let x: Vec<f32> = (0..rows * dim)
            .map(|i| ((i * 7919) % 101) as f32 / 10.0 - (i % dim) as f32)
            .collect();
        let g = Gaussian::fit(&x, rows, dim);
        let mean: Vec<f64> = (0..dim)
            .map(|j| (0..rows).map(|i| f64::from(x[i * dim + j])).sum::<f64>() / rows as f64)
            .collect();
        for a in 0..dim {
            for b in 0..dim {
                let direct: f64 = (0..rows)
                    .map(|i| {
                        (f64::from(x[i * dim + a]) - mean[a])
                            * (f64::from(x[i * dim + b]) - mean[b])
                    })
                    .sum::<f64>()
                    / (rows as f64 - 1.0);
                assert!((g.cov[(a, b)] - direct).abs() < 1e-9 * direct.abs().max(1.0));
            }
        }
    }
}
