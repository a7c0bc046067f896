//! The DiT model: embed patches, add positions, condition on t and y, run the blocks,
//! unpatchify. Also the label-embedding hook that DMGD's semantic matching uses.

use super::block::{DitBlock, FinalLayer};
use super::embed::{pos_embed_2d, LabelEmbedder, PatchEmbed, TimestepEmbedder};
use super::DitConfig;
use crate::error::{DiffusionError, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

/// Which output channels classifier-free guidance mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CfgChannels {
    /// Reference behaviour of DiT's `forward_with_cfg` (kept by every peer): guidance on output
    /// channels 0..3 only; the others keep each row's conditional value. With 4 latent channels
    /// this leaves eps channel 3 and the variance unguided; with 1 channel it also guides v.
    FirstThree,
    /// Guidance on every eps channel [0, in_channels); variance channels untouched.
    AllEps,
}

/// Number of channels the reference guides (`model_out[:, :3]`).
const REFERENCE_CFG_CHANNELS: usize = 3;

/// Classifier-free guidance settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cfg {
    pub scale: f64,
    pub channels: CfgChannels,
}

#[derive(Debug, Clone)]
pub struct Dit {
    pub config: DitConfig,
    pub x_embedder: PatchEmbed,
    pub t_embedder: TimestepEmbedder,
    pub y_embedder: LabelEmbedder,
    pub pos_embed: Tensor, // (1, T, D), fixed
    pub blocks: Vec<DitBlock>,
    pub final_layer: FinalLayer,
}

impl Dit {
    /// Loads every weight from `vb`, `pos_embed` included (checkpoint layout).
    pub fn load(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let pos_embed = vb.get((1, cfg.num_patches(), cfg.hidden_size), "pos_embed")?;
        let mut dit = Self::build(cfg, vb, pos_embed)?;
        // `vb` is gone, so each layer's original is freed as soon as it is copied.
        dit.freeze()?;
        Ok(dit)
    }

    /// Lays every linear weight out for inference (`Linear::freeze`); loaded weights only.
    fn freeze(&mut self) -> Result<()> {
        self.x_embedder.proj.freeze()?;
        self.t_embedder.mlp_0.freeze()?;
        self.t_embedder.mlp_2.freeze()?;
        for block in &mut self.blocks {
            block.attn.qkv.freeze()?;
            block.attn.proj.freeze()?;
            block.mlp.fc1.freeze()?;
            block.mlp.fc2.freeze()?;
            block.ada_ln_modulation_1.freeze()?;
        }
        self.final_layer.ada_ln_modulation_1.freeze()?;
        self.final_layer.linear.freeze()?;
        Ok(())
    }

    /// A fresh model for training: weights from `vb` (a `VarMap` builder, DiT initialisation),
    /// `pos_embed` computed (it is fixed, not trained).
    pub fn init(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let pos_embed =
            pos_embed_2d(cfg.hidden_size, cfg.grid_size(), vb.device())?.unsqueeze(0)?;
        Self::build(cfg, vb, pos_embed)
    }

    fn build(cfg: &DitConfig, vb: VarBuilder, pos_embed: Tensor) -> Result<Self> {
        cfg.validate()?;
        Ok(Dit {
            config: cfg.clone(),
            x_embedder: PatchEmbed::new(cfg, vb.pp("x_embedder"))?,
            t_embedder: TimestepEmbedder::new(cfg, vb.pp("t_embedder"))?,
            y_embedder: LabelEmbedder::new(cfg, vb.pp("y_embedder"))?,
            pos_embed,
            blocks: (0..cfg.depth)
                .map(|i| DitBlock::new(cfg, vb.pp(format!("blocks.{i}"))))
                .collect::<candle_core::Result<_>>()?,
            final_layer: FinalLayer::new(cfg, vb.pp("final_layer"))?,
        })
    }

    pub fn device(&self) -> &Device {
        self.pos_embed.device()
    }

    /// The dtype of the weights and of the activations inside `forward` (inputs and outputs
    /// stay f32).
    pub fn dtype(&self) -> DType {
        self.pos_embed.dtype()
    }

    /// The same model with its weights in `dtype` (bf16 sampling); F32 gives a copy.
    pub fn to_dtype(&self, dtype: DType) -> Result<Dit> {
        let weights = self.state_dict()?.into_iter().collect();
        Dit::load(
            &self.config,
            VarBuilder::from_tensors(weights, dtype, self.device()),
        )
    }

    /// Rows of the label-embedding table: y in [0, num_classes], num_classes = null. (N, D),
    /// f32 whatever the model's dtype (soft labels mix them with f32 noise).
    pub fn label_embedding(&self, y: &[usize]) -> Result<Tensor> {
        let ids: Vec<u32> = y.iter().map(|&v| v as u32).collect();
        let ids = Tensor::from_vec(ids, y.len(), self.device())?;
        Ok(self.y_embedder.forward(&ids)?.to_dtype(DType::F32)?)
    }

    /// The CFG batch of embeddings for labels y: conditional rows, then as many null rows. (2N, D).
    pub fn cfg_label_embedding(&self, y: &[usize]) -> Result<Tensor> {
        let null = vec![self.config.null_class(); y.len()];
        Ok(Tensor::cat(
            &[self.label_embedding(y)?, self.label_embedding(&null)?],
            0,
        )?)
    }

    /// x (N, C, H, W), t (N,) timesteps (original scale, f32), y labels -> (N, out, H, W).
    pub fn forward(&self, x: &Tensor, t: &Tensor, y: &[usize]) -> Result<Tensor> {
        self.forward_with_embedding(x, t, &self.label_embedding(y)?)
    }

    /// As `forward`, with the label embedding given directly: y_emb (N, D).
    pub fn forward_with_embedding(&self, x: &Tensor, t: &Tensor, y_emb: &Tensor) -> Result<Tensor> {
        let cfg = &self.config;
        let (n, c, h, w) = x.dims4()?;
        if c != cfg.in_channels || h != cfg.input_size || w != cfg.input_size {
            return Err(DiffusionError::InputShape {
                found: x.dims().to_vec(),
                expected: format!(
                    "(N, {}, {}, {})",
                    cfg.in_channels, cfg.input_size, cfg.input_size
                ),
            });
        }
        // Inside, the weights' dtype; f32 at the edges (a no-op for an f32 model).
        let (x, y_emb) = (x.to_dtype(self.dtype())?, y_emb.to_dtype(self.dtype())?);
        let x = self
            .x_embedder
            .forward(&x)?
            .broadcast_add(&self.pos_embed)?; // (N, T, D)
        let c = (self.t_embedder.forward(t)? + y_emb)?; // (N, D)
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(&x, &c)?; // (N, T, D)
        }
        let x = self.final_layer.forward(&x, &c)?; // (N, T, p*p*out)
        Ok(self.unpatchify(&x, n)?.to_dtype(DType::F32)?)
    }

    /// (N, T, p*p*C) with patch layout (h, w, p, q, c) -> (N, C, h*p, w*q).
    fn unpatchify(&self, x: &Tensor, n: usize) -> candle_core::Result<Tensor> {
        let cfg = &self.config;
        let (p, g, c) = (cfg.patch_size, cfg.grid_size(), cfg.out_channels());
        x.reshape((n, g, g, p, p, c))?
            .permute((0, 5, 1, 3, 2, 4))? // (N, C, h, p, w, q)
            .contiguous()?
            .reshape((n, c, g * p, g * p))
    }

    /// DiT's `forward_with_cfg`: the model runs on (x, x) with embeddings y_emb = (cond rows,
    /// null rows) (2N, D); returns the N conditional rows with eps guided,
    /// eps = eps_u + scale (eps_c - eps_u), on the channels `cfg.channels` selects. (N, out, H, W).
    pub fn forward_with_cfg(
        &self,
        x: &Tensor,
        t: &Tensor,
        y_emb: &Tensor,
        cfg: &Cfg,
    ) -> Result<Tensor> {
        let n = x.dim(0)?;
        let out = self.forward_with_embedding(
            &Tensor::cat(&[x, x], 0)?,
            &Tensor::cat(&[t, t], 0)?,
            y_emb,
        )?;
        let (cond, uncond) = (out.narrow(0, 0, n)?, out.narrow(0, n, n)?); // (N, out, H, W) each
        let guided_channels = match cfg.channels {
            CfgChannels::FirstThree => REFERENCE_CFG_CHANNELS.min(self.config.out_channels()),
            CfgChannels::AllEps => self.config.in_channels,
        };
        let eps_c = cond.narrow(1, 0, guided_channels)?;
        let eps_u = uncond.narrow(1, 0, guided_channels)?;
        let guided = (&eps_u + ((eps_c - &eps_u)? * cfg.scale)?)?;
        let rest = cond.narrow(
            1,
            guided_channels,
            self.config.out_channels() - guided_channels,
        )?;
        Ok(Tensor::cat(&[guided, rest], 1)?)
    }

    /// Every weight in checkpoint layout, official key names (for saving). F32.
    pub fn state_dict(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out: Vec<(String, Tensor)> = Vec::new();
        let push_linear =
            |prefix: &str, l: &super::linear::Linear, out: &mut Vec<(String, Tensor)>| {
                out.push((format!("{prefix}.weight"), l.weight()?.contiguous()?));
                out.push((format!("{prefix}.bias"), l.bias.clone()));
                Ok::<(), candle_core::Error>(())
            };
        out.push((
            "x_embedder.proj.weight".into(),
            self.x_embedder.conv_weight()?,
        ));
        out.push((
            "x_embedder.proj.bias".into(),
            self.x_embedder.proj.bias.clone(),
        ));
        out.push(("pos_embed".into(), self.pos_embed.clone()));
        push_linear("t_embedder.mlp.0", &self.t_embedder.mlp_0, &mut out)?;
        push_linear("t_embedder.mlp.2", &self.t_embedder.mlp_2, &mut out)?;
        out.push((
            "y_embedder.embedding_table.weight".into(),
            self.y_embedder.embedding_table.clone(),
        ));
        for (i, b) in self.blocks.iter().enumerate() {
            push_linear(&format!("blocks.{i}.attn.qkv"), &b.attn.qkv, &mut out)?;
            push_linear(&format!("blocks.{i}.attn.proj"), &b.attn.proj, &mut out)?;
            push_linear(&format!("blocks.{i}.mlp.fc1"), &b.mlp.fc1, &mut out)?;
            push_linear(&format!("blocks.{i}.mlp.fc2"), &b.mlp.fc2, &mut out)?;
            push_linear(
                &format!("blocks.{i}.adaLN_modulation.1"),
                &b.ada_ln_modulation_1,
                &mut out,
            )?;
        }
        push_linear(
            "final_layer.adaLN_modulation.1",
            &self.final_layer.ada_ln_modulation_1,
            &mut out,
        )?;
        push_linear("final_layer.linear", &self.final_layer.linear, &mut out)?;
        out.into_iter()
            .map(|(k, v)| Ok((k, v.to_dtype(DType::F32)?)))
            .collect()
    }
}
