//! Coreset baselines: pick real images per class at random, by herding, or by k-center,
//! the latter two in a feature space given by the caller (a student network's embedding).

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// How to choose real images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoresetMethod {
    Random,
    Herding,
    Kcenter,
}

impl CoresetMethod {
    pub fn needs_features(self) -> bool {
        !matches!(self, CoresetMethod::Random)
    }
}

/// A seed for class `class` derived from the run seed: classes draw independently, so one
/// class's choice does not depend on which other classes are selected.
pub fn class_seed(seed: u64, class: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (class as u64)
            .wrapping_add(1)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

/// Indices into `real` of `ipc` distinct random images of every class, per class in class
/// order; class c draws from `class_seed(seed, c)`, so a class's pick does not depend on the
/// others. Every class must have `ipc` images.
pub fn random_per_class(
    real: &dmgd_data::ImageSet,
    ipc: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>, dmgd_data::DataError> {
    check_class_sizes(real, ipc)?;
    Ok(real
        .indices_by_class()
        .iter()
        .enumerate()
        .map(|(c, members)| {
            random_positions(members.len(), ipc, class_seed(seed, c))
                .into_iter()
                .map(|p| members[p])
                .collect()
        })
        .collect())
}

/// Every class of `real` has at least `ipc` images, or the error names the first that has not.
pub fn check_class_sizes(
    real: &dmgd_data::ImageSet,
    ipc: usize,
) -> Result<(), dmgd_data::DataError> {
    for (class, members) in real.class_names.iter().zip(real.indices_by_class()) {
        if members.len() < ipc {
            return Err(dmgd_data::DataError::NotEnoughImages {
                class: class.clone(),
                available: members.len(),
                requested: ipc,
            });
        }
    }
    Ok(())
}

/// `count` distinct positions out of `0..n`, uniformly, in draw order.
pub fn random_positions(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    sample(&mut rng, n, count).into_vec()
}

/// Herding (Welling 2009, as in the DC/DM coreset baselines): greedily add the point that
/// brings the mean of the chosen points closest to the mean of all points.
/// `features` is (n, dim) row-major; returns positions in selection order.
pub fn herding(features: &[f32], dim: usize, count: usize) -> Vec<usize> {
    let n = features.len() / dim;
    let row = |i: usize| &features[i * dim..(i + 1) * dim];
    let mut mu = vec![0f64; dim];
    for i in 0..n {
        for (m, &f) in mu.iter_mut().zip(row(i)) {
            *m += f as f64 / n as f64;
        }
    }
    let mut chosen = Vec::with_capacity(count);
    let mut taken = vec![false; n];
    let mut sum = vec![0f64; dim];
    for k in 1..=count {
        let mut best = (f64::INFINITY, usize::MAX);
        for i in (0..n).filter(|&i| !taken[i]) {
            let dist: f64 = row(i)
                .iter()
                .zip(&sum)
                .zip(&mu)
                .map(|((&f, &s), &m)| {
                    let d = m - (s + f as f64) / k as f64;
                    d * d
                })
                .sum();
            if dist < best.0 {
                best = (dist, i);
            }
        }
        let i = best.1;
        taken[i] = true;
        for (s, &f) in sum.iter_mut().zip(row(i)) {
            *s += f as f64;
        }
        chosen.push(i);
    }
    chosen
}

/// k-center greedy (Sener & Savarese 2018): start from the point nearest the class mean,
/// then repeatedly add the point farthest from everything chosen so far.
pub fn kcenter(features: &[f32], dim: usize, count: usize) -> Vec<usize> {
    let n = features.len() / dim;
    let row = |i: usize| &features[i * dim..(i + 1) * dim];
    let sq = |a: &[f32], b: &[f64]| -> f64 {
        a.iter().zip(b).map(|(&x, &y)| (x as f64 - y).powi(2)).sum()
    };
    let mut mu = vec![0f64; dim];
    for i in 0..n {
        for (m, &f) in mu.iter_mut().zip(row(i)) {
            *m += f as f64 / n as f64;
        }
    }
    let first = (0..n)
        .min_by(|&a, &b| sq(row(a), &mu).total_cmp(&sq(row(b), &mu)))
        .expect("kcenter needs at least one point");
    let mut chosen = vec![first];
    let mut nearest: Vec<f64> = (0..n)
        .map(|i| {
            let c: Vec<f64> = row(first).iter().map(|&x| x as f64).collect();
            sq(row(i), &c)
        })
        .collect();
    while chosen.len() < count {
        let next = (0..n)
            .max_by(|&a, &b| nearest[a].total_cmp(&nearest[b]).then(b.cmp(&a)))
            .unwrap();
        let c: Vec<f64> = row(next).iter().map(|&x| x as f64).collect();
        for (i, d) in nearest.iter_mut().enumerate() {
            *d = d.min(sq(row(i), &c));
        }
        chosen.push(next);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_positions_are_distinct_and_seeded() {
        let a = random_positions(100, 10, 7);
        let b = random_positions(100, 10, 7);
        assert_eq!(a, b);
        let mut s = a.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 10);
        assert_ne!(a, random_positions(100, 10, 8));
        assert_ne!(class_seed(0, 0), class_seed(0, 1));
    }

    #[test]
    fn herding_first_pick_is_nearest_the_mean_and_matches_the_mean() {
        // 1-D points 0, 1, 2, 10: mean 3.25. First pick: 2 (closest). Then the pair mean
        // closest to 3.25: (2 + 1) / 2 = 1.5 or (2 + 0) / 2 = 1 or (2 + 10) / 2 = 6 -> 1.
        let f = [0.0, 1.0, 2.0, 10.0];
        assert_eq!(herding(&f, 1, 2), vec![2, 1]);
        // Mean of three picks: {2,1,0} -> 1.0, {2,1,10} -> 4.33: |4.33-3.25| = 1.08 < 2.25.
        assert_eq!(herding(&f, 1, 3), vec![2, 1, 3]);
    }

    #[test]
    fn kcenter_covers_the_extremes() {
        // 2-D: a cluster near the origin and two far points.
        let f = [0.0, 0.0, 0.1, 0.0, 0.0, 0.1, 5.0, 5.0, -4.0, 0.0];
        let picks = kcenter(&f, 2, 3);
        // Mean (0.22, 1.02): nearest is (0, 0.1) at index 2; then farthest (5,5); then (-4,0).
        assert_eq!(picks, vec![2, 3, 4]);
    }
}
