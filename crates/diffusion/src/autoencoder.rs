//! Autoencoders between images in [-1, 1] and the DiT's input space (DESIGN.md §3): the SD VAE
//! (candle-transformers' `AutoEncoderKL`, diffusers layout, both attention key namings) and
//! the identity pixel-space autoencoder of small datasets.

use crate::checkpoint::read_tensors;
use crate::error::{DiffusionError, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::stable_diffusion::unet_2d_blocks::{
    DownEncoderBlock2D, DownEncoderBlock2DConfig, UNetMidBlock2D, UNetMidBlock2DConfig,
};
use candle_transformers::models::stable_diffusion::vae::{AutoEncoderKL, AutoEncoderKLConfig};
use std::path::Path;

/// Latent scale of the SD VAE (latent = sample * 0.18215; decode(latent / 0.18215)).
pub const SD_VAE_LATENT_SCALE: f64 = 0.18215;
/// Downsampling factor of the SD VAE.
pub const SD_VAE_FACTOR: usize = 8;
/// GroupNorm epsilon of the SD VAE.
const SD_VAE_NORM_EPS: f64 = 1e-6;
/// The encoder's log-variance is clamped to this range (diffusers `DiagonalGaussianDistribution`).
const LOGVAR_RANGE: (f64, f64) = (-30.0, 20.0);

/// The diffusers AutoencoderKL configuration of `stabilityai/sd-vae-ft-mse` / `-ft-ema`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VaeConfig {
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub latent_channels: usize,
    pub norm_num_groups: usize,
    pub in_channels: usize,
}

impl VaeConfig {
    pub fn sd_vae() -> Self {
        VaeConfig {
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            latent_channels: 4,
            norm_num_groups: 32,
            in_channels: 3,
        }
    }
}

/// How to turn the encoder's Gaussian into a latent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeMode {
    Mean,
    /// mean + std * z with z from the caller's generator.
    Sample,
}

pub enum Autoencoder {
    /// Identity with scale 1: the model works on images in [-1, 1].
    Pixel,
    SdVae(Box<SdVae>),
}

impl Autoencoder {
    /// Multiplier from the encoder sample to the model's latent.
    pub fn scale(&self) -> f64 {
        match self {
            Autoencoder::Pixel => 1.0,
            Autoencoder::SdVae(_) => SD_VAE_LATENT_SCALE,
        }
    }

    /// Images (N, C, H, W) in [-1, 1] -> scaled latents.
    pub fn encode(&self, images: &Tensor, mode: EncodeMode, rng: &mut impl rand::Rng) -> Result<Tensor> {
        match self {
            Autoencoder::Pixel => Ok(images.clone()),
            Autoencoder::SdVae(vae) => {
                let (mean, logvar) = vae.moments(images)?; // (N, 4, H/8, W/8) each
                let z = match mode {
                    EncodeMode::Mean => mean,
                    EncodeMode::Sample => {
                        let noise = crate::gaussian::randn(rng, mean.dims(), mean.device())?;
                        (&mean + ((logvar * 0.5)?.exp()? * noise)?)?
                    }
                };
                Ok((z * SD_VAE_LATENT_SCALE)?)
            }
        }
    }

    /// Scaled latents -> images (N, C, H, W), about [-1, 1] (not clamped).
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        match self {
            Autoencoder::Pixel => Ok(latents.clone()),
            Autoencoder::SdVae(vae) => Ok(vae.kl.decode(&(latents / SD_VAE_LATENT_SCALE)?)?),
        }
    }
}

/// The SD VAE: candle's `AutoEncoderKL` (decode), plus the encoder's moments (mean, clamped
/// log-variance), which candle's `encode` keeps private, assembled from candle's public blocks
/// under the same keys.
pub struct SdVae {
    pub config: VaeConfig,
    kl: AutoEncoderKL,
    conv_in: candle_nn::Conv2d,
    down_blocks: Vec<DownEncoderBlock2D>,
    mid_block: UNetMidBlock2D,
    conv_norm_out: candle_nn::GroupNorm,
    conv_out: candle_nn::Conv2d,
    quant_conv: candle_nn::Conv2d,
}

impl SdVae {
    /// Loads a diffusers AutoencoderKL (`.safetensors` or `.pt`/`.bin`); attention weights may
    /// be named `to_q/to_k/to_v/to_out.0` or `query/key/value/proj_attn` (candle accepts both).
    pub fn load(path: &Path, config: &VaeConfig, device: &Device) -> Result<Self> {
        let tensors = read_tensors(path, device)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let wrap = |source| DiffusionError::Candle { context: format!("SD VAE {}", path.display()), source };
        let kl_config = AutoEncoderKLConfig {
            block_out_channels: config.block_out_channels.clone(),
            layers_per_block: config.layers_per_block,
            latent_channels: config.latent_channels,
            norm_num_groups: config.norm_num_groups,
            use_quant_conv: true,
            use_post_quant_conv: true,
        };
        let kl = AutoEncoderKL::new(vb.clone(), config.in_channels, config.in_channels, kl_config).map_err(wrap)?;
        Self::build_encoder(config, kl, vb.pp("encoder"), vb.pp("quant_conv")).map_err(wrap)
    }

    fn build_encoder(config: &VaeConfig, kl: AutoEncoderKL, vb: VarBuilder, quant: VarBuilder) -> candle_core::Result<Self> {
        let pad1 = candle_nn::Conv2dConfig { padding: 1, ..Default::default() };
        let ch = &config.block_out_channels;
        let conv_in = candle_nn::conv2d(config.in_channels, ch[0], 3, pad1, vb.pp("conv_in"))?;
        let mut down_blocks = Vec::new();
        for (i, &out) in ch.iter().enumerate() {
            let cfg = DownEncoderBlock2DConfig {
                num_layers: config.layers_per_block,
                resnet_eps: SD_VAE_NORM_EPS,
                resnet_groups: config.norm_num_groups,
                add_downsample: i + 1 != ch.len(),
                downsample_padding: 0,
                ..Default::default()
            };
            let inp = if i > 0 { ch[i - 1] } else { ch[0] };
            down_blocks.push(DownEncoderBlock2D::new(vb.pp(format!("down_blocks.{i}")), inp, out, cfg)?);
        }
        let last = *ch.last().expect("non-empty block_out_channels");
        let mid_cfg = UNetMidBlock2DConfig {
            resnet_eps: SD_VAE_NORM_EPS,
            output_scale_factor: 1.0,
            attn_num_head_channels: None,
            resnet_groups: Some(config.norm_num_groups),
            ..Default::default()
        };
        let mid_block = UNetMidBlock2D::new(vb.pp("mid_block"), last, None, mid_cfg)?;
        let conv_norm_out = candle_nn::group_norm(config.norm_num_groups, last, SD_VAE_NORM_EPS, vb.pp("conv_norm_out"))?;
        let conv_out = candle_nn::conv2d(last, 2 * config.latent_channels, 3, pad1, vb.pp("conv_out"))?;
        let two_l = 2 * config.latent_channels;
        let quant_conv = candle_nn::conv2d(two_l, two_l, 1, Default::default(), quant)?;
        Ok(SdVae { config: config.clone(), kl, conv_in, down_blocks, mid_block, conv_norm_out, conv_out, quant_conv })
    }

    /// Encoder output split into (mean, log-variance clamped to [-30, 20]). (N, 4, H/8, W/8) each.
    pub fn moments(&self, images: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut x = images.apply(&self.conv_in)?;
        for block in &self.down_blocks {
            x = block.forward(&x)?;
        }
        let x = self.mid_block.forward(&x, None)?.apply(&self.conv_norm_out)?;
        let x = candle_nn::ops::silu(&x)?.apply(&self.conv_out)?.apply(&self.quant_conv)?; // (N, 8, h, w)
        let l = self.config.latent_channels;
        let mean = x.narrow(1, 0, l)?;
        let logvar = x.narrow(1, l, l)?.clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1)?;
        Ok((mean, logvar))
    }
}
