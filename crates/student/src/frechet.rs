//! Fréchet distance between two sets of feature vectors, each summarised by a Gaussian
//! (mean, covariance): the FID formula, in whatever feature space the caller chooses.
//!
//!   d² = |μ1 − μ2|² + tr(Σ1) + tr(Σ2) − 2 tr((Σ1 Σ2)^{1/2})
//!
//! tr((Σ1 Σ2)^{1/2}) is computed as tr((Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}): the two matrices have the
//! same eigenvalues, and the second is symmetric positive semi-definite, so two symmetric
//! eigendecompositions suffice (no general matrix square root, no complex parts to drop).

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Mean and covariance (divided by n − 1, as `numpy.cov`) of row vectors.
#[derive(Debug, Clone)]
pub struct Gaussian {
    pub mean: DVector<f64>,
    pub cov: DMatrix<f64>,
    pub count: usize,
}

impl Gaussian {
    /// Fits rows of `features` (`rows` × `dim`, row-major). Needs at least two rows.
    pub fn fit(features: &[f32], rows: usize, dim: usize) -> Gaussian {
        assert_eq!(features.len(), rows * dim, "features are not rows x dim");
        assert!(rows >= 2, "a covariance needs at least two samples");
        let x = DMatrix::from_row_slice(rows, dim, features).map(f64::from);
        let mean = x.row_mean().transpose();
        let centred = DMatrix::from_fn(rows, dim, |i, j| x[(i, j)] - mean[j]);
        let cov = centred.tr_mul(&centred) / (rows as f64 - 1.0);
        Gaussian {
            mean,
            cov,
            count: rows,
        }
    }
}

/// The Fréchet distance d² between two Gaussians of the same dimension.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    assert_eq!(a.mean.len(), b.mean.len(), "feature dimensions differ");
    let mean_term = (&a.mean - &b.mean).norm_squared();
    let root_a = psd_sqrt(&a.cov);
    let middle = &root_a * &b.cov * &root_a;
    let middle = (&middle + middle.transpose()) * 0.5; // exact symmetry for the solver
    let cross: f64 = SymmetricEigen::new(middle)
        .eigenvalues
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    mean_term + a.cov.trace() + b.cov.trace() - 2.0 * cross
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
}
