//! The plain class-conditional sampling loop (the `dit` baseline and `dmgd sample`): CFG
//! model output -> `GaussianDiffusion::predict` -> DDPM or DDIM step, S-1 .. 0.
//! Guided methods (dmgd-distill) drive the same per-step API themselves.

use crate::dit::{Cfg, Dit};
use crate::error::Result;
use crate::gaussian::{randn, GaussianDiffusion};
use candle_core::Tensor;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Ancestral sampling with the learned variance (the reference).
    Ddpm,
    /// DDIM with this eta (0 = deterministic).
    Ddim { eta: f64 },
}

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleOptions {
    pub cfg: Cfg,
    pub method: Method,
    /// Clamp x0_hat to [-1, 1] each step (pixel-space models; the latent reference does not).
    pub clip_denoised: bool,
}

/// Samples latents (N, C, H, W) for labels `y`, starting from x_T drawn from `rng`, then one
/// noise draw per step (DDPM) from the same generator.
pub fn sample(
    dit: &Dit,
    diffusion: &GaussianDiffusion,
    y: &[usize],
    options: &SampleOptions,
    rng: &mut impl rand::Rng,
) -> Result<Tensor> {
    let (cfg, method) = (&options.cfg, options.method);
    let c = &dit.config;
    let device = dit.device();
    let shape = [y.len(), c.in_channels, c.input_size, c.input_size];
    let y_emb = dit.cfg_label_embedding(y)?; // (2N, D)
    let mut x = randn(rng, &shape, device)?; // x_T
    for i in (0..diffusion.num_steps()).rev() {
        let t = diffusion.model_timesteps(i, y.len(), device)?;
        let out = dit.forward_with_cfg(&x, &t, &y_emb, cfg)?; // (N, 2C, H, W)
        let pred = diffusion.predict_with(&out, &x, i, options.clip_denoised)?;
        let z = randn(rng, &shape, device)?;
        // detach: with trainable weights (`Var`s) the graph of every step would stay alive.
        x = match method {
            Method::Ddpm => diffusion.ddpm_step(&pred, &z)?,
            Method::Ddim { eta } => diffusion.ddim_step(&pred, &x, eta, &z)?,
        }
        .detach();
    }
    Ok(x)
}
