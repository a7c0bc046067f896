//! The three embedders of DiT: patches (`x_embedder`), timesteps (`t_embedder`), class labels
//! (`y_embedder`), and the fixed 2-D sin-cos position table (`pos_embed`).

use super::linear::{Linear, LinearInit};
use super::{DitConfig, FREQUENCY_EMBEDDING_SIZE};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// Period scale of the sinusoidal embeddings (Transformer / DiT).
const MAX_PERIOD: f64 = 10_000.0;

/// `x_embedder.proj`: a Conv2d with kernel = stride = patch, run as reshape + GEMM (the same
/// arithmetic; candle's conv backward is slow on the CPU).
#[derive(Debug, Clone)]
pub struct PatchEmbed {
    pub proj: Linear, // weight stored as the conv's (D, C, p, p), used as (D, C*p*p)
    patch_size: usize,
    in_channels: usize,
    conv_weight_shape: (usize, usize, usize, usize),
}

impl PatchEmbed {
    pub fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let (d, c, p) = (cfg.hidden_size, cfg.in_channels, cfg.patch_size);
        let fan_in = c * p * p;
        // DiT initialises the conv like a Linear (xavier uniform on the (D, C*p*p) view).
        let bound = (6.0 / (fan_in + d) as f64).sqrt();
        let vb = vb.pp("proj");
        let weight = vb.get_with_hints(
            (d, c, p, p),
            "weight",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        let bias = vb.get_with_hints(d, "bias", Init::Const(0.0))?;
        Ok(PatchEmbed {
            proj: Linear::from_weight(weight.reshape((d, fan_in))?, bias)?,
            patch_size: p,
            in_channels: c,
            conv_weight_shape: (d, c, p, p),
        })
    }

    /// The conv weight in checkpoint layout (D, C, p, p).
    pub fn conv_weight(&self) -> Result<Tensor> {
        self.proj.weight()?.reshape(self.conv_weight_shape)
    }

    /// (N, C, H, W) -> (N, T, D), tokens in row-major (h, w) order.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let p = self.patch_size;
        let (gh, gw) = (h / p, w / p);
        debug_assert_eq!(c, self.in_channels);
        let patches = x
            .reshape((n, c, gh, p, gw, p))?
            .permute((0, 2, 4, 1, 3, 5))? // (N, h, w, C, p, q)
            .contiguous()?
            .reshape((n, gh * gw, c * p * p))?; // (N, T, C*p*p)
        self.proj.forward(&patches) // (N, T, D)
    }
}

/// The 256-d sinusoidal embedding of (possibly fractional) timesteps, cos first:
/// [cos(t f_k), sin(t f_k)], f_k = exp(-ln(10000) k / 128).
pub fn timestep_frequency_embedding(t: &Tensor, dim: usize) -> Result<Tensor> {
    let half = dim / 2;
    // In f32 like the reference (`torch.exp(-log(P) * arange(half, float32) / half)`).
    let freqs: Vec<f32> = (0..half)
        .map(|k| (-(MAX_PERIOD.ln() as f32) * k as f32 / half as f32).exp())
        .collect();
    let freqs = Tensor::from_vec(freqs, (1, half), t.device())?; // (1, half)
    let args = t
        .to_dtype(DType::F32)?
        .unsqueeze(1)?
        .broadcast_mul(&freqs)?; // (N, half)
    let emb = Tensor::cat(&[args.cos()?, args.sin()?], 1)?; // (N, 2*half)
    if dim % 2 == 1 {
        let n = t.dim(0)?;
        return Tensor::cat(&[emb, Tensor::zeros((n, 1), DType::F32, t.device())?], 1);
    }
    Ok(emb)
}

/// `t_embedder`: frequency embedding -> Linear -> SiLU -> Linear.
#[derive(Debug, Clone)]
pub struct TimestepEmbedder {
    pub mlp_0: Linear,
    pub mlp_2: Linear,
}

impl TimestepEmbedder {
    pub fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.hidden_size;
        let vb = vb.pp("mlp");
        Ok(TimestepEmbedder {
            mlp_0: Linear::new(
                FREQUENCY_EMBEDDING_SIZE,
                d,
                LinearInit::Normal(0.02),
                vb.pp("0"),
            )?,
            mlp_2: Linear::new(d, d, LinearInit::Normal(0.02), vb.pp("2"))?,
        })
    }

    /// (N,) timesteps -> (N, D).
    pub fn forward(&self, t: &Tensor) -> Result<Tensor> {
        let f = timestep_frequency_embedding(t, FREQUENCY_EMBEDDING_SIZE)?; // (N, 256), f32
        let f = f.to_dtype(self.mlp_0.bias.dtype())?;
        self.mlp_2
            .forward(&candle_nn::ops::silu(&self.mlp_0.forward(&f)?)?) // (N, D)
    }
}

/// `y_embedder`: one row per class plus the null row at index `num_classes`.
#[derive(Debug, Clone)]
pub struct LabelEmbedder {
    pub embedding_table: Tensor, // (num_classes + 1, D)
}

impl LabelEmbedder {
    pub fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let table = vb.pp("embedding_table").get_with_hints(
            (cfg.num_classes + 1, cfg.hidden_size),
            "weight",
            Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        )?;
        Ok(LabelEmbedder {
            embedding_table: table,
        })
    }

    /// (N,) u32 labels (null = num_classes) -> (N, D).
    pub fn forward(&self, y: &Tensor) -> Result<Tensor> {
        self.embedding_table.index_select(y, 0)
    }
}

/// The fixed 2-D sin-cos position table, (grid*grid, D) in f32, computed in f64. Token
/// (row i, column j) is index i * grid + j; channels [0, D/2) encode the column j, [D/2, D)
/// the row i, each half as [sin(pos w_k), cos(pos w_k)] with w_k = 1 / 10000^(k / (D/4)).
pub fn pos_embed_2d(dim: usize, grid: usize, device: &Device) -> Result<Tensor> {
    let quarter = dim / 4;
    let omega: Vec<f64> = (0..quarter)
        .map(|k| 1.0 / MAX_PERIOD.powf(k as f64 / quarter as f64))
        .collect();
    let mut table = Vec::with_capacity(grid * grid * dim);
    for i in 0..grid {
        for j in 0..grid {
            for pos in [j as f64, i as f64] {
                table.extend(omega.iter().map(|w| (pos * w).sin() as f32));
                table.extend(omega.iter().map(|w| (pos * w).cos() as f32));
            }
        }
    }
    Tensor::from_vec(table, (grid * grid, dim), device)
}
