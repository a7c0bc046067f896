//! The DiT block (adaLN-Zero) and the final layer, with the block's MLP.

use super::attention::Attention;
use super::linear::{Linear, LinearInit};
use super::{DitConfig, LAYER_NORM_EPS};
use candle_core::{Module, Result, Tensor, D};
use candle_nn::VarBuilder;
use dmgd_kernels::dit::{gated_add, gelu_tanh, layer_norm_no_affine, modulate};

/// timm `Mlp`: fc1 -> GELU (tanh approximation) -> fc2.
#[derive(Debug, Clone)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Mlp {
    pub fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let (d, m) = (cfg.hidden_size, cfg.mlp_hidden());
        Ok(Mlp {
            fc1: Linear::new(d, m, LinearInit::XavierUniform, vb.pp("fc1"))?,
            fc2: Linear::new(m, d, LinearInit::XavierUniform, vb.pp("fc2"))?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&gelu_tanh(&self.fc1.forward(x)?)?)
    }
}

/// `blocks.N`: adaLN-Zero transformer block.
#[derive(Debug, Clone)]
pub struct DitBlock {
    pub attn: Attention,
    pub mlp: Mlp,
    /// `adaLN_modulation.1` (index 0 is the SiLU).
    pub ada_ln_modulation_1: Linear,
}

impl DitBlock {
    pub fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(DitBlock {
            attn: Attention::new(cfg, vb.pp("attn"))?,
            mlp: Mlp::new(cfg, vb.pp("mlp"))?,
            ada_ln_modulation_1: Linear::new(
                d,
                6 * d,
                LinearInit::Zero,
                vb.pp("adaLN_modulation.1"),
            )?,
        })
    }

    /// x (N, T, D), c (N, D) -> (N, T, D).
    pub fn forward(&self, x: &Tensor, c: &Tensor) -> Result<Tensor> {
        let m = self
            .ada_ln_modulation_1
            .forward(&candle_nn::ops::silu(c)?)?
            .chunk(6, 1)?; // 6 x (N, D)
        let (shift_msa, scale_msa, gate_msa) = (&m[0], &m[1], &m[2]);
        let (shift_mlp, scale_mlp, gate_mlp) = (&m[3], &m[4], &m[5]);
        let h = modulate(
            &layer_norm_no_affine(x, LAYER_NORM_EPS)?,
            shift_msa,
            scale_msa,
        )?;
        let x = gated_add(x, &self.attn.forward(&h)?, gate_msa)?;
        let h = modulate(
            &layer_norm_no_affine(&x, LAYER_NORM_EPS)?,
            shift_mlp,
            scale_mlp,
        )?;
        gated_add(&x, &self.mlp.forward(&h)?, gate_mlp)
    }
}

/// `final_layer`: LN -> modulate(shift, scale) -> linear to p*p*out_channels per token.
#[derive(Debug, Clone)]
pub struct FinalLayer {
    pub ada_ln_modulation_1: Linear,
    pub linear: Linear,
}

impl FinalLayer {
    pub fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let (d, p) = (cfg.hidden_size, cfg.patch_size);
        Ok(FinalLayer {
            ada_ln_modulation_1: Linear::new(
                d,
                2 * d,
                LinearInit::Zero,
                vb.pp("adaLN_modulation.1"),
            )?,
            linear: Linear::new(
                d,
                p * p * cfg.out_channels(),
                LinearInit::Zero,
                vb.pp("linear"),
            )?,
        })
    }

    /// x (N, T, D), c (N, D) -> (N, T, p*p*out).
    pub fn forward(&self, x: &Tensor, c: &Tensor) -> Result<Tensor> {
        let m = self
            .ada_ln_modulation_1
            .forward(&candle_nn::ops::silu(c)?)?
            .chunk(2, D::Minus1)?;
        let h = modulate(&layer_norm_no_affine(x, LAYER_NORM_EPS)?, &m[0], &m[1])?;
        self.linear.forward(&h)
    }
}
