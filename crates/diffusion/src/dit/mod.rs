//! DiT (Peebles & Xie, "Scalable Diffusion Models with Transformers"): configuration, the
//! preset registry, and the model (docs/METHOD.md §2). Field names equal the official checkpoint keys.

mod attention;
mod block;
mod embed;
mod linear;
mod model;

pub use attention::Attention;
pub use block::{DitBlock, FinalLayer, Mlp};
pub use embed::{
    pos_embed_2d, timestep_frequency_embedding, LabelEmbedder, PatchEmbed, TimestepEmbedder,
};
pub use linear::{Linear, LinearInit};
pub use model::{Cfg, CfgChannels, Dit};

use crate::error::{DiffusionError, Result};
use serde::{Deserialize, Serialize};

/// Width of the sinusoidal timestep embedding fed to `t_embedder.mlp` (DiT: 256).
pub const FREQUENCY_EMBEDDING_SIZE: usize = 256;
/// LayerNorm epsilon of every DiT norm (no affine parameters).
pub const LAYER_NORM_EPS: f32 = 1e-6;
/// Label dropout probability of DiT training: labels become the null class this often.
pub const CLASS_DROPOUT_PROB: f64 = 0.1;

/// Everything that fixes the shapes of a DiT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DitConfig {
    /// The registry name this was built from ("DiT-XL/2"), or "custom".
    pub preset: String,
    /// Spatial size of the (latent) input, square.
    pub input_size: usize,
    pub patch_size: usize,
    pub in_channels: usize,
    pub hidden_size: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub mlp_ratio: f64,
    /// Real classes; the label-embedding table has one more row, the null class.
    pub num_classes: usize,
    /// Output 2 * in_channels: eps and the interpolation value v of the learned variance.
    pub learn_sigma: bool,
}

/// (depth, hidden size, heads) of a model family.
struct Family {
    name: &'static str,
    depth: usize,
    hidden_size: usize,
    num_heads: usize,
}

/// The official families S/B/L/XL, then ours for small images (Fashion-MNIST and the like):
/// "Ti" (6 blocks, 256 wide) and "Sm" (8 blocks, 320 wide), chosen by measured CPU speed
/// (docs/BENCH-diffusion.md).
const FAMILIES: [Family; 6] = [
    Family {
        name: "S",
        depth: 12,
        hidden_size: 384,
        num_heads: 6,
    },
    Family {
        name: "B",
        depth: 12,
        hidden_size: 768,
        num_heads: 12,
    },
    Family {
        name: "L",
        depth: 24,
        hidden_size: 1024,
        num_heads: 16,
    },
    Family {
        name: "XL",
        depth: 28,
        hidden_size: 1152,
        num_heads: 16,
    },
    Family {
        name: "Ti",
        depth: 6,
        hidden_size: 256,
        num_heads: 4,
    },
    Family {
        name: "Sm",
        depth: 8,
        hidden_size: 320,
        num_heads: 5,
    },
];
const PATCH_SIZES: [usize; 3] = [2, 4, 8];

/// Every preset name, "DiT-S/2" .. "DiT-Sm/8".
pub fn preset_names() -> Vec<String> {
    FAMILIES
        .iter()
        .flat_map(|f| {
            PATCH_SIZES
                .iter()
                .map(move |p| format!("DiT-{}/{p}", f.name))
        })
        .collect()
}

impl DitConfig {
    /// A preset from the registry, for inputs of `input_size` x `input_size` x `in_channels`
    /// and `num_classes` classes (ImageNet: 32, 4, 1000).
    pub fn preset(
        name: &str,
        input_size: usize,
        in_channels: usize,
        num_classes: usize,
    ) -> Result<Self> {
        let unknown = || DiffusionError::UnknownPreset {
            name: name.to_string(),
            known: preset_names().join(", "),
        };
        let (family, patch) = name
            .strip_prefix("DiT-")
            .and_then(|s| s.split_once('/'))
            .ok_or_else(unknown)?;
        let family = FAMILIES
            .iter()
            .find(|f| f.name == family)
            .ok_or_else(unknown)?;
        let patch_size: usize = patch
            .parse()
            .ok()
            .filter(|p| PATCH_SIZES.contains(p))
            .ok_or_else(unknown)?;
        let cfg = DitConfig {
            preset: name.to_string(),
            input_size,
            patch_size,
            in_channels,
            hidden_size: family.hidden_size,
            depth: family.depth,
            num_heads: family.num_heads,
            mlp_ratio: 4.0,
            num_classes,
            learn_sigma: true,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what the forward pass relies on.
    pub fn validate(&self) -> Result<()> {
        if self.patch_size == 0 || self.input_size % self.patch_size != 0 {
            return Err(DiffusionError::PatchDoesNotDivide {
                preset: self.preset.clone(),
                input_size: self.input_size,
                patch_size: self.patch_size,
            });
        }
        if self.num_heads == 0 || self.hidden_size % self.num_heads != 0 {
            return Err(DiffusionError::HeadsDoNotDivide {
                preset: self.preset.clone(),
                hidden_size: self.hidden_size,
                num_heads: self.num_heads,
            });
        }
        if self.hidden_size % 4 != 0 {
            return Err(DiffusionError::PosEmbedDim {
                preset: self.preset.clone(),
                hidden_size: self.hidden_size,
            });
        }
        Ok(())
    }

    pub fn out_channels(&self) -> usize {
        if self.learn_sigma {
            2 * self.in_channels
        } else {
            self.in_channels
        }
    }

    /// Patches per side.
    pub fn grid_size(&self) -> usize {
        self.input_size / self.patch_size
    }

    pub fn num_patches(&self) -> usize {
        self.grid_size() * self.grid_size()
    }

    pub fn mlp_hidden(&self) -> usize {
        (self.hidden_size as f64 * self.mlp_ratio) as usize
    }

    /// The label that selects the unconditional (null) embedding row.
    pub fn null_class(&self) -> usize {
        self.num_classes
    }

    /// Every state-dict key of this model with its shape, in module order.
    pub fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, p, c) = (self.hidden_size, self.patch_size, self.in_channels);
        let mut keys = vec![
            ("x_embedder.proj.weight".to_string(), vec![d, c, p, p]),
            ("x_embedder.proj.bias".to_string(), vec![d]),
            ("pos_embed".to_string(), vec![1, self.num_patches(), d]),
            (
                "t_embedder.mlp.0.weight".to_string(),
                vec![d, FREQUENCY_EMBEDDING_SIZE],
            ),
            ("t_embedder.mlp.0.bias".to_string(), vec![d]),
            ("t_embedder.mlp.2.weight".to_string(), vec![d, d]),
            ("t_embedder.mlp.2.bias".to_string(), vec![d]),
            (
                "y_embedder.embedding_table.weight".to_string(),
                vec![self.num_classes + 1, d],
            ),
        ];
        let mlp = self.mlp_hidden();
        for i in 0..self.depth {
            let b = format!("blocks.{i}");
            keys.push((format!("{b}.attn.qkv.weight"), vec![3 * d, d]));
            keys.push((format!("{b}.attn.qkv.bias"), vec![3 * d]));
            keys.push((format!("{b}.attn.proj.weight"), vec![d, d]));
            keys.push((format!("{b}.attn.proj.bias"), vec![d]));
            keys.push((format!("{b}.mlp.fc1.weight"), vec![mlp, d]));
            keys.push((format!("{b}.mlp.fc1.bias"), vec![mlp]));
            keys.push((format!("{b}.mlp.fc2.weight"), vec![d, mlp]));
            keys.push((format!("{b}.mlp.fc2.bias"), vec![d]));
            keys.push((format!("{b}.adaLN_modulation.1.weight"), vec![6 * d, d]));
            keys.push((format!("{b}.adaLN_modulation.1.bias"), vec![6 * d]));
        }
        keys.push((
            "final_layer.adaLN_modulation.1.weight".to_string(),
            vec![2 * d, d],
        ));
        keys.push((
            "final_layer.adaLN_modulation.1.bias".to_string(),
            vec![2 * d],
        ));
        keys.push((
            "final_layer.linear.weight".to_string(),
            vec![p * p * self.out_channels(), d],
        ));
        keys.push((
            "final_layer.linear.bias".to_string(),
            vec![p * p * self.out_channels()],
        ));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_presets_have_the_paper_shapes() {
        let xl = DitConfig::preset("DiT-XL/2", 32, 4, 1000).unwrap();
        assert_eq!(
            (xl.depth, xl.hidden_size, xl.num_heads, xl.patch_size),
            (28, 1152, 16, 2)
        );
        assert_eq!(xl.num_patches(), 256);
        assert_eq!(xl.out_channels(), 8);
        let shapes: std::collections::HashMap<_, _> = xl.expected_shapes().into_iter().collect();
        assert_eq!(
            shapes["blocks.27.adaLN_modulation.1.weight"],
            vec![6912, 1152]
        );
        assert_eq!(shapes["final_layer.linear.weight"], vec![32, 1152]);
        assert_eq!(
            shapes["y_embedder.embedding_table.weight"],
            vec![1001, 1152]
        );
        let s8 = DitConfig::preset("DiT-S/8", 32, 4, 1000).unwrap();
        assert_eq!((s8.depth, s8.hidden_size, s8.num_patches()), (12, 384, 16));
        assert_eq!(preset_names().len(), 18);
    }

    #[test]
    fn unknown_presets_and_bad_sizes_are_named() {
        let err = DitConfig::preset("DiT-XXL/2", 32, 4, 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DiT-XXL/2") && err.contains("DiT-XL/2"),
            "{err}"
        );
        let err = DitConfig::preset("DiT-XL/3", 32, 4, 1000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("DiT-XL/3"), "{err}");
        let err = DitConfig::preset("DiT-Ti/8", 28, 1, 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("28") && err.contains("patch size 8"), "{err}");
    }
}
