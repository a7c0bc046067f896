//! Multi-head self-attention (timm `Attention`: qkv with bias, split as (3, heads, head_dim));
//! the core softmax(q k^T / sqrt(hd)) v is `dmgd_kernels::attention`.

use super::linear::{Linear, LinearInit};
use super::DitConfig;
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use dmgd_kernels::attention::multi_head_attention;

/// `blocks.N.attn`.
#[derive(Debug, Clone)]
pub struct Attention {
    pub qkv: Linear,
    pub proj: Linear,
    num_heads: usize,
}

impl Attention {
    pub fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.hidden_size;
        Ok(Attention {
            qkv: Linear::new(d, 3 * d, LinearInit::XavierUniform, vb.pp("qkv"))?,
            proj: Linear::new(d, d, LinearInit::XavierUniform, vb.pp("proj"))?,
            num_heads: cfg.num_heads,
        })
    }

    /// (N, T, D) -> (N, T, D).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let qkv = self.qkv.forward(x)?; // (N, T, 3D)
        self.proj
            .forward(&multi_head_attention(&qkv, self.num_heads)?)
    }
}
