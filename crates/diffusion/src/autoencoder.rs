//! Autoencoders between images in [-1, 1] and the DiT's input space (docs/METHOD.md §3): the SD VAE
//! (diffusers AutoencoderKL layout, both attention key namings) and the identity pixel-space
//! autoencoder of small datasets.
//!
//! Why not candle's `vae::AutoEncoderKL` as a whole: its mid-block `AttentionBlock` differs
//! from diffusers by up to 0.12 (tiny random VAE, tests/vae.rs; the group norm and the resnets
//! match to 1e-6), and its `encode` hides the mean. So the VAE is assembled here from candle's
//! public blocks (`DownEncoderBlock2D`, `UpDecoderBlock2D`, `ResnetBlock2D`, conv, group norm)
//! with a plain single-head attention; old attention key names are renamed at load.

use crate::checkpoint::read_tensors;
use crate::error::{DiffusionError, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::stable_diffusion::resnet::{ResnetBlock2D, ResnetBlock2DConfig};
use candle_transformers::models::stable_diffusion::unet_2d_blocks::{
    DownEncoderBlock2D, DownEncoderBlock2DConfig, UpDecoderBlock2D, UpDecoderBlock2DConfig,
};
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
    pub fn encode(
        &self,
        images: &Tensor,
        mode: EncodeMode,
        rng: &mut impl rand::Rng,
    ) -> Result<Tensor> {
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
            Autoencoder::SdVae(vae) => vae.decode(&(latents / SD_VAE_LATENT_SCALE)?),
        }
    }
}

/// Attention weights of older diffusers files -> current names.
const OLD_ATTENTION_NAMES: [(&str, &str); 4] = [
    (".query.", ".to_q."),
    (".key.", ".to_k."),
    (".value.", ".to_v."),
    (".proj_attn.", ".to_out.0."),
];

/// The mid-block self-attention (one head over all channels, diffusers `Attention` with a
/// residual): group norm -> q, k, v -> softmax(q k^T / sqrt(C)) v -> to_out.0 -> + x.
struct MidAttention {
    group_norm: candle_nn::GroupNorm,
    to_q: candle_nn::Linear,
    to_k: candle_nn::Linear,
    to_v: candle_nn::Linear,
    to_out_0: candle_nn::Linear,
}

impl MidAttention {
    fn new(channels: usize, groups: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(MidAttention {
            group_norm: candle_nn::group_norm(
                groups,
                channels,
                SD_VAE_NORM_EPS,
                vb.pp("group_norm"),
            )?,
            to_q: candle_nn::linear(channels, channels, vb.pp("to_q"))?,
            to_k: candle_nn::linear(channels, channels, vb.pp("to_k"))?,
            to_v: candle_nn::linear(channels, channels, vb.pp("to_v"))?,
            to_out_0: candle_nn::linear(channels, channels, vb.pp("to_out.0"))?,
        })
    }

    /// (N, C, H, W) -> (N, C, H, W).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let hs = self
            .group_norm
            .forward(x)?
            .reshape((n, c, h * w))?
            .transpose(1, 2)?
            .contiguous()?; // (N, T, C)
        let q = self.to_q.forward(&hs)?;
        let k = self.to_k.forward(&hs)?;
        let v = self.to_v.forward(&hs)?;
        let attn =
            candle_nn::ops::softmax_last_dim(&(q.matmul(&k.t()?)? * (c as f64).powf(-0.5))?)?; // (N, T, T)
        let out = self.to_out_0.forward(&attn.matmul(&v)?)?; // (N, T, C)
        out.transpose(1, 2)?.reshape((n, c, h, w))? + x
    }
}

/// resnets.0 -> attentions.0 -> resnets.1 (no time embedding).
struct MidBlock {
    resnet_0: ResnetBlock2D,
    attention: MidAttention,
    resnet_1: ResnetBlock2D,
}

impl MidBlock {
    fn new(channels: usize, groups: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let cfg = ResnetBlock2DConfig {
            temb_channels: None,
            groups,
            eps: SD_VAE_NORM_EPS,
            ..Default::default()
        };
        Ok(MidBlock {
            resnet_0: ResnetBlock2D::new(vb.pp("resnets.0"), channels, cfg)?,
            attention: MidAttention::new(channels, groups, vb.pp("attentions.0"))?,
            resnet_1: ResnetBlock2D::new(vb.pp("resnets.1"), channels, cfg)?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.resnet_0.forward(x, None)?;
        let x = self.attention.forward(&x)?;
        self.resnet_1.forward(&x, None)
    }
}

/// The SD VAE (diffusers AutoencoderKL): encoder + quant_conv, post_quant_conv + decoder.
pub struct SdVae {
    pub config: VaeConfig,
    encoder_conv_in: candle_nn::Conv2d,
    encoder_down_blocks: Vec<DownEncoderBlock2D>,
    encoder_mid_block: MidBlock,
    encoder_conv_norm_out: candle_nn::GroupNorm,
    encoder_conv_out: candle_nn::Conv2d,
    quant_conv: candle_nn::Conv2d,
    post_quant_conv: candle_nn::Conv2d,
    decoder_conv_in: candle_nn::Conv2d,
    decoder_mid_block: MidBlock,
    decoder_up_blocks: Vec<UpDecoderBlock2D>,
    decoder_conv_norm_out: candle_nn::GroupNorm,
    decoder_conv_out: candle_nn::Conv2d,
}

impl SdVae {
    /// Loads a diffusers AutoencoderKL (`.safetensors` or `.pt`/`.bin`); attention weights may
    /// be named `to_q/to_k/to_v/to_out.0` or `query/key/value/proj_attn`.
    pub fn load(path: &Path, config: &VaeConfig, device: &Device) -> Result<Self> {
        let tensors: std::collections::HashMap<String, Tensor> = read_tensors(path, device)?
            .into_iter()
            .map(|(k, v)| {
                (
                    OLD_ATTENTION_NAMES
                        .iter()
                        .fold(k, |k, (old, new)| k.replace(old, new)),
                    v,
                )
            })
            .collect();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::build(config, vb).map_err(|source| DiffusionError::Candle {
            context: format!("SD VAE {}", path.display()),
            source,
        })
    }

    fn build(config: &VaeConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let pad1 = candle_nn::Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let (ch, groups, l) = (
            &config.block_out_channels,
            config.norm_num_groups,
            config.latent_channels,
        );
        let last = *ch.last().expect("non-empty block_out_channels");
        let enc = vb.pp("encoder");
        let mut encoder_down_blocks = Vec::new();
        for (i, &out) in ch.iter().enumerate() {
            let cfg = DownEncoderBlock2DConfig {
                num_layers: config.layers_per_block,
                resnet_eps: SD_VAE_NORM_EPS,
                resnet_groups: groups,
                add_downsample: i + 1 != ch.len(),
                downsample_padding: 0,
                ..Default::default()
            };
            let inp = if i > 0 { ch[i - 1] } else { ch[0] };
            encoder_down_blocks.push(DownEncoderBlock2D::new(
                enc.pp(format!("down_blocks.{i}")),
                inp,
                out,
                cfg,
            )?);
        }
        let dec = vb.pp("decoder");
        let reversed: Vec<usize> = ch.iter().rev().copied().collect();
        let mut decoder_up_blocks = Vec::new();
        for (i, &out) in reversed.iter().enumerate() {
            let cfg = UpDecoderBlock2DConfig {
                // diffusers decoders have one more resnet per block than the encoder.
                num_layers: config.layers_per_block + 1,
                resnet_eps: SD_VAE_NORM_EPS,
                resnet_groups: groups,
                add_upsample: i + 1 != reversed.len(),
                ..Default::default()
            };
            let inp = if i > 0 { reversed[i - 1] } else { reversed[0] };
            decoder_up_blocks.push(UpDecoderBlock2D::new(
                dec.pp(format!("up_blocks.{i}")),
                inp,
                out,
                cfg,
            )?);
        }
        Ok(SdVae {
            config: config.clone(),
            encoder_conv_in: candle_nn::conv2d(
                config.in_channels,
                ch[0],
                3,
                pad1,
                enc.pp("conv_in"),
            )?,
            encoder_down_blocks,
            encoder_mid_block: MidBlock::new(last, groups, enc.pp("mid_block"))?,
            encoder_conv_norm_out: candle_nn::group_norm(
                groups,
                last,
                SD_VAE_NORM_EPS,
                enc.pp("conv_norm_out"),
            )?,
            encoder_conv_out: candle_nn::conv2d(last, 2 * l, 3, pad1, enc.pp("conv_out"))?,
            quant_conv: candle_nn::conv2d(
                2 * l,
                2 * l,
                1,
                Default::default(),
                vb.pp("quant_conv"),
            )?,
            post_quant_conv: candle_nn::conv2d(
                l,
                l,
                1,
                Default::default(),
                vb.pp("post_quant_conv"),
            )?,
            decoder_conv_in: candle_nn::conv2d(l, last, 3, pad1, dec.pp("conv_in"))?,
            decoder_mid_block: MidBlock::new(last, groups, dec.pp("mid_block"))?,
            decoder_up_blocks,
            decoder_conv_norm_out: candle_nn::group_norm(
                groups,
                ch[0],
                SD_VAE_NORM_EPS,
                dec.pp("conv_norm_out"),
            )?,
            decoder_conv_out: candle_nn::conv2d(
                ch[0],
                config.in_channels,
                3,
                pad1,
                dec.pp("conv_out"),
            )?,
        })
    }

    /// Encoder output split into (mean, log-variance clamped to [-30, 20]). (N, 4, H/8, W/8) each.
    pub fn moments(&self, images: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut x = images.apply(&self.encoder_conv_in)?;
        for block in &self.encoder_down_blocks {
            x = block.forward(&x)?;
        }
        let x = self
            .encoder_mid_block
            .forward(&x)?
            .apply(&self.encoder_conv_norm_out)?;
        let x = candle_nn::ops::silu(&x)?
            .apply(&self.encoder_conv_out)?
            .apply(&self.quant_conv)?; // (N, 2L, h, w)
        let l = self.config.latent_channels;
        let mean = x.narrow(1, 0, l)?;
        let logvar = x.narrow(1, l, l)?.clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1)?;
        Ok((mean, logvar))
    }

    /// Unscaled latents (N, L, h, w) -> images (N, C, 8h, 8w).
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let x = z
            .apply(&self.post_quant_conv)?
            .apply(&self.decoder_conv_in)?;
        let mut x = self.decoder_mid_block.forward(&x)?;
        for block in &self.decoder_up_blocks {
            x = block.forward(&x)?;
        }
        let x = candle_nn::ops::silu(&x.apply(&self.decoder_conv_norm_out)?)?;
        Ok(x.apply(&self.decoder_conv_out)?)
    }
}
