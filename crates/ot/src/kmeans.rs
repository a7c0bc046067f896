//! Seeded k-means (k-means++ initialisation, then Lloyd iterations) on flattened latents (docs/METHOD.md §6, §7).
//!
//! Used twice: DMGD's support points (K = 10, masses = cluster size / N) and mgd3's modes
//! (K = IPC). Squared distances come from one matmul per iteration,
//! ||x||^2 - 2 x.c + ||c||^2, so N ~ 13,000 and D = 4096 stay cheap; centre sums are a second
//! matmul with the one-hot assignment. Only the assignment (N integers) and, for k-means++,
//! one distance column per chosen centre travel to the host.

use candle_core::{DType, Tensor, D};
use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::support::Support;
use crate::OtError;

/// Parameters of [`kmeans`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct KMeansParams {
    /// Number of clusters K (DMGD default 10; mgd3 uses K = IPC).
    pub k: usize,
    /// Maximum number of Lloyd iterations.
    pub max_iter: usize,
    /// Convergence tolerance, relative as in scikit-learn: stop when the summed squared shift of
    /// the centres is at most `tol` times the mean per-feature variance of the data.
    pub tol: f64,
    /// Seed of the ChaCha20 generator used by the k-means++ initialisation.
    pub seed: u64,
}

impl Default for KMeansParams {
    fn default() -> Self {
        Self {
            k: 10,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
        }
    }
}

/// The result of [`kmeans`].
#[derive(Debug, Clone)]
pub struct Clustering {
    /// Centres `(K, D)` and masses m_k = |cluster k| / N.
    pub support: Support,
    /// Cluster of every input row, in `0..K`; the clusters the centres are the means of.
    pub labels: Vec<usize>,
    /// Lloyd iterations run.
    pub iterations: usize,
    /// Whether the tolerance was met before `max_iter`.
    pub converged: bool,
}

/// Clusters the rows of `latents` (`(N, ...)`, flattened to `(N, D)`) into K clusters.
///
/// k-means++ (one candidate per step) picks the initial centres from a ChaCha20 generator seeded
/// with `params.seed`; then each Lloyd iteration assigns every point to its nearest centre
/// (Euclidean; ties to the lower index) and moves each centre to the mean of its points. The
/// result is deterministic per seed on a given device and thread count.
///
/// Empty clusters: when an assignment leaves a cluster empty, the point farthest from its own
/// centre (among clusters that keep at least one other point) is moved into it, one point per
/// empty cluster, before the means are taken. So every returned cluster is non-empty, every mass
/// is positive (Sinkhorn divides by them) and the masses sum to 1 up to rounding.
///
/// The returned centres are the means of the returned `labels` (the last Lloyd update); the
/// iterations stop when the centres moved by at most the tolerance or after `max_iter`.
/// Computation runs in the input dtype on the input device.
pub fn kmeans(latents: &Tensor, params: &KMeansParams) -> Result<Clustering, OtError> {
    let x = latents.flatten_from(1)?; // (N, D)
    let (n, _) = x.dims2()?;
    let k = params.k;
    if k == 0 {
        return Err(OtError::InvalidParam {
            name: "k-means k",
            value: "0".into(),
            reason: "at least one cluster is needed",
        });
    }
    if k > n {
        return Err(OtError::TooManyClusters { k, n });
    }
    if params.max_iter == 0 {
        return Err(OtError::InvalidParam {
            name: "k-means max_iter",
            value: "0".into(),
            reason: "at least one Lloyd iteration is needed",
        });
    }
    if !(params.tol.is_finite() && params.tol >= 0.0) {
        return Err(OtError::InvalidParam {
            name: "k-means tol",
            value: params.tol.to_string(),
            reason: "must be a non-negative finite number",
        });
    }
    let x_sq = x.sqr()?.sum_keepdim(1)?; // (N, 1)
    let tol = params.tol * mean_feature_variance(&x)?;

    // Initialise: k-means++.
    let mut centres = kmeans_plus_plus(&x, &x_sq, k, params.seed)?; // (K, D)

    // Lloyd iterations.
    let mut labels = Vec::new();
    let mut iterations = 0;
    let mut converged = false;
    while iterations < params.max_iter {
        iterations += 1;
        let sq_dist = squared_distances(&x, &x_sq, &centres)?; // (N, K)
        labels = assign(&sq_dist)?;
        let counts = cluster_sizes(&labels, k);
        if counts.contains(&0) {
            fill_empty_clusters(&sq_dist, &mut labels, k)?;
        }
        let new_centres = cluster_means(&x, &labels, k)?; // (K, D)
        let shift = new_centres
            .sub(&centres)?
            .sqr()?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        centres = new_centres;
        if shift <= tol {
            converged = true;
            break;
        }
    }

    let counts = cluster_sizes(&labels, k);
    let masses: Vec<f64> = counts.iter().map(|&c| c as f64 / n as f64).collect();
    let masses = Tensor::from_vec(masses, k, x.device())?.to_dtype(x.dtype())?;
    Ok(Clustering {
        support: Support::new(centres, masses)?,
        labels,
        iterations,
        converged,
    })
}

/// mean over features of the (biased) variance over points: scikit-learn's scale for `tol`.
fn mean_feature_variance(x: &Tensor) -> Result<f64, OtError> {
    let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?; // (N, D)
    Ok(centred
        .sqr()?
        .mean_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?)
}

/// ||x_i - c_j||^2 for all i, j, clamped at 0 against rounding: `(N, K)`.
fn squared_distances(x: &Tensor, x_sq: &Tensor, centres: &Tensor) -> Result<Tensor, OtError> {
    let c_sq = centres.sqr()?.sum_keepdim(1)?.t()?; // (1, K)
    let cross = x.matmul(&centres.t()?.contiguous()?)?; // (N, K)
    Ok(x_sq
        .broadcast_add(&c_sq)?
        .sub(&cross.affine(2.0, 0.0)?)?
        .relu()?)
}

/// k-means++: the first centre uniformly, each next one with probability proportional to the
/// squared distance to the nearest centre chosen so far. If every point already coincides with
/// a centre (fewer than K distinct points), the next centre is the first unchosen index.
fn kmeans_plus_plus(x: &Tensor, x_sq: &Tensor, k: usize, seed: u64) -> Result<Tensor, OtError> {
    let n = x.dims()[0];
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut chosen = vec![rng.gen_range(0..n)];
    let mut nearest = column_to_host(&squared_distances(x, x_sq, &x.narrow(0, chosen[0], 1)?)?)?; // (N)
    while chosen.len() < k {
        let next = match WeightedIndex::new(&nearest) {
            Ok(weights) => weights.sample(&mut rng),
            Err(_) => (0..n)
                .find(|i| !chosen.contains(i))
                .expect("k <= n leaves an unchosen index"),
        };
        chosen.push(next);
        let to_next = column_to_host(&squared_distances(x, x_sq, &x.narrow(0, next, 1)?)?)?;
        for (near, d) in nearest.iter_mut().zip(to_next) {
            *near = near.min(d);
        }
    }
    let index: Vec<u32> = chosen.iter().map(|&i| i as u32).collect();
    Ok(x.index_select(&Tensor::new(index, x.device())?, 0)?)
}

fn column_to_host(t: &Tensor) -> Result<Vec<f64>, OtError> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

fn assign(sq_dist: &Tensor) -> Result<Vec<usize>, OtError> {
    let labels = sq_dist.argmin(D::Minus1)?.to_vec1::<u32>()?;
    Ok(labels.into_iter().map(|l| l as usize).collect())
}

fn cluster_sizes(labels: &[usize], k: usize) -> Vec<usize> {
    let mut counts = vec![0; k];
    for &l in labels {
        counts[l] += 1;
    }
    counts
}

/// Moves, for every empty cluster, the point farthest from its own centre into it (taken from
/// clusters that keep at least one point). Possible because K <= N.
fn fill_empty_clusters(sq_dist: &Tensor, labels: &mut [usize], k: usize) -> Result<(), OtError> {
    let own: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    let own = Tensor::new(own, sq_dist.device())?.unsqueeze(1)?; // (N, 1)
    let own_dist = column_to_host(&sq_dist.gather(&own, 1)?)?; // (N)
    let mut by_distance: Vec<usize> = (0..labels.len()).collect();
    by_distance.sort_by(|&i, &j| own_dist[j].total_cmp(&own_dist[i]).then(i.cmp(&j)));
    let mut counts = cluster_sizes(labels, k);
    let mut candidates = by_distance.into_iter();
    for empty in 0..k {
        if counts[empty] > 0 {
            continue;
        }
        let point = candidates
            .by_ref()
            .find(|&p| counts[labels[p]] > 1)
            .expect("K <= N: some cluster has a point to spare while another is empty");
        counts[labels[point]] -= 1;
        labels[point] = empty;
        counts[empty] = 1;
    }
    Ok(())
}

/// Mean of the points of every cluster, `(K, D)`; every cluster must be non-empty.
fn cluster_means(x: &Tensor, labels: &[usize], k: usize) -> Result<Tensor, OtError> {
    let labels_u32: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    let labels_t = Tensor::new(labels_u32, x.device())?.unsqueeze(1)?; // (N, 1)
    let clusters = Tensor::arange(0u32, k as u32, x.device())?.unsqueeze(0)?; // (1, K)
    let one_hot = labels_t.broadcast_eq(&clusters)?.to_dtype(x.dtype())?; // (N, K)
    let sums = one_hot.t()?.contiguous()?.matmul(x)?; // (K, D)
    let counts = one_hot.sum_keepdim(0)?.t()?; // (K, 1)
    Ok(sums.broadcast_div(&counts)?)
}
