//! Training configurations of the two evaluation protocols (docs/METHOD.md §8) and how their
//! defaults resolve.

use crate::nets::{Arch, NormKind};
use crate::StudentError;
use dmgd_kernels::optim::OptimizerKind;
use dmgd_kernels::DeviceName;
use serde::{Deserialize, Serialize};

/// The evaluation protocol: fixes normalisation, augmentation family and schedule shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// DC/DSA/DM/MTT (Fashion-MNIST, ConvNet-3).
    Dc,
    /// Minimax/IDC (ImageNet subsets at 224 px).
    Minimax,
}

impl std::str::FromStr for Protocol {
    type Err = StudentError;
    fn from_str(s: &str) -> Result<Self, StudentError> {
        match s {
            "dc" => Ok(Protocol::Dc),
            "minimax" => Ok(Protocol::Minimax),
            _ => Err(StudentError::UnknownProtocol {
                name: s.to_string(),
            }),
        }
    }
}

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    None,
    /// DSA `color_crop_cutout_flip_scale_rotate` in the DC/DM code's 'S' mode (see `augment::dsa`).
    Dsa,
    /// RandomResizedCrop + flip + colour jitter + PCA lighting, then CutMix (see `augment::minimax`).
    Minimax,
}

/// Multiply the learning rate by `factor` once `at` (a fraction of the epochs) is reached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrStep {
    pub at: f64,
    pub factor: f64,
}

/// Everything that defines one student training run. Serialisable so the CLI can record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrainConfig {
    pub net: Arch,
    pub norm: NormKind,
    pub protocol: Protocol,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub lr_steps: Vec<LrStep>,
    pub augment: Augment,
    /// Test every this many epochs (and always after the last one).
    pub test_every: usize,
    pub seed: u64,
    /// Where the network trains; absent from the record on the CPU. Another device gives
    /// other bits (other summation orders), so it is part of what a run is.
    #[serde(default, skip_serializing_if = "DeviceName::is_cpu")]
    pub device: DeviceName,
}

/// DC protocol: 300 epochs (DC/DSA; DM uses 1000).
pub const DC_EPOCHS: usize = 300;
/// Minimax protocol: images from which the per-IPC epoch counts apply.
pub fn minimax_epochs(ipc: usize) -> usize {
    match ipc {
        0..=10 => 2000,
        11..=50 => 1500,
        _ => 1000,
    }
}

impl TrainConfig {
    /// DC protocol defaults: SGD 0.01 / 0.9 / 5e-4, batch 256, lr x0.1 at the half, no
    /// augmentation, test every E/10 epochs.
    ///
    /// Difference from the DC code's `evaluate_synset`, which loops `for ep in range(Epoch + 1)`
    /// (E + 1 passes) and, after pass E//2 + 1, multiplies lr by 0.1 by building a new SGD
    /// optimiser (momentum buffers reset): here there are exactly E passes, the lr is x0.1
    /// from pass floor(E/2) on (0-based), and momentum buffers are kept.
    pub fn dc(net: Arch, epochs: usize, seed: u64) -> Self {
        TrainConfig {
            net,
            norm: NormKind::Instance,
            protocol: Protocol::Dc,
            epochs,
            batch_size: 256,
            optimizer: OptimizerKind::Sgd {
                lr: 0.01,
                momentum: 0.9,
                weight_decay: 5e-4,
            },
            lr_steps: vec![LrStep {
                at: 0.5,
                factor: 0.1,
            }],
            augment: Augment::None,
            test_every: (epochs / 10).max(1),
            seed,
            device: DeviceName::Cpu,
        }
    }

    /// Minimax protocol defaults for `ipc` images per class: AdamW 1e-3 / 0.01 (DMGD/IGD),
    /// batch 64, lr x0.2 at 2/3 and 5/6, test every E/100 epochs, Minimax augmentation.
    pub fn minimax(net: Arch, ipc: usize, seed: u64) -> Self {
        let epochs = minimax_epochs(ipc);
        TrainConfig {
            net,
            norm: NormKind::Instance,
            protocol: Protocol::Minimax,
            epochs,
            batch_size: 64,
            optimizer: OptimizerKind::AdamW {
                lr: 1e-3,
                weight_decay: 0.01,
            },
            lr_steps: vec![
                LrStep {
                    at: 2.0 / 3.0,
                    factor: 0.2,
                },
                LrStep {
                    at: 5.0 / 6.0,
                    factor: 0.2,
                },
            ],
            augment: Augment::Minimax,
            test_every: (epochs / 100).max(1),
            seed,
            device: DeviceName::Cpu,
        }
    }

    /// The protocol's defaults: `dc` for 300 epochs, `minimax` with the epochs of `ipc`.
    pub fn for_protocol(protocol: Protocol, net: Arch, ipc: usize, seed: u64) -> Self {
        match protocol {
            Protocol::Dc => TrainConfig::dc(net, DC_EPOCHS, seed),
            Protocol::Minimax => TrainConfig::minimax(net, ipc, seed),
        }
    }

    /// The same run for `epochs` epochs, tested as often as the protocol tests (E/10 for dc,
    /// E/100 for minimax).
    pub fn with_epochs(self, epochs: usize) -> Self {
        let tests = match self.protocol {
            Protocol::Dc => 10,
            Protocol::Minimax => 100,
        };
        TrainConfig {
            epochs,
            test_every: (epochs / tests).max(1),
            ..self
        }
    }

    /// The Minimax code's SGD alternative: lr 0.01, momentum 0.9, weight decay 5e-4.
    pub const MINIMAX_SGD: OptimizerKind = OptimizerKind::Sgd {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 5e-4,
    };

    pub fn validate(&self) -> Result<(), StudentError> {
        let bad = |reason: String| Err(StudentError::InvalidConfig { reason });
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if self.test_every == 0 {
            return bad("test-every must be at least 1".into());
        }
        if !(self.optimizer.lr() > 0.0) {
            return bad(format!(
                "learning rate must be positive, got {}",
                self.optimizer.lr()
            ));
        }
        Ok(())
    }

    /// The learning rate for epoch `epoch` (0-based). A step at fraction f applies from epoch
    /// floor(f * E) on, like torch MultiStepLR with milestones floor(f * E).
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let mut lr = self.optimizer.lr();
        for step in &self.lr_steps {
            if epoch >= (step.at * self.epochs as f64).floor() as usize {
                lr *= step.factor;
            }
        }
        lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_the_protocols() {
        let dc = TrainConfig::dc(Arch::ConvNet { depth: 3 }, 300, 0);
        assert_eq!((dc.lr_at(0), dc.lr_at(149)), (0.01, 0.01));
        assert!((dc.lr_at(150) - 0.001).abs() < 1e-12 && (dc.lr_at(299) - 0.001).abs() < 1e-12);
        assert_eq!(dc.test_every, 30);

        let mm = TrainConfig::minimax(Arch::ResNetAp10, 10, 0);
        assert_eq!((mm.epochs, mm.test_every, mm.batch_size), (2000, 20, 64));
        assert_eq!(mm.lr_at(1332), 1e-3);
        assert!((mm.lr_at(1333) - 2e-4).abs() < 1e-12);
        assert!((mm.lr_at(1666) - 4e-5).abs() < 1e-12);
        assert_eq!(
            (minimax_epochs(20), minimax_epochs(50), minimax_epochs(100)),
            (1500, 1500, 1000)
        );
        // Other epoch counts keep each protocol's testing rhythm.
        let short = TrainConfig::for_protocol(Protocol::Dc, Arch::ResNet18, 1, 0).with_epochs(20);
        assert_eq!((short.epochs, short.test_every), (20, 2));
        let mm = TrainConfig::for_protocol(Protocol::Minimax, Arch::ResNet18, 10, 0);
        assert_eq!(mm.epochs, 2000);
        assert_eq!(mm.with_epochs(50).test_every, 1);
    }

    #[test]
    fn config_serialises_with_readable_names() {
        let cfg = TrainConfig::dc(Arch::ConvNet { depth: 3 }, 300, 1);
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(
            json.contains("\"net\":\"convnet3\"") && json.contains("\"kind\":\"sgd\""),
            "{json}"
        );
        let back: TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
        let mut bad = cfg.clone();
        bad.epochs = 0;
        assert!(bad.validate().unwrap_err().to_string().contains("epochs"));
    }
}
