//! The models of a run, loaded once for `distill` and `sample`: the DiT (the shipped one when
//! none is named) and the autoencoder, each with the record its manifest keeps.

use crate::codec::Codec;
use crate::config::DistillConfig;
use crate::spec::{model_labels, DataRecord, DistillSpec, LabelMismatch, ModelRecord};
use candle_core::Device;
use dmgd_diffusion::autoencoder::{Autoencoder, EncodeMode, SdVae, VaeConfig};
use dmgd_diffusion::checkpoint;
use dmgd_diffusion::dit::Dit;
use dmgd_diffusion::DiffusionError;
use dmgd_kernels::{DeviceName, Precision};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    NotFound(DiffusionError),
    #[error("loading the DiT {path}")]
    Dit {
        path: PathBuf,
        #[source]
        source: DiffusionError,
    },
    #[error("loading the SD VAE {path}")]
    Vae {
        path: PathBuf,
        #[source]
        source: DiffusionError,
    },
    #[error(transparent)]
    Record(#[from] dmgd_run::ManifestError),
    #[error("device {device}")]
    Device {
        device: DeviceName,
        #[source]
        source: candle_core::Error,
    },
    #[error("{found} class names for a model of {classes} classes")]
    ClassNames { found: usize, classes: usize },
    #[error("label {label} out of range: the model has {classes} classes")]
    LabelOutOfRange { label: usize, classes: usize },
    #[error(transparent)]
    Data(#[from] dmgd_data::DataError),
}

pub struct Models {
    pub dit: Dit,
    pub dit_record: ModelRecord,
    pub codec: Codec,
    /// None in pixel space.
    pub vae_record: Option<ModelRecord>,
    /// Where they run, and the precision of the DiT's matrix products there.
    pub device: Device,
    pub device_name: DeviceName,
    pub precision: Precision,
}

impl Models {
    /// The DiT at `dit` (a checkpoint file or a `dmgd pretrain` directory; `None`: the shipped
    /// model; of a training checkpoint its entry `dit_entry`, by default `ema`) and the SD VAE
    /// at `vae` (`None`: pixel space), whose encoder gives `encode`.
    pub fn load(
        dit: Option<&Path>,
        dit_entry: Option<&str>,
        vae: Option<&Path>,
        encode: EncodeMode,
        device_name: DeviceName,
        precision: Precision,
    ) -> Result<Models, ModelError> {
        let device = &device_name
            .open()
            .and_then(|d| precision.apply(device_name).map(|()| d))
            .map_err(|source| ModelError::Device {
                device: device_name,
                source,
            })?;
        let dit_path =
            dmgd_diffusion::shipped::resolve_dit_weights(dit).map_err(ModelError::NotFound)?;
        let dit_error = |source| ModelError::Dit {
            path: dit_path.clone(),
            source,
        };
        let entry = checkpoint::resolve_entry(&dit_path, dit_entry).map_err(dit_error)?;
        let model = checkpoint::load_dit_entry(&dit_path, entry.as_deref(), None, device)
            .and_then(|dit| match precision {
                Precision::Bf16 => dit.to_dtype(precision.dtype()),
                Precision::F32 | Precision::Tf32 => Ok(dit),
            })
            .map_err(dit_error)?;
        let (codec, vae_record) = match vae {
            None => (Codec::pixel(), None),
            Some(path) => {
                let vae = SdVae::load(path, &VaeConfig::sd_vae(), device).map_err(|source| {
                    ModelError::Vae {
                        path: path.into(),
                        source,
                    }
                })?;
                let record = ModelRecord::of(path)?;
                let codec = Codec {
                    autoencoder: Autoencoder::SdVae(Box::new(vae)),
                    id: format!("sd-vae:{}", record.sha256),
                    encode_mode: encode,
                };
                (codec, Some(record))
            }
        };
        Ok(Models {
            dit: model,
            dit_record: ModelRecord {
                entry,
                ..ModelRecord::of(&dit_path)?
            },
            codec,
            vae_record,
            device: device.clone(),
            device_name,
            precision,
        })
    }

    /// The names of the classes plain sampling draws: `named` (a list's name or a file), else
    /// Fashion-MNIST's for a 10-class 1-channel model, else `class-<k>`; and `labels` (None:
    /// every class) checked against the model.
    pub fn sampling_classes(
        &self,
        named: Option<&str>,
        labels: Option<&[usize]>,
    ) -> Result<Vec<String>, ModelError> {
        let c = &self.dit.config;
        let names = match (named, c.num_classes, c.in_channels) {
            (Some(name), _, _) => dmgd_data::class_list::resolve(name)?,
            (None, 10, 1) => dmgd_data::class_list::resolve("fashion-mnist")?,
            (None, n, _) => (0..n).map(|k| format!("class-{k:04}")).collect(),
        };
        let classes = c.num_classes;
        if names.len() != classes {
            let found = names.len();
            return Err(ModelError::ClassNames { found, classes });
        }
        match labels.into_iter().flatten().find(|&&y| y >= classes) {
            Some(&label) => Err(ModelError::LabelOutOfRange { label, classes }),
            None => Ok(names),
        }
    }
}

impl Models {
    /// The size real images are brought to before encoding: the one whose latents are the
    /// DiT's input, for a latent model; `None` (as they are) in pixel space.
    pub fn real_image_size(&self) -> Option<usize> {
        let latent = self.dit.config.input_size;
        self.vae_record
            .is_some()
            .then_some(latent * dmgd_diffusion::autoencoder::SD_VAE_FACTOR)
    }

    /// The spec of a run of these models on real data (`class_names` in the data's order).
    pub fn spec_for_data(
        &self,
        config: DistillConfig,
        data: DataRecord,
        class_names: &[String],
        shards: usize,
    ) -> Result<DistillSpec, LabelMismatch> {
        let encode = match (&self.vae_record, self.codec.encode_mode) {
            (None, _) => "pixels",
            (Some(_), EncodeMode::Sample) => "sample",
            (Some(_), EncodeMode::Mean) => "mean",
        };
        Ok(DistillSpec {
            config,
            dit: Some(self.dit_record.clone()),
            vae: self.vae_record.clone(),
            encode: encode.into(),
            model_labels: model_labels(class_names, self.dit.config.num_classes)?,
            data,
            shards,
            device: self.device_name,
            precision: self.precision,
        })
    }

    /// The spec of plain sampling of `labels` (None: every class) of these models' classes,
    /// named `class_names`: no real data.
    pub fn spec_for_sampling(
        &self,
        config: DistillConfig,
        class_names: &[String],
        labels: Option<&[usize]>,
    ) -> DistillSpec {
        DistillSpec {
            config,
            dit: Some(self.dit_record.clone()),
            vae: self.vae_record.clone(),
            encode: "none".into(),
            data: DataRecord {
                description: "none: plain sampling".into(),
                // The classes and the subset sampled: a run of other labels is another run.
                fingerprint: format!(
                    "classes:{}",
                    dmgd_run::spec_hash(&(class_names, &labels.map(<[usize]>::to_vec)))
                ),
            },
            model_labels: (0..self.dit.config.num_classes).collect(),
            shards: 1,
            device: self.device_name,
            precision: self.precision,
        }
    }
}
