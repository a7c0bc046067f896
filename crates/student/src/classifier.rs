//! A trained student with its input normalisation: batched prediction, penultimate features,
//! accuracy, and weights saved as safetensors (for coresets and for classifying samples).

use crate::augment::minimax::{IMAGENET_MEAN, IMAGENET_STD};
use crate::nets::{Net, NetSpec};
use crate::protocol::Protocol;
use crate::StudentError;
use candle_core::{Device, Tensor, D};
use dmgd_data::{ImageSet, ImageShape};
use std::path::Path;

/// CIFAR-10 statistics of the DC code, for 3-channel inputs under the DC protocol.
const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
const CIFAR10_STD: [f32; 3] = [0.2023, 0.1994, 0.2010];

/// Per-channel (v - mean) / std applied to pixels in [0, 1].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// DC: Fashion-MNIST statistics for 1 channel (CIFAR-10's for 3); Minimax: ImageNet's;
    /// RDED: Fashion-MNIST's for 1 channel, ImageNet's for 3.
    pub fn for_protocol(protocol: Protocol, channels: usize) -> Result<Self, StudentError> {
        let (mean, std): (&[f32], &[f32]) = match (protocol, channels) {
            (Protocol::Dc | Protocol::Rded, 1) => (
                &[dmgd_data::fashion_mnist::MEAN],
                &[dmgd_data::fashion_mnist::STD],
            ),
            (Protocol::Dc, 3) => (&CIFAR10_MEAN, &CIFAR10_STD),
            (Protocol::Minimax | Protocol::Rded, 3) => (&IMAGENET_MEAN, &IMAGENET_STD),
            _ => {
                return Err(StudentError::InvalidConfig {
                    reason: format!(
                    "the {protocol:?} protocol has no normalisation for {channels}-channel images"
                ),
                })
            }
        };
        Ok(Normalization {
            mean: mean.to_vec(),
            std: std.to_vec(),
        })
    }

    /// Normalised f32 pixels of `images`, (N, C, H, W) flattened.
    pub fn apply(&self, images: &ImageSet) -> Vec<f32> {
        let plane = images.shape.height * images.shape.width;
        let c = images.shape.channels;
        images
            .pixels
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let ci = (i / plane) % c;
                (p as f32 / 255.0 - self.mean[ci]) / self.std[ci]
            })
            .collect()
    }
}

/// Images per forward pass at test time: large enough to keep both cores busy.
fn eval_batch(shape: ImageShape) -> usize {
    if shape.height * shape.width <= 64 * 64 {
        500
    } else {
        32
    }
}

pub struct Classifier {
    net: Net,
    normalization: Normalization,
}

impl Classifier {
    pub fn new(net: Net, normalization: Normalization) -> Self {
        Classifier { net, normalization }
    }

    pub fn net(&self) -> &Net {
        &self.net
    }

    pub fn normalization(&self) -> &Normalization {
        &self.normalization
    }

    fn check_shape(&self, images: &ImageSet) -> Result<(), StudentError> {
        let want = self.net.spec().input;
        if images.shape != want {
            return Err(StudentError::InvalidConfig {
                reason: format!("the net takes {want} images, got {}", images.shape),
            });
        }
        Ok(())
    }

    /// Runs `f` over the images in evaluation mode, batch by batch, and concatenates rows.
    fn map_batches(
        &self,
        images: &ImageSet,
        f: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
    ) -> Result<Tensor, StudentError> {
        self.check_shape(images)?;
        let s = images.shape;
        let batch = eval_batch(s);
        let device = self.net.device();
        let mut outputs = Vec::new();
        for start in (0..images.len()).step_by(batch) {
            let end = (start + batch).min(images.len());
            let chunk = images.subset(&(start..end).collect::<Vec<_>>());
            let x = Tensor::from_vec(
                self.normalization.apply(&chunk),
                (end - start, s.channels, s.height, s.width),
                &device,
            )?;
            outputs.push(f(&x)?.detach().to_device(&Device::Cpu)?);
        }
        if outputs.is_empty() {
            return Ok(Tensor::zeros(
                (0, 0),
                candle_core::DType::F32,
                &Device::Cpu,
            )?);
        }
        Ok(Tensor::cat(&outputs, 0)?)
    }

    /// Class logits, (N, num_classes).
    pub fn logits(&self, images: &ImageSet) -> Result<Tensor, StudentError> {
        self.map_batches(images, |x| self.net.forward(x, false))
    }

    /// Predicted class of every image.
    pub fn predict(&self, images: &ImageSet) -> Result<Vec<usize>, StudentError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let classes = self.logits(images)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
        Ok(classes.into_iter().map(|c| c as usize).collect())
    }

    /// Penultimate-layer embedding of every image, (N, feature_dim).
    pub fn features(&self, images: &ImageSet) -> Result<Tensor, StudentError> {
        self.map_batches(images, |x| self.net.features(x, false))
    }

    /// Percentage of images whose predicted class equals their label.
    pub fn accuracy(&self, images: &ImageSet) -> Result<f64, StudentError> {
        let predicted = self.predict(images)?;
        let correct = predicted
            .iter()
            .zip(&images.labels)
            .filter(|(p, y)| p == y)
            .count();
        Ok(100.0 * correct as f64 / images.len().max(1) as f64)
    }

    pub fn save(&self, path: &Path) -> Result<(), StudentError> {
        self.net.save(path)
    }

    /// Loads weights written by `save`; the normalisation comes from the protocol.
    pub fn load(spec: NetSpec, protocol: Protocol, path: &Path) -> Result<Self, StudentError> {
        Classifier::load_on(spec, protocol, path, &Device::Cpu)
    }

    /// `load` onto `device` (predictions and features are computed there).
    pub fn load_on(
        spec: NetSpec,
        protocol: Protocol,
        path: &Path,
        device: &Device,
    ) -> Result<Self, StudentError> {
        let normalization = Normalization::for_protocol(protocol, spec.input.channels)?;
        Ok(Classifier {
            net: Net::load_on(spec, path, device)?,
            normalization,
        })
    }
}
