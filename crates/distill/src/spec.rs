//! What a distillation run is: its settings and the identity of its inputs. The spec heads
//! the run's manifest before the first image is written; a resumed run, and every shard that
//! shares the output directory, must have the same one.

use crate::config::{DistillConfig, Method};
use dmgd_kernels::{DeviceName, Precision};
use serde::{Deserialize, Serialize};

/// A checkpoint, named by its content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Where it was read from (recorded, not compared: a moved file is the same model).
    pub path: String,
    pub sha256: String,
    /// The entry of a training checkpoint the weights came from (`ema`, `model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
}

impl ModelRecord {
    /// The record of the checkpoint at `path`: its path and sha256.
    pub fn of(path: &std::path::Path) -> Result<Self, dmgd_run::ManifestError> {
        Ok(ModelRecord {
            path: path.display().to_string(),
            sha256: dmgd_run::sha256_file(path)?,
            entry: None,
        })
    }
}

/// The training images the supports (or the random picks) come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// How the data were named (`fashion-mnist (...)`, an ImageFolder path): recorded only.
    pub description: String,
    pub fingerprint: String,
}

impl DataRecord {
    pub fn of(source: &dmgd_data::DataSource, fingerprint: String) -> Self {
        DataRecord {
            description: source.describe(),
            fingerprint,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistillSpec {
    pub config: DistillConfig,
    /// None for `random` (no model).
    pub dit: Option<ModelRecord>,
    /// None in pixel space.
    pub vae: Option<ModelRecord>,
    /// How real images become latents: "sample" or "mean" of the VAE encoder; "pixels" without one.
    pub encode: String,
    pub data: DataRecord,
    /// The DiT label of each class of the data.
    pub model_labels: Vec<usize>,
    /// Shards the classes are split into (`Shard::count`): shards of one run share a folder.
    pub shards: usize,
    /// Where the DiT runs and the precision of its matrix products on CUDA: another device or
    /// precision gives other bits, so it is part of what a run is (absent: the CPU, f32).
    #[serde(default, skip_serializing_if = "DeviceName::is_cpu")]
    pub device: DeviceName,
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

impl DistillSpec {
    /// The spec of `random`: IPC real images per class of `data` (`classes` of them), no model.
    pub fn random_subset(config: DistillConfig, data: DataRecord, classes: usize) -> Self {
        DistillSpec {
            config,
            dit: None,
            vae: None,
            encode: "none".into(),
            data,
            model_labels: (0..classes).collect(),
            shards: 1,
            device: DeviceName::Cpu,
            precision: Precision::F32,
        }
    }

    /// The identity of the run, the part two runs must share to write one directory.
    pub fn identity(&self) -> serde_json::Value {
        identity(serde_json::to_value(self).expect("a spec serialises"))
    }

    /// The default output folder: `runs/distill-<method>-ipc<N>` for the shipped defaults
    /// (every setting at its default, the shipped model, Fashion-MNIST, the CPU), with the spec's hash
    /// appended for anything else, so that two different runs never share a folder.
    pub fn default_out(&self, is_default_input: bool) -> std::path::PathBuf {
        let c = &self.config;
        let method = match (c.method, c.semantic, c.distribution) {
            (Method::Dmgd, true, true) => "dmgd".to_string(),
            (Method::Dmgd, false, _) => "dmgd-no-semantic".to_string(),
            (Method::Dmgd, _, false) => "dmgd-no-distribution".to_string(),
            (m, _, _) => format!("{m:?}").to_lowercase(),
        };
        let plain = DistillConfig {
            method: c.method,
            semantic: c.semantic,
            distribution: c.distribution,
            ipc: c.ipc,
            ..DistillConfig::default()
        };
        let mut name = format!("distill-{method}-ipc{}", c.ipc);
        let on_cpu = self.device.is_cpu() && self.precision.is_f32();
        if !(is_default_input && *c == plain && self.shards == 1 && on_cpu) {
            name = format!("{name}-{}", dmgd_run::spec_hash(&self.identity()));
        }
        std::path::Path::new("runs").join(name)
    }

    /// The default output folder of `dmgd sample`: `runs/sample-ipc<N>-<the spec's hash>`.
    pub fn default_sample_out(&self) -> std::path::PathBuf {
        let hash = dmgd_run::spec_hash(&self.identity());
        std::path::Path::new("runs").join(format!("sample-ipc{}-{hash}", self.config.ipc))
    }
}

/// The data's classes are not the model's.
#[derive(Debug, thiserror::Error)]
#[error("the DiT is conditioned on {model_classes} classes but the data has {data_classes} classes ({first}...) that are not all ImageNet-1K wnids")]
pub struct LabelMismatch {
    pub model_classes: usize,
    pub data_classes: usize,
    pub first: String,
}

/// The DiT label of each data class: a model conditioned on ImageNet-1K (1000 classes) and data
/// whose class folders are ImageNet wnids (ImageWoof, ImageNette, ...) use ImageNet labels;
/// otherwise the model must know exactly the data's classes, in the data's order.
pub fn model_labels(
    class_names: &[String],
    model_classes: usize,
) -> Result<Vec<usize>, LabelMismatch> {
    let imagenet: Option<Vec<usize>> = class_names
        .iter()
        .map(|n| dmgd_data::class_list::imagenet1k_label(n))
        .collect();
    match imagenet {
        Some(labels) if model_classes == 1000 => Ok(labels),
        _ if model_classes == class_names.len() => Ok((0..class_names.len()).collect()),
        _ => Err(LabelMismatch {
            model_classes,
            data_classes: class_names.len(),
            first: class_names.first().cloned().unwrap_or_default(),
        }),
    }
}

/// A spec (as stored in a manifest) without what does not make a run another run: the paths
/// of checkpoints (a moved file is the same model) and the description of the data.
pub fn identity(mut spec: serde_json::Value) -> serde_json::Value {
    for key in ["dit", "vae"] {
        if let Some(record) = spec.get_mut(key).and_then(|v| v.as_object_mut()) {
            record.remove("path");
        }
    }
    if let Some(data) = spec.get_mut("data").and_then(|v| v.as_object_mut()) {
        data.remove("description");
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(config: DistillConfig) -> DistillSpec {
        DistillSpec {
            config,
            dit: Some(ModelRecord {
                path: "models/x".into(),
                sha256: "ab".into(),
                entry: None,
            }),
            vae: None,
            encode: "pixels".into(),
            data: DataRecord {
                description: "fashion-mnist".into(),
                fingerprint: "cd".into(),
            },
            model_labels: vec![0, 1],
            shards: 1,
            device: DeviceName::Cpu,
            precision: Precision::F32,
        }
    }

    #[test]
    fn wnids_take_imagenet_labels_on_a_1000_class_model() {
        let woof: Vec<String> = ["n02096294", "n02093754"].map(String::from).to_vec();
        let labels = model_labels(&woof, 1000).unwrap();
        assert_eq!(labels.len(), 2);
        assert_ne!(labels, [0, 1]);
        assert_eq!(model_labels(&woof, 2).unwrap(), [0, 1]);
        let err = model_labels(&["a".into(), "b".into()], 10).unwrap_err();
        assert!(err.to_string().contains("10 classes"), "{err}");
    }

    #[test]
    fn default_folders_differ_for_different_runs() {
        let default = spec(DistillConfig::default());
        assert_eq!(
            default.default_out(true),
            std::path::Path::new("runs/distill-dmgd-ipc10")
        );
        let tuned = spec(DistillConfig {
            cfg_scale: 2.0,
            ..DistillConfig::default()
        });
        let out = tuned.default_out(true);
        assert_ne!(out, default.default_out(true));
        assert!(out
            .to_string_lossy()
            .starts_with("runs/distill-dmgd-ipc10-"));
        // Another model or data: another folder even with default settings.
        assert_ne!(default.default_out(false), default.default_out(true));
        // The path of a checkpoint is not its identity.
        let mut moved = default.clone();
        moved.dit.as_mut().unwrap().path = "elsewhere".into();
        assert_eq!(moved.identity(), default.identity());
        assert_eq!(moved.default_out(false), default.default_out(false));
    }

    /// A CPU run's record has no device or precision (the records of earlier runs stay
    /// valid); a CUDA or TF32 run names them, and gets its own folder.
    #[test]
    fn device_and_precision_are_part_of_a_run() {
        let cpu = spec(DistillConfig::default());
        let json = serde_json::to_string(&cpu).unwrap();
        assert!(
            !json.contains("device") && !json.contains("precision"),
            "{json}"
        );
        let mut gpu = cpu.clone();
        gpu.device = DeviceName::Cuda(0);
        let json = serde_json::to_string(&gpu).unwrap();
        assert!(json.contains("\"device\":\"cuda:0\""), "{json}");
        let mut tf32 = gpu.clone();
        tf32.precision = Precision::Tf32;
        assert!(serde_json::to_string(&tf32)
            .unwrap()
            .contains("\"precision\":\"tf32\""));
        let outs = [&cpu, &gpu, &tf32].map(|s| s.default_out(true));
        assert!(
            outs[0] != outs[1] && outs[1] != outs[2] && outs[0] != outs[2],
            "{outs:?}"
        );
        let back: DistillSpec =
            serde_json::from_str(&serde_json::to_string(&tf32).unwrap()).unwrap();
        assert_eq!(
            (back.device, back.precision),
            (DeviceName::Cuda(0), Precision::Tf32)
        );
        assert!(Precision::Tf32.apply(DeviceName::Cpu).is_err());
        assert!(Precision::F32.apply(DeviceName::Cpu).is_ok());
    }
}
