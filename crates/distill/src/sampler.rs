//! One sampling loop for every generative method: CFG sampling from a DiT, with DMGD's dynamic
//! soft labels and OT guidance, or mgd3's mode guidance, switched on by the configuration.
//!
//! Batching: image `index` of every class of a group runs in one DiT batch. Each class keeps
//! its own memory, support, modes and random stream, so a class's image is the same whatever
//! else shares its batch (up to the floating-point order of batched matmuls; groups are fixed
//! by `Shard::groups` so that sharded and resumed runs batch exactly as a whole run does).

use crate::config::{DistillConfig, Method, SamplerKind};
use crate::mode_guidance::ModeGuidanceParams;
use crate::shard::image_seed;
use crate::soft_label::SoftLabelParams;
use candle_core::{DType, Tensor};
use dmgd_diffusion::dit::{Cfg, Dit};
use dmgd_diffusion::gaussian::{randn, GaussianDiffusion};
use dmgd_ot::guidance::{ot_guidance_batch, Memory};
use dmgd_ot::sinkhorn::SinkhornParams;
use dmgd_ot::support::Support;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the sampler knows about one class of the run.
pub struct ClassState {
    /// Index of the class in the run's class list (names the output folder, seeds the noise).
    pub class: usize,
    /// The DiT label of the class (its row of the label-embedding table).
    pub label: usize,
    /// Final latents of the images already generated (Greedy Progressive Matching).
    pub memory: Memory,
    /// K weighted support points of the real class latents (OT guidance).
    pub support: Option<Support>,
    /// IPC k-means modes of the real class latents, (IPC, D) (mode guidance).
    pub modes: Option<Tensor>,
}

/// The fixed parts of a sampling run.
pub struct Sampler<'a> {
    pub dit: &'a Dit,
    pub diffusion: &'a GaussianDiffusion,
    pub config: &'a DistillConfig,
    pub cfg: Cfg,
    /// DiT labels of every class of the run: y* is drawn among them (docs/METHOD.md §5).
    pub run_labels: &'a [usize],
    /// Clamp x0_hat to [-1, 1] at every step (resolved `clip-denoised`).
    pub clip_denoised: bool,
}

/// Sampling produced a NaN or infinity: the class, image and step at fault.
#[derive(Debug, thiserror::Error)]
#[error("sampling diverged (NaN or infinity) for class {class} image {index} at respaced step {step} (timestep {timestep})")]
pub struct Diverged {
    pub class: usize,
    pub index: usize,
    pub step: usize,
    pub timestep: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Diverged(#[from] Diverged),
    #[error(transparent)]
    Diffusion(#[from] dmgd_diffusion::DiffusionError),
    #[error(transparent)]
    Ot(#[from] dmgd_ot::OtError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Sampler<'_> {
    fn latent_shape(&self) -> [usize; 3] {
        let c = &self.dit.config;
        [c.in_channels, c.input_size, c.input_size]
    }

    /// Generates image `index` of every class in `states` (one DiT batch) and returns the final
    /// latents, (B, C, H, W). Does not touch the memories: the caller pushes the results once
    /// they are safely written.
    pub fn sample(&self, states: &[ClassState], index: usize) -> Result<Tensor, SampleError> {
        let device = self.dit.device().clone();
        let config = self.config;
        let b = states.len();
        let shape = self.latent_shape();

        // Per-image random streams: x_T, then y*, then per step the soft-label noise and z.
        let mut rngs: Vec<ChaCha8Rng> = states
            .iter()
            .map(|s| ChaCha8Rng::seed_from_u64(image_seed(config.seed, s.class, index)))
            .collect();
        let x_t: Vec<Tensor> = rngs
            .iter_mut()
            .map(|rng| randn(rng, &shape, &device))
            .collect::<Result<_, _>>()?;
        let mut x_t = Tensor::stack(&x_t, 0)?; // (B, C, H, W)
        let other_labels: Vec<usize> = states
            .iter()
            .zip(rngs.iter_mut())
            .map(|(s, rng)| draw_other_label(self.run_labels, s.label, rng))
            .collect();

        let labels: Vec<usize> = states.iter().map(|s| s.label).collect();
        let y_emb = self.dit.cfg_label_embedding(&labels)?; // (2B, D): conditional rows, then null rows
        let y_star_emb = if config.uses_soft_labels() {
            let doubled: Vec<usize> = other_labels.iter().chain(&other_labels).copied().collect();
            Some(self.dit.label_embedding(&doubled)?) // (2B, D), row r pairs with y_emb row r
        } else {
            None
        };
        let sinkhorn = SinkhornParams {
            eps: config.sinkhorn_eps,
            n_iter: config.sinkhorn_iterations,
            domain: if config.sinkhorn_log_domain {
                dmgd_ot::sinkhorn::SinkhornDomain::Log
            } else {
                dmgd_ot::sinkhorn::SinkhornDomain::Plain
            },
        };
        let (ot_first, ot_last) = config.ot_window_steps();
        let mode_guidance = ModeGuidanceParams::from_config(config);
        let steps = self.diffusion.num_steps();

        for i in (0..steps).rev() {
            let timestep = self.diffusion.original_timestep(i);
            let emb = match &y_star_emb {
                Some(y_star_emb) => {
                    self.soft_label_batch(&y_emb, y_star_emb, timestep, &mut rngs)?
                }
                None => y_emb.clone(),
            };
            let t = self.diffusion.model_timesteps(i, b, &device)?;
            let out = self.dit.forward_with_cfg(&x_t, &t, &emb, &self.cfg)?; // (B, 2C, H, W)
            let mut pred = self
                .diffusion
                .predict_with(&out, &x_t, i, self.clip_denoised)?;

            if config.uses_ot() && (ot_first..=ot_last).contains(&i) {
                // grad_{x_t} L = sqrt(1/abar_t) grad_{x0_hat} L (eps is held constant);
                // mean += rho * sigma_t * (-grad_{x_t} L).
                let supports: Vec<&Support> = states
                    .iter()
                    .map(|s| {
                        s.support
                            .as_ref()
                            .expect("OT guidance needs every class's support")
                    })
                    .collect();
                let memories: Vec<&Memory> = states.iter().map(|s| &s.memory).collect();
                let x0 = pred.x0_hat.to_dtype(DType::F32)?;
                let guidance = ot_guidance_batch(&x0, &memories, &supports, &sinkhorn)?;
                let scale = -config.rho * self.diffusion.sqrt_recip_alphas_cumprod[i];
                let shift = (pred.sigma()? * (guidance.grad * scale)?)?;
                pred.shift_mean(&shift)?;
            }
            if config.method == Method::Mgd3 && mode_guidance.is_active(i, steps) {
                let modes: Vec<Tensor> = states
                    .iter()
                    .map(|s| {
                        let modes = s
                            .modes
                            .as_ref()
                            .expect("mode guidance needs every class's modes");
                        modes.get(index % modes.dim(0)?)?.reshape(shape.to_vec())
                    })
                    .collect::<Result<_, _>>()?;
                let modes = Tensor::stack(&modes, 0)?; // (B, C, H, W)
                if let Some(shift) =
                    mode_guidance.shift(i, steps, &pred.x0_hat, &modes, &pred.sigma()?)?
                {
                    pred.shift_mean(&shift)?;
                }
            }

            let z: Vec<Tensor> = rngs
                .iter_mut()
                .map(|rng| randn(rng, &shape, &device))
                .collect::<Result<_, _>>()?;
            let z = Tensor::stack(&z, 0)?;
            x_t = match config.sampler {
                SamplerKind::Ddpm => self.diffusion.ddpm_step(&pred, &z)?,
                SamplerKind::Ddim => self.diffusion.ddim_step(&pred, &x_t, 0.0, &z)?,
            };
            check_finite(&x_t, states, index, i, timestep)?;
        }
        Ok(x_t)
    }

    /// The soft-label transform, applied per class to its (conditional, null) pair of rows, so a
    /// class sees exactly what it would in a batch of its own (the reference's CFG batch).
    fn soft_label_batch(
        &self,
        y_emb: &Tensor,
        y_star_emb: &Tensor,
        timestep: usize,
        rngs: &mut [ChaCha8Rng],
    ) -> Result<Tensor, SampleError> {
        let b = rngs.len();
        let d = y_emb.dim(1)?;
        let params = SoftLabelParams::from_config(self.config);
        // (2B, D) with conditional rows first -> (B, 2, D): one group per class.
        let by_class = |x: &Tensor| Tensor::stack(&[x.narrow(0, 0, b)?, x.narrow(0, b, b)?], 1);
        let noise: Vec<Tensor> = rngs
            .iter_mut()
            .map(|rng| params.draw_noise(rng, &(2, d).into(), y_emb.dtype(), y_emb.device()))
            .collect::<candle_core::Result<_>>()?;
        let out = params.apply_grouped(
            &by_class(y_emb)?,
            &by_class(y_star_emb)?,
            &Tensor::stack(&noise, 0)?,
            timestep,
        )?; // (B, 2, D)
        Ok(Tensor::cat(
            &[
                out.narrow(1, 0, 1)?.squeeze(1)?,
                out.narrow(1, 1, 1)?.squeeze(1)?,
            ],
            0,
        )?)
    }
}

/// y*: one label drawn uniformly from the run's other classes (docs/METHOD.md §5); a one-class run
/// has no other class and uses its own label.
fn draw_other_label(run_labels: &[usize], own: usize, rng: &mut ChaCha8Rng) -> usize {
    let others: Vec<usize> = run_labels.iter().copied().filter(|&l| l != own).collect();
    if others.is_empty() {
        return own;
    }
    others[rng.gen_range(0..others.len())]
}

fn check_finite(
    x: &Tensor,
    states: &[ClassState],
    index: usize,
    step: usize,
    timestep: usize,
) -> Result<(), SampleError> {
    let sums: Vec<f32> = x
        .flatten_from(1)?
        .to_dtype(DType::F32)?
        .abs()?
        .sum(1)?
        .to_vec1()?;
    match sums.iter().position(|s| !s.is_finite()) {
        None => Ok(()),
        Some(row) => Err(Diverged {
            class: states[row].class,
            index,
            step,
            timestep,
        }
        .into()),
    }
}
