//! The flags that name the generator and where it runs, shared by `sample` and `distill`.

use dmgd_diffusion::autoencoder::EncodeMode;
use dmgd_distill::models::{ModelError, Models};
use dmgd_kernels::{DeviceName, Precision};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// DiT checkpoint: a `dmgd pretrain` directory, or a .pt / .safetensors state dict
    /// (e.g. DiT-XL-2-256x256.pt). Default: the shipped Fashion-MNIST model.
    #[arg(long, alias = "model")]
    pub dit: Option<PathBuf>,
    /// The entry of a training checkpoint ({"model", "ema", "opt", "args"}, as DiT's train.py
    /// saves it) to load: `ema` (the default) or `model`.
    #[arg(long)]
    pub dit_entry: Option<String>,
    /// SD VAE (diffusers AutoencoderKL .safetensors, e.g. sd-vae-ft-mse). Absent: pixel space.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    /// cpu, or cuda:N with a dmgd built with `--features cuda`.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceName,
    /// The DiT's arithmetic: f32; tf32, f32 with TF32 matrix products on CUDA (as DiT's
    /// official sample.py); or bf16, the model in bfloat16 (anywhere; slow on a CPU).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
}

impl ModelArgs {
    pub fn load(&self, encode: EncodeMode) -> Result<Models, ModelError> {
        Models::load(
            self.dit.as_deref(),
            self.dit_entry.as_deref(),
            self.vae.as_deref(),
            encode,
            self.device,
            self.precision,
        )
    }

    /// Neither model named: the shipped pixel-space one.
    pub fn is_default(&self) -> bool {
        self.dit.is_none() && self.vae.is_none()
    }
}
