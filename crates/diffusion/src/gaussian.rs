//! Gaussian diffusion (DDPM with the IDDPM learned-range variance) with timestep respacing,
//! as DiT's `create_diffusion` builds it (docs/METHOD.md §4): the schedule, x0 prediction, the
//! posterior, the sampler step (with a hook to shift the posterior mean), DDIM, and the
//! hybrid training loss.

use crate::error::{DiffusionError, Result};
use candle_core::{DType, Device, Tensor};

/// Training steps of every DiT model.
pub const NUM_TRAIN_TIMESTEPS: usize = 1000;
/// Linear beta schedule, scaled for 1000 steps (DDPM).
pub const BETA_START: f64 = 1e-4;
pub const BETA_END: f64 = 0.02;

/// `space_timesteps(num_timesteps, section_counts)` of ADM/DiT for a plain count ("50") or
/// comma-separated section counts ("10,15,20"); "ddimN" gives the DDIM stride rule.
pub fn space_timesteps(num_timesteps: usize, section_counts: &str) -> Result<Vec<usize>> {
    let bad = |reason: String| DiffusionError::BadRespacing {
        spec: section_counts.to_string(),
        reason,
    };
    if let Some(n) = section_counts.strip_prefix("ddim") {
        let desired: usize = n.parse().map_err(|_| bad("expected ddimN".into()))?;
        for stride in 1..num_timesteps {
            if (0..num_timesteps).step_by(stride).count() == desired {
                return Ok((0..num_timesteps).step_by(stride).collect());
            }
        }
        return Err(bad(format!(
            "cannot create exactly {desired} steps with an integer stride"
        )));
    }
    let counts: Vec<usize> = section_counts
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("expected a step count such as \"50\" or counts \"10,15,20\"".into()))?;
    let size_per = num_timesteps / counts.len();
    let extra = num_timesteps % counts.len();
    let mut start = 0;
    let mut all = Vec::new();
    for (i, &count) in counts.iter().enumerate() {
        let size = size_per + usize::from(i < extra);
        if size < count {
            return Err(bad(format!(
                "cannot divide a section of {size} steps into {count}"
            )));
        }
        if count == 0 {
            return Err(bad("a section of 0 steps".into()));
        }
        let frac_stride = if count <= 1 {
            1.0
        } else {
            (size - 1) as f64 / (count - 1) as f64
        };
        let mut cur = 0.0f64;
        for _ in 0..count {
            // Python's round(): half to even.
            all.push(start + round_half_even(cur) as usize);
            cur += frac_stride;
        }
        start += size;
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - 1.0
    } else {
        r
    }
}

/// betas = linspace(1e-4, 0.02, 1000) in f64.
pub fn linear_betas(num_timesteps: usize) -> Vec<f64> {
    let scale = 1000.0 / num_timesteps as f64;
    let (start, end) = (scale * BETA_START, scale * BETA_END);
    (0..num_timesteps)
        .map(|i| start + (end - start) * i as f64 / (num_timesteps - 1).max(1) as f64)
        .collect()
}

/// A (respaced) diffusion process: per-index coefficients in f64.
#[derive(Debug, Clone)]
pub struct GaussianDiffusion {
    /// Respaced index i -> original timestep s_i (the model is called with s_i).
    pub timestep_map: Vec<usize>,
    pub betas: Vec<f64>,
    pub alphas_cumprod: Vec<f64>,
    pub alphas_cumprod_prev: Vec<f64>,
    pub sqrt_recip_alphas_cumprod: Vec<f64>,
    pub sqrt_recipm1_alphas_cumprod: Vec<f64>,
    pub posterior_variance: Vec<f64>,
    /// log of the posterior variance with entry 0 replaced by entry 1 (it is 0 at t = 0).
    pub posterior_log_variance_clipped: Vec<f64>,
    pub posterior_mean_coef1: Vec<f64>,
    pub posterior_mean_coef2: Vec<f64>,
}

impl GaussianDiffusion {
    /// DiT's `create_diffusion(timestep_respacing)`: linear betas over 1000 steps respaced by
    /// `space_timesteps(1000, respacing)`; "" or "1000" keeps every step (training).
    pub fn new(respacing: &str) -> Result<Self> {
        let base = linear_betas(NUM_TRAIN_TIMESTEPS);
        let spec = if respacing.is_empty() {
            NUM_TRAIN_TIMESTEPS.to_string()
        } else {
            respacing.to_string()
        };
        let kept = space_timesteps(NUM_TRAIN_TIMESTEPS, &spec)?;
        // New betas from the kept cumulative products: beta_i = 1 - abar(s_i) / abar(s_{i-1}).
        let mut abar = 1.0f64;
        let mut last = 1.0f64;
        let mut betas = Vec::with_capacity(kept.len());
        let mut k = 0;
        for (t, b) in base.iter().enumerate() {
            abar *= 1.0 - b;
            if k < kept.len() && kept[k] == t {
                betas.push(1.0 - abar / last);
                last = abar;
                k += 1;
            }
        }
        Ok(Self::from_betas(betas, kept))
    }

    fn from_betas(betas: Vec<f64>, timestep_map: Vec<usize>) -> Self {
        let n = betas.len();
        let mut alphas_cumprod = Vec::with_capacity(n);
        let mut acc = 1.0;
        for b in &betas {
            acc *= 1.0 - b;
            alphas_cumprod.push(acc);
        }
        let alphas_cumprod_prev: Vec<f64> = std::iter::once(1.0)
            .chain(alphas_cumprod[..n - 1].iter().copied())
            .collect();
        let posterior_variance: Vec<f64> = (0..n)
            .map(|i| betas[i] * (1.0 - alphas_cumprod_prev[i]) / (1.0 - alphas_cumprod[i]))
            .collect();
        let posterior_log_variance_clipped: Vec<f64> = (0..n)
            .map(|i| {
                if i == 0 && n > 1 {
                    posterior_variance[1].ln()
                } else {
                    posterior_variance[i].ln()
                }
            })
            .collect();
        GaussianDiffusion {
            sqrt_recip_alphas_cumprod: alphas_cumprod.iter().map(|a| (1.0 / a).sqrt()).collect(),
            sqrt_recipm1_alphas_cumprod: alphas_cumprod
                .iter()
                .map(|a| (1.0 / a - 1.0).sqrt())
                .collect(),
            posterior_mean_coef1: (0..n)
                .map(|i| betas[i] * alphas_cumprod_prev[i].sqrt() / (1.0 - alphas_cumprod[i]))
                .collect(),
            posterior_mean_coef2: (0..n)
                .map(|i| {
                    (1.0 - alphas_cumprod_prev[i]) * (1.0 - betas[i]).sqrt()
                        / (1.0 - alphas_cumprod[i])
                })
                .collect(),
            posterior_variance,
            posterior_log_variance_clipped,
            alphas_cumprod,
            alphas_cumprod_prev,
            betas,
            timestep_map,
        }
    }

    /// Number of (respaced) steps S.
    pub fn num_steps(&self) -> usize {
        self.betas.len()
    }

    /// The original timestep the model sees at respaced index i.
    pub fn original_timestep(&self, i: usize) -> usize {
        self.timestep_map[i]
    }

    /// (N,) f32 tensor of the original timestep of index i, as the model takes it.
    pub fn model_timesteps(&self, i: usize, n: usize, device: &Device) -> Result<Tensor> {
        Ok(Tensor::full(self.timestep_map[i] as f32, n, device)?)
    }

    /// Splits a model output (N, 2C, H, W) into eps and the variance value v, and predicts at
    /// respaced index i: x0_hat, the posterior mean and the learned-range log variance.
    pub fn predict(&self, model_out: &Tensor, x_t: &Tensor, i: usize) -> Result<StepPrediction> {
        self.predict_with(model_out, x_t, i, false)
    }

    /// As `predict`; with `clip_denoised` x0_hat is clamped to [-1, 1] before the posterior
    /// mean (IDDPM/ADM `clip_denoised=True`, the usual choice for pixel-space models; DiT's
    /// latent sampling does not clip). `eps` stays the model's.
    pub fn predict_with(
        &self,
        model_out: &Tensor,
        x_t: &Tensor,
        i: usize,
        clip_denoised: bool,
    ) -> Result<StepPrediction> {
        let c = x_t.dim(1)?;
        if model_out.dim(1)? != 2 * c {
            return Err(DiffusionError::InputShape {
                found: model_out.dims().to_vec(),
                expected: format!("model output with 2 x {c} channels (eps, v: learned sigma)"),
            });
        }
        let eps = model_out.narrow(1, 0, c)?;
        let v = model_out.narrow(1, c, c)?;
        let x0_hat = self.predict_x0(x_t, &eps, i)?;
        let x0_hat = if clip_denoised {
            x0_hat.clamp(-1f32, 1f32)?
        } else {
            x0_hat
        };
        let mean =
            ((&x0_hat * self.posterior_mean_coef1[i])? + (x_t * self.posterior_mean_coef2[i])?)?;
        // Learned range: log sigma^2 = f log beta + (1 - f) log_var_clipped, f = (v + 1) / 2.
        let (min_log, max_log) = (self.posterior_log_variance_clipped[i], self.betas[i].ln());
        let frac = ((v + 1.0)? / 2.0)?;
        let log_variance = ((&frac * max_log)? + ((1.0 - frac)? * min_log)?)?;
        Ok(StepPrediction {
            index: i,
            timestep: self.timestep_map[i],
            eps,
            x0_hat,
            mean,
            log_variance,
        })
    }

    /// x0_hat = sqrt(1/abar) x_t - sqrt(1/abar - 1) eps (no clipping, as the reference).
    pub fn predict_x0(&self, x_t: &Tensor, eps: &Tensor, i: usize) -> Result<Tensor> {
        Ok(((x_t * self.sqrt_recip_alphas_cumprod[i])?
            - (eps * self.sqrt_recipm1_alphas_cumprod[i])?)?)
    }

    /// The ancestral step x_{t-1} = mean + sigma_t z; no noise at index 0.
    pub fn ddpm_step(&self, pred: &StepPrediction, z: &Tensor) -> Result<Tensor> {
        if pred.index == 0 {
            return Ok(pred.mean.clone());
        }
        Ok((&pred.mean + (pred.sigma()? * z)?)?)
    }

    /// DDIM step (eta = 0 deterministic; eta > 0 adds noise z).
    pub fn ddim_step(
        &self,
        pred: &StepPrediction,
        x_t: &Tensor,
        eta: f64,
        z: &Tensor,
    ) -> Result<Tensor> {
        let i = pred.index;
        let (abar, abar_prev) = (self.alphas_cumprod[i], self.alphas_cumprod_prev[i]);
        // eps re-derived from x0_hat so that a caller's change to x0_hat carries through.
        let eps = ((x_t * self.sqrt_recip_alphas_cumprod[i])? - &pred.x0_hat)?
            .affine(1.0 / self.sqrt_recipm1_alphas_cumprod[i], 0.0)?;
        let sigma =
            eta * ((1.0 - abar_prev) / (1.0 - abar)).sqrt() * (1.0 - abar / abar_prev).sqrt();
        let mean = ((&pred.x0_hat * abar_prev.sqrt())?
            + (eps * (1.0 - abar_prev - sigma * sigma).max(0.0).sqrt())?)?;
        if i == 0 || sigma == 0.0 {
            return Ok(mean);
        }
        Ok((mean + (z * sigma)?)?)
    }

    /// q(x_t | x0) at respaced index i: sqrt(abar) x0 + sqrt(1 - abar) noise, per-row indices.
    pub fn q_sample(&self, x0: &Tensor, indices: &[usize], noise: &Tensor) -> Result<Tensor> {
        let a = self.per_row(indices, |i| self.alphas_cumprod[i].sqrt(), x0.device())?;
        let b = self.per_row(
            indices,
            |i| (1.0 - self.alphas_cumprod[i]).sqrt(),
            x0.device(),
        )?;
        Ok((x0.broadcast_mul(&a)? + noise.broadcast_mul(&b)?)?)
    }

    /// (N, 1, 1, 1) f32 tensor of f(index) per row.
    fn per_row(
        &self,
        indices: &[usize],
        f: impl Fn(usize) -> f64,
        device: &Device,
    ) -> Result<Tensor> {
        let v: Vec<f32> = indices.iter().map(|&i| f(i) as f32).collect();
        Ok(Tensor::from_vec(v, (indices.len(), 1, 1, 1), device)?)
    }

    /// The hybrid loss of DiT/IDDPM per row: MSE(eps) + L_vlb, where L_vlb (in bits per
    /// dimension) uses the learned variance with the predicted mean detached, and is the
    /// decoder NLL at t = 0. Inputs: model_out (N, 2C, H, W), x0, x_t, noise (N, C, H, W).
    /// Returns (loss, mse, vb), each (N,).
    pub fn training_losses(
        &self,
        model_out: &Tensor,
        x0: &Tensor,
        x_t: &Tensor,
        noise: &Tensor,
        indices: &[usize],
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let device = x0.device();
        let c = x0.dim(1)?;
        let eps = model_out.narrow(1, 0, c)?;
        let v = model_out.narrow(1, c, c)?;
        let mse = (noise - &eps)?.sqr()?.flatten_from(1)?.mean(1)?; // (N,)

        // Variance term: the mean comes from eps.detach(), so only v learns from it.
        let row = |f: &dyn Fn(usize) -> f64| self.per_row(indices, f, device);
        let coef1 = row(&|i| self.posterior_mean_coef1[i])?;
        let coef2 = row(&|i| self.posterior_mean_coef2[i])?;
        let true_mean = (x0.broadcast_mul(&coef1)? + x_t.broadcast_mul(&coef2)?)?;
        let true_log_var = row(&|i| self.posterior_log_variance_clipped[i])?;
        let x0_hat = (x_t.broadcast_mul(&row(&|i| self.sqrt_recip_alphas_cumprod[i])?)?
            - eps
                .detach()
                .broadcast_mul(&row(&|i| self.sqrt_recipm1_alphas_cumprod[i])?)?)?;
        let model_mean = (x0_hat.broadcast_mul(&coef1)? + x_t.broadcast_mul(&coef2)?)?;
        let min_log = row(&|i| self.posterior_log_variance_clipped[i])?;
        let max_log = row(&|i| self.betas[i].ln())?;
        let frac = ((v + 1.0)? / 2.0)?;
        let model_log_var =
            (frac.broadcast_mul(&max_log)? + (1.0 - frac)?.broadcast_mul(&min_log)?)?;

        // KL(N(true_mean, e^true_lv) || N(model_mean, e^model_lv)), in bits.
        let kl = ((model_log_var.broadcast_sub(&true_log_var)?
            + true_log_var.broadcast_sub(&model_log_var)?.exp()?
            + (true_mean - &model_mean)?
                .sqr()?
                .mul(&model_log_var.neg()?.exp()?)?)?
            - 1.0)?
            * 0.5;
        let kl = (kl? / std::f64::consts::LN_2)?.flatten_from(1)?.mean(1)?; // (N,)
        let nll =
            (discretized_gaussian_log_likelihood(x0, &model_mean, &(&model_log_var * 0.5)?)?
                .neg()?
                / std::f64::consts::LN_2)?
                .flatten_from(1)?
                .mean(1)?; // (N,)
        let at_zero: Vec<u8> = indices.iter().map(|&i| u8::from(i == 0)).collect();
        let at_zero = Tensor::from_vec(at_zero, indices.len(), device)?;
        let vb = at_zero.where_cond(&nll, &kl)?;
        let loss = (&mse + &vb)?;
        Ok((loss, mse, vb))
    }
}

/// Log-likelihood of x (data in [-1, 1], 8-bit bins of width 2/255) under a discretised Gaussian.
fn discretized_gaussian_log_likelihood(
    x: &Tensor,
    means: &Tensor,
    log_scales: &Tensor,
) -> Result<Tensor> {
    const BIN_HALF_WIDTH: f64 = 1.0 / 255.0;
    const MIN_PROB: f64 = 1e-12;
    let centered = (x - means)?;
    let inv_stdv = log_scales.neg()?.exp()?;
    let cdf_plus = approx_standard_normal_cdf(&((&centered + BIN_HALF_WIDTH)? * &inv_stdv)?)?;
    let cdf_min = approx_standard_normal_cdf(&((&centered - BIN_HALF_WIDTH)? * &inv_stdv)?)?;
    let log_cdf_plus = cdf_plus.clamp(MIN_PROB, f64::MAX)?.log()?;
    let log_one_minus_cdf_min = (1.0 - &cdf_min)?.clamp(MIN_PROB, f64::MAX)?.log()?;
    let log_cdf_delta = (cdf_plus - cdf_min)?.clamp(MIN_PROB, f64::MAX)?.log()?;
    let low = x.lt(-0.999)?;
    let high = x.gt(0.999)?;
    Ok(low.where_cond(
        &log_cdf_plus,
        &high.where_cond(&log_one_minus_cdf_min, &log_cdf_delta)?,
    )?)
}

/// 0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
fn approx_standard_normal_cdf(x: &Tensor) -> Result<Tensor> {
    let inner = ((x + (x.powf(3.0)? * 0.044715)?)? * (2.0 / std::f64::consts::PI).sqrt())?;
    Ok(((inner.tanh()? + 1.0)? * 0.5)?)
}

/// One step's prediction. `mean` may be shifted by guidance (`shift_mean`) before `ddpm_step`.
#[derive(Debug, Clone)]
pub struct StepPrediction {
    /// Respaced index i (S-1 .. 0).
    pub index: usize,
    /// The original timestep s_i.
    pub timestep: usize,
    pub eps: Tensor,          // (N, C, H, W)
    pub x0_hat: Tensor,       // (N, C, H, W)
    pub mean: Tensor,         // (N, C, H, W)
    pub log_variance: Tensor, // (N, C, H, W), learned range
}

impl StepPrediction {
    /// sigma_t = exp(0.5 log sigma^2). (N, C, H, W).
    pub fn sigma(&self) -> Result<Tensor> {
        Ok((&self.log_variance * 0.5)?.exp()?)
    }

    /// mean <- mean + delta (guidance; DMGD adds rho * sigma_t * (-grad)).
    pub fn shift_mean(&mut self, delta: &Tensor) -> Result<()> {
        self.mean = (&self.mean + delta)?;
        Ok(())
    }
}

/// Standard-normal noise of `shape` from a seeded generator, identical on every device.
pub fn randn(rng: &mut impl rand::Rng, shape: &[usize], device: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| rng.sample::<f32, _>(rand_distr::StandardNormal))
        .collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?
        .to_device(device)?
        .to_dtype(DType::F32)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_step_respacing_matches_the_reference_list() {
        let expected = [
            0, 20, 41, 61, 82, 102, 122, 143, 163, 183, 204, 224, 245, 265, 285, 306, 326, 347,
            367, 387, 408, 428, 449, 469, 489, 510, 530, 550, 571, 591, 612, 632, 652, 673, 693,
            714, 734, 754, 775, 795, 816, 836, 856, 877, 897, 917, 938, 958, 979, 999,
        ];
        assert_eq!(space_timesteps(1000, "50").unwrap(), expected);
        let d = GaussianDiffusion::new("50").unwrap();
        assert_eq!(d.timestep_map, expected);
        // The respaced process keeps the cumulative products of the kept steps.
        let full = GaussianDiffusion::new("").unwrap();
        for (i, &s) in expected.iter().enumerate() {
            assert!((d.alphas_cumprod[i] - full.alphas_cumprod[s]).abs() < 1e-12);
        }
    }

    #[test]
    fn respacing_errors_name_the_spec() {
        let err = space_timesteps(1000, "abc").unwrap_err().to_string();
        assert!(err.contains("\"abc\""), "{err}");
        assert!(space_timesteps(10, "20").is_err());
        assert_eq!(space_timesteps(1000, "ddim50").unwrap().len(), 50);
    }

    #[test]
    fn posterior_log_variance_is_clipped_at_zero() {
        let d = GaussianDiffusion::new("").unwrap();
        assert_eq!(d.posterior_variance[0], 0.0);
        assert_eq!(
            d.posterior_log_variance_clipped[0],
            d.posterior_variance[1].ln()
        );
        assert!((d.betas[999] - 0.02).abs() < 1e-15 && (d.betas[0] - 1e-4).abs() < 1e-15);
    }

    fn scalar_tensor(v: f32, c: usize) -> Tensor {
        Tensor::full(v, (1, c, 1, 1), &Device::Cpu).unwrap()
    }

    fn value(t: &Tensor) -> f32 {
        t.flatten_all()
            .unwrap()
            .get(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn ddim_with_eta_zero_is_the_deterministic_update() {
        let d = GaussianDiffusion::new("50").unwrap();
        let (x_t, eps, i) = (0.7f32, -0.4f32, 30);
        let out = Tensor::cat(&[scalar_tensor(eps, 1), scalar_tensor(0.0, 1)], 1).unwrap();
        let pred = d.predict(&out, &scalar_tensor(x_t, 1), i).unwrap();
        let next = d
            .ddim_step(&pred, &scalar_tensor(x_t, 1), 0.0, &scalar_tensor(5.0, 1))
            .unwrap();
        let (abar, prev) = (d.alphas_cumprod[i], d.alphas_cumprod_prev[i]);
        let x0 = (x_t as f64 - (1.0 - abar).sqrt() * eps as f64) / abar.sqrt();
        let expected = prev.sqrt() * x0 + (1.0 - prev).sqrt() * eps as f64;
        assert!(
            (value(&next) as f64 - expected).abs() < 1e-4,
            "{} vs {expected}",
            value(&next)
        );
    }

    #[test]
    fn clip_denoised_clamps_x0_before_the_posterior_mean() {
        let d = GaussianDiffusion::new("50").unwrap();
        let i = 45; // high noise: x0_hat = sqrt(1/abar) x_t - ... is far outside [-1, 1]
        let out = Tensor::cat(&[scalar_tensor(-1.0, 1), scalar_tensor(0.0, 1)], 1).unwrap();
        let x_t = scalar_tensor(1.5, 1);
        let free = d.predict(&out, &x_t, i).unwrap();
        let clipped = d.predict_with(&out, &x_t, i, true).unwrap();
        assert!(value(&free.x0_hat) > 1.0);
        assert_eq!(value(&clipped.x0_hat), 1.0);
        let expected = d.posterior_mean_coef1[i] + d.posterior_mean_coef2[i] * 1.5;
        assert!((value(&clipped.mean) as f64 - expected).abs() < 1e-5);
    }
}
