//! Semantic Matching: the dynamic soft-label transform of the class embedding (docs/METHOD.md §5).
//!
//! At original timestep t the class embedding of every row of the CFG batch is replaced by
//!
//! ```text
//! lambda(t) = 0 if t > t_upper;  1 if t < t_lower;  (t_upper - t) / (t_upper - t_lower) otherwise
//! r(t)      = 0 if t > t_upper else 1
//! e'  = sqrt(lambda) e_y + beta_n sqrt(1 - lambda) n + r beta_s sqrt(1 - lambda) e_{y*}
//! e'' = (e' - mean(e')) / std(e') * std(e_y) + mean(e_y)
//! ```
//!
//! Reference details kept here: the transform covers the whole CFG batch (conditional and null
//! rows alike), mean and std are taken over the whole (rows x D) tensor, std is the unbiased
//! one, and n is fresh noise at every step (uniform [0, 1) in the release, Gaussian in the
//! paper's text: [`NoiseLaw`]).

use candle_core::{DType, Device, Result, Shape, Tensor};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::config::{DistillConfig, NoiseLaw};

/// Parameters of the soft-label transform (defaults: the authors' release).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SoftLabelParams {
    /// Above this original timestep: exploration (pure noise condition).
    pub t_upper: usize,
    /// Below this original timestep: refinement (the plain class embedding).
    pub t_lower: usize,
    /// Weight of the noise n.
    pub beta_n: f64,
    /// Weight of the random other class y*.
    pub beta_s: f64,
    /// Law of n.
    pub noise: NoiseLaw,
}

impl Default for SoftLabelParams {
    fn default() -> Self {
        Self {
            t_upper: 900,
            t_lower: 500,
            beta_n: 0.06,
            beta_s: 0.01,
            noise: NoiseLaw::Uniform,
        }
    }
}

/// The three phases of the transform, by original timestep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// t > t_upper: lambda = 0, r = 0; the condition is renormalised noise.
    Exploration,
    /// t_lower <= t <= t_upper: lambda falls linearly from 1 to 0 as t rises; y* is mixed in.
    SoftLabel,
    /// t < t_lower: lambda = 1; the condition is the class embedding.
    Refinement,
}

impl SoftLabelParams {
    /// The soft-label knobs of a resolved run configuration.
    pub fn from_config(config: &DistillConfig) -> Self {
        Self {
            t_upper: config.t_upper,
            t_lower: config.t_lower,
            beta_n: config.beta_n,
            beta_s: config.beta_s,
            noise: config.noise,
        }
    }

    /// The phase of original timestep `t`.
    pub fn phase(&self, t: usize) -> Phase {
        if t > self.t_upper {
            Phase::Exploration
        } else if t < self.t_lower {
            Phase::Refinement
        } else {
            Phase::SoftLabel
        }
    }

    /// lambda(t): weight of the true class (under a square root).
    pub fn lambda(&self, t: usize) -> f64 {
        match self.phase(t) {
            Phase::Exploration => 0.0,
            Phase::Refinement => 1.0,
            Phase::SoftLabel => (self.t_upper - t) as f64 / (self.t_upper - self.t_lower) as f64,
        }
    }

    /// r(t): 0 while exploring, 1 afterwards (the other-class term is off at first).
    pub fn other_class_switch(&self, t: usize) -> f64 {
        if t > self.t_upper {
            0.0
        } else {
            1.0
        }
    }

    /// Draws the noise n for a batch of embeddings of `shape` from the caller's seeded `rng`.
    ///
    /// Values are drawn as f32 in row-major order (uniform [0, 1) or standard normal, per
    /// [`SoftLabelParams::noise`]) and then cast to `dtype`, so the stream does not depend on the
    /// dtype or device.
    pub fn draw_noise<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        shape: &Shape,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let count = shape.elem_count();
        let values: Vec<f32> = match self.noise {
            NoiseLaw::Uniform => (0..count).map(|_| rng.gen::<f32>()).collect(),
            NoiseLaw::Gaussian => (0..count)
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect(),
        };
        Tensor::from_vec(values, shape.clone(), device)?.to_dtype(dtype)
    }

    /// The transformed condition e'' for the whole CFG batch at original timestep `t`.
    ///
    /// `e_y` holds the batch's label embeddings (`(2B, D)`: B conditional rows, then B null
    /// rows), `e_other` the embedding of each row's random other class y* (same shape; the caller
    /// decides what a null row's y* is), `noise` the noise n (same shape, e.g. from
    /// [`SoftLabelParams::draw_noise`]). Any shape works as long as the three agree: the
    /// statistics are over all elements. Computation runs in `e_y`'s dtype.
    pub fn apply(
        &self,
        e_y: &Tensor,
        e_other: &Tensor,
        noise: &Tensor,
        t: usize,
    ) -> Result<Tensor> {
        let one_group = |x: &Tensor| x.unsqueeze(0);
        self.apply_grouped(
            &one_group(e_y)?,
            &one_group(e_other)?,
            &one_group(noise)?,
            t,
        )?
        .squeeze(0)
    }

    /// [`SoftLabelParams::apply`] on G independent CFG batches at once: inputs are (G, ...)
    /// and the mean and std of each group are taken over that group's elements alone. A
    /// batch-across-classes sampler passes one group per class (its conditional and null rows),
    /// so every class sees exactly the statistics of a CFG batch of its own.
    pub fn apply_grouped(
        &self,
        e_y: &Tensor,
        e_other: &Tensor,
        noise: &Tensor,
        t: usize,
    ) -> Result<Tensor> {
        let lambda = self.lambda(t);
        let r = self.other_class_switch(t);
        let rest = (1.0 - lambda).sqrt();
        let mixed = e_y
            .affine(lambda.sqrt(), 0.0)?
            .add(&noise.affine(self.beta_n * rest, 0.0)?)?
            .add(&e_other.affine(r * self.beta_s * rest, 0.0)?)?; // e'
        let (mixed_mean, mixed_std) = group_mean_and_unbiased_std(&mixed)?;
        let (target_mean, target_std) = group_mean_and_unbiased_std(e_y)?;
        let shape = mixed.shape().clone();
        mixed
            .flatten_from(1)?
            .broadcast_sub(&mixed_mean)?
            .broadcast_div(&mixed_std)?
            .broadcast_mul(&target_std)?
            .broadcast_add(&target_mean)? // e''
            .reshape(shape)
    }

    /// [`SoftLabelParams::apply`] with fresh noise drawn from `rng` (one draw per call = per step).
    pub fn apply_with_rng<R: Rng + ?Sized>(
        &self,
        e_y: &Tensor,
        e_other: &Tensor,
        t: usize,
        rng: &mut R,
    ) -> Result<Tensor> {
        let noise = self.draw_noise(rng, e_y.shape(), e_y.dtype(), e_y.device())?;
        self.apply(e_y, e_other, &noise, t)
    }
}

/// Mean and unbiased (n - 1) standard deviation over all elements, as 0-d tensors.
/// Per group (leading dimension): mean and unbiased (n - 1) standard deviation over all the
/// group's elements, each (G, 1).
fn group_mean_and_unbiased_std(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let x = x.flatten_from(1)?; // (G, n)
    let count = x.dim(1)?;
    let mean = x.mean_keepdim(1)?;
    let sum_sq = x.broadcast_sub(&mean)?.sqr()?.sum_keepdim(1)?;
    let std = sum_sq.affine(1.0 / (count as f64 - 1.0), 0.0)?.sqrt()?;
    Ok((mean, std))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_equals_one_call_per_group() {
        let dev = Device::Cpu;
        let params = SoftLabelParams::default();
        let e_y = Tensor::new(
            &[
                [[1.0f64, 2.0, 4.0], [0.5, -1.0, 3.0]],
                [[-2.0, 0.0, 1.0], [0.5, -1.0, 3.0]],
            ],
            &dev,
        )
        .unwrap();
        let e_other = Tensor::new(
            &[
                [[0.3f64, 0.1, -0.2], [0.3, 0.1, -0.2]],
                [[1.0, 1.5, 0.0], [1.0, 1.5, 0.0]],
            ],
            &dev,
        )
        .unwrap();
        let noise = Tensor::new(
            &[
                [[0.9f64, 0.2, 0.4], [0.1, 0.7, 0.3]],
                [[0.6, 0.5, 0.8], [0.0, 0.25, 0.75]],
            ],
            &dev,
        )
        .unwrap();
        for t in [950, 700, 300] {
            let grouped = params.apply_grouped(&e_y, &e_other, &noise, t).unwrap();
            for g in 0..2 {
                let alone = params
                    .apply(
                        &e_y.get(g).unwrap(),
                        &e_other.get(g).unwrap(),
                        &noise.get(g).unwrap(),
                        t,
                    )
                    .unwrap();
                let diff = (grouped.get(g).unwrap() - alone)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap();
                assert!(diff < 1e-12, "t={t} group {g}: {diff}");
            }
        }
        // Groups do not see each other: changing group 1 leaves group 0 unchanged.
        let moved = params
            .apply_grouped(&e_y, &(e_other.clone() * 3.0).unwrap(), &noise, 700)
            .unwrap();
        let base = params.apply_grouped(&e_y, &e_other, &noise, 700).unwrap();
        assert_ne!(
            moved.get(1).unwrap().to_vec2::<f64>().unwrap(),
            base.get(1).unwrap().to_vec2::<f64>().unwrap()
        );
    }
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    type Matrix = Vec<Vec<f64>>;

    /// DESIGN §5 written out in f64 loops, independent of the tensor code.
    fn reference(e: &Matrix, other: &Matrix, noise: &Matrix, t: usize) -> Matrix {
        let (t_upper, t_lower, beta_n, beta_s) = (900.0, 500.0, 0.06, 0.01);
        let tf = t as f64;
        let lambda: f64 = if tf > t_upper {
            0.0
        } else if tf < t_lower {
            1.0
        } else {
            (t_upper - tf) / (t_upper - t_lower)
        };
        let r = if tf > t_upper { 0.0 } else { 1.0 };
        let mixed: Matrix = (0..e.len())
            .map(|i| {
                (0..e[i].len())
                    .map(|j| {
                        lambda.sqrt() * e[i][j]
                            + beta_n * (1.0 - lambda).sqrt() * noise[i][j]
                            + r * beta_s * (1.0 - lambda).sqrt() * other[i][j]
                    })
                    .collect()
            })
            .collect();
        let stats = |m: &Matrix| {
            let all: Vec<f64> = m.concat();
            let mean = all.iter().sum::<f64>() / all.len() as f64;
            let var =
                all.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (all.len() as f64 - 1.0);
            (mean, var.sqrt())
        };
        let (m_mean, m_std) = stats(&mixed);
        let (e_mean, e_std) = stats(e);
        mixed
            .iter()
            .map(|row| {
                row.iter()
                    .map(|x| (x - m_mean) / m_std * e_std + e_mean)
                    .collect()
            })
            .collect()
    }

    fn random(rng: &mut ChaCha20Rng, rows: usize, cols: usize, lo: f64, hi: f64) -> Matrix {
        (0..rows)
            .map(|_| (0..cols).map(|_| rng.gen_range(lo..hi)).collect())
            .collect()
    }

    fn tensor(m: &Matrix, dtype: DType) -> Tensor {
        Tensor::from_vec(m.concat(), (m.len(), m[0].len()), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    fn host(t: &Tensor) -> Matrix {
        t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap()
    }

    fn max_abs_diff(a: &Matrix, b: &Matrix) -> f64 {
        a.concat()
            .iter()
            .zip(b.concat())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn lambda_and_switch_follow_the_three_phases() {
        let p = SoftLabelParams::default();
        assert_eq!(
            (p.lambda(999), p.other_class_switch(999), p.phase(999)),
            (0.0, 0.0, Phase::Exploration)
        );
        assert_eq!((p.lambda(901), p.other_class_switch(901)), (0.0, 0.0));
        assert_eq!(
            (p.lambda(900), p.other_class_switch(900), p.phase(900)),
            (0.0, 1.0, Phase::SoftLabel)
        );
        assert_eq!(p.lambda(700), 0.5);
        assert_eq!(p.lambda(600), 0.75);
        assert_eq!((p.lambda(500), p.phase(500)), (1.0, Phase::SoftLabel));
        assert_eq!(
            (p.lambda(499), p.other_class_switch(499), p.phase(499)),
            (1.0, 1.0, Phase::Refinement)
        );
        assert_eq!(p.lambda(0), 1.0);
    }

    #[test]
    fn transform_matches_independent_f64_computation_in_every_phase() {
        // A CFG batch: B = 2 conditional rows then 2 null rows, D = 6.
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let e = random(&mut rng, 4, 6, -0.5, 0.7);
        let other = random(&mut rng, 4, 6, -0.5, 0.7);
        let noise = random(&mut rng, 4, 6, 0.0, 1.0);
        let p = SoftLabelParams::default();
        for t in [950, 700, 300] {
            let want = reference(&e, &other, &noise, t);
            let got64 = p
                .apply(
                    &tensor(&e, DType::F64),
                    &tensor(&other, DType::F64),
                    &tensor(&noise, DType::F64),
                    t,
                )
                .unwrap();
            assert!(
                max_abs_diff(&host(&got64), &want) < 1e-12,
                "t = {t}: f64 off by {}",
                max_abs_diff(&host(&got64), &want)
            );
            let got32 = p
                .apply(
                    &tensor(&e, DType::F32),
                    &tensor(&other, DType::F32),
                    &tensor(&noise, DType::F32),
                    t,
                )
                .unwrap();
            assert!(
                max_abs_diff(&host(&got32), &want) < 1e-5,
                "t = {t}: f32 off by {}",
                max_abs_diff(&host(&got32), &want)
            );
        }
        // Refinement returns the embedding itself; exploration does not depend on it beyond its statistics.
        let refined = reference(&e, &other, &noise, 300);
        assert!(max_abs_diff(&refined, &e) < 1e-12);
        let explored = reference(&e, &other, &noise, 950);
        assert!(max_abs_diff(&explored, &e) > 0.1);
    }

    #[test]
    fn rng_noise_is_reproducible_and_follows_the_law() {
        let e = Tensor::from_vec(
            (0..40).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(),
            (4, 10),
            &Device::Cpu,
        )
        .unwrap();
        let other = e.flip(&[0]).unwrap();
        let uniform = SoftLabelParams::default();
        let run = |p: &SoftLabelParams, seed| {
            p.apply_with_rng(&e, &other, 700, &mut ChaCha20Rng::seed_from_u64(seed))
                .unwrap()
        };
        assert_eq!(host(&run(&uniform, 1)), host(&run(&uniform, 1)));
        assert_ne!(host(&run(&uniform, 1)), host(&run(&uniform, 2)));

        let draw = |p: &SoftLabelParams| {
            p.draw_noise(
                &mut ChaCha20Rng::seed_from_u64(3),
                &Shape::from((50, 20)),
                DType::F64,
                &Device::Cpu,
            )
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
        };
        let u = draw(&uniform);
        assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
        let g = draw(&SoftLabelParams {
            noise: NoiseLaw::Gaussian,
            ..uniform
        });
        let mean = g.iter().sum::<f64>() / g.len() as f64;
        assert!(g.iter().any(|&v| v < 0.0) && g.iter().any(|&v| v > 1.0));
        assert!(mean.abs() < 0.1, "Gaussian noise mean {mean}");

        // apply_with_rng is apply with the noise of draw_noise from the same stream.
        let noise = uniform
            .draw_noise(
                &mut ChaCha20Rng::seed_from_u64(1),
                e.shape(),
                DType::F32,
                &Device::Cpu,
            )
            .unwrap();
        assert_eq!(
            host(&uniform.apply(&e, &other, &noise, 700).unwrap()),
            host(&run(&uniform, 1))
        );
    }

    #[test]
    fn params_round_trip_through_toml_style_keys() {
        let json = serde_json::to_string(&SoftLabelParams::default()).unwrap();
        assert!(
            json.contains("\"t-upper\":900") && json.contains("\"noise\":\"uniform\""),
            "{json}"
        );
        let back: SoftLabelParams =
            serde_json::from_str(r#"{"beta-n": 0.1, "noise": "gaussian"}"#).unwrap();
        assert_eq!(
            back,
            SoftLabelParams {
                beta_n: 0.1,
                noise: NoiseLaw::Gaussian,
                ..SoftLabelParams::default()
            }
        );
        assert_eq!(
            SoftLabelParams::from_config(&DistillConfig::default()),
            SoftLabelParams::default()
        );
    }
}
