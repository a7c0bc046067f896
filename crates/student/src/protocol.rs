//! Training configurations of the evaluation protocols (docs/METHOD.md §8, and §10 for the
//! soft-label one) and how their defaults resolve.

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
    /// RDED's soft-label protocol (ImageNet-1K table): AdamW, half-cosine schedule, batch by
    /// IPC, tested every 10 epochs once 80 % have run.
    Rded,
}

impl std::str::FromStr for Protocol {
    type Err = StudentError;
    fn from_str(s: &str) -> Result<Self, StudentError> {
        match s {
            "dc" => Ok(Protocol::Dc),
            "minimax" => Ok(Protocol::Minimax),
            "rded" => Ok(Protocol::Rded),
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
    /// ShufflePatches + RandomResizedCrop + flip, then CutMix (see `augment::rded`).
    Rded,
}

/// The frozen network whose tempered softmax of each training batch is the students' target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Teacher {
    pub net: Arch,
    pub norm: NormKind,
    /// The weights file as given, and its sha256: what makes the labels.
    pub path: String,
    pub sha256: String,
}

/// Soft labels (docs/METHOD.md §10): KL divergence to `softmax(teacher(x) / temperature)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SoftLabels {
    pub teacher: Teacher,
    pub temperature: f64,
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
    /// Soft labels from a teacher; absent from the record with hard labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_labels: Option<SoftLabels>,
}

/// DC protocol: 300 epochs (DC/DSA; DM uses 1000).
pub const DC_EPOCHS: usize = 300;
/// RDED protocol: epochs, and the temperature of its soft labels (T = 4 goes with Mixup 0.8).
pub const RDED_EPOCHS: usize = 300;
pub const RDED_TEMPERATURE: f64 = 20.0;

/// RDED's batch size: 10 / 50 / 100 at IPC 1 / 10 / 50 (<= 1, <= 10, more) for 10 classes,
/// doubled from 100 classes on, never more than the set.
pub fn rded_batch_size(ipc: usize, classes: usize) -> usize {
    let base = match ipc {
        0..=1 => 10,
        2..=10 => 50,
        _ => 100,
    };
    let scale = if classes >= 100 { 2 } else { 1 };
    (base * scale).min((ipc * classes).max(1))
}

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
            soft_labels: None,
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
            soft_labels: None,
        }
    }

    /// RDED protocol defaults for `ipc` images of each of `classes` classes: AdamW 1e-3 /
    /// 0.01 (no decay on biases and norm parameters), half-cosine schedule over 300 epochs,
    /// batch by IPC, RDED augmentation, tested every 10 epochs after 80 % of them. Hard labels
    /// until `soft_labels` is set.
    pub fn rded(net: Arch, ipc: usize, classes: usize, seed: u64) -> Self {
        TrainConfig {
            net,
            norm: NormKind::Instance,
            protocol: Protocol::Rded,
            epochs: RDED_EPOCHS,
            batch_size: rded_batch_size(ipc, classes),
            optimizer: OptimizerKind::AdamW {
                lr: 1e-3,
                weight_decay: 0.01,
            },
            lr_steps: Vec::new(),
            augment: Augment::Rded,
            test_every: 10,
            seed,
            device: DeviceName::Cpu,
            soft_labels: None,
        }
    }

    /// The protocol's defaults: `dc` for 300 epochs, `minimax` with the epochs of `ipc`,
    /// `rded` with the batch of `ipc` and `classes`.
    pub fn for_protocol(
        protocol: Protocol,
        net: Arch,
        (ipc, classes): (usize, usize),
        seed: u64,
    ) -> Self {
        match protocol {
            Protocol::Dc => TrainConfig::dc(net, DC_EPOCHS, seed),
            Protocol::Minimax => TrainConfig::minimax(net, ipc, seed),
            Protocol::Rded => TrainConfig::rded(net, ipc, classes, seed),
        }
    }

    /// The same run for `epochs` epochs, tested as often as the protocol tests (E/10 for dc,
    /// E/100 for minimax, E/30 for rded).
    pub fn with_epochs(self, epochs: usize) -> Self {
        let tests = match self.protocol {
            Protocol::Dc => 10,
            Protocol::Minimax => 100,
            Protocol::Rded => 30,
        };
        TrainConfig {
            epochs,
            test_every: (epochs / tests).max(1),
            ..self
        }
    }

    /// Whether the net is tested after `done` epochs: every `test_every` epochs (rded: only
    /// once more than 80 % have run, as RDED tests 0-based epochs > 0.8 E), and after the last.
    pub fn tests_after(&self, done: usize) -> bool {
        let late_enough =
            self.protocol != Protocol::Rded || (done - 1) as f64 > 0.8 * self.epochs as f64;
        done == self.epochs || (done % self.test_every == 0 && late_enough)
    }

    /// Whether weight decay applies to the variable `name` of `dims` dimensions: rded (RDED's
    /// grouping) decays only the `weight`s of more than one dimension; the others decay all.
    pub fn decays(&self, name: &str, dims: usize) -> bool {
        self.protocol != Protocol::Rded || (name.ends_with("weight") && dims > 1)
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
    /// floor(f * E) on, like torch MultiStepLR with milestones floor(f * E); rded follows the
    /// half cosine instead.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        if self.protocol == Protocol::Rded {
            return self.optimizer.lr() * crate::soft_label::half_cosine(epoch, self.epochs);
        }
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
        let short =
            TrainConfig::for_protocol(Protocol::Dc, Arch::ResNet18, (1, 10), 0).with_epochs(20);
        assert_eq!((short.epochs, short.test_every), (20, 2));
        let mm = TrainConfig::for_protocol(Protocol::Minimax, Arch::ResNet18, (10, 10), 0);
        assert_eq!(mm.epochs, 2000);
        assert_eq!(mm.with_epochs(50).test_every, 1);
    }

    /// RDED's settings (docs/METHOD.md §10): batch 10 / 50 / 100 by IPC, doubled for 100 and
    /// more classes, capped by the set; lr 1e-3 falling to half by a cosine; tests at 0-based
    /// epochs 249, 259, ..., 299 of 300; decay only on matrices and kernels named `weight`.
    #[test]
    fn rded_follows_its_protocol() {
        let batch = |ipc, classes| rded_batch_size(ipc, classes);
        assert_eq!((batch(1, 10), batch(10, 10), batch(50, 10)), (10, 50, 100));
        assert_eq!(
            (batch(1, 100), batch(10, 1000), batch(50, 1000)),
            (20, 100, 200)
        );
        assert_eq!(batch(1, 5), 5);
        let cfg = TrainConfig::for_protocol(Protocol::Rded, Arch::ResNet18, (10, 10), 0);
        assert_eq!((cfg.epochs, cfg.batch_size, cfg.test_every), (300, 50, 10));
        assert_eq!(cfg.lr_at(0), 1e-3);
        assert!((cfg.lr_at(150) - 1e-3 * (0.5 + 2f64.sqrt() / 4.0)).abs() < 1e-15);
        // The last epoch, 299, is still above half: 0.5 (1 + cos(299 pi / 600)).
        let last = 0.5 * (1.0 + (299.0 * std::f64::consts::PI / 600.0).cos());
        assert!((cfg.lr_at(299) - 1e-3 * last).abs() < 1e-15 && last > 0.5);
        let tested: Vec<usize> = (1..=300).filter(|&d| cfg.tests_after(d)).collect();
        assert_eq!(tested, vec![250, 260, 270, 280, 290, 300]);
        assert!(cfg.decays("layer1.0.conv1.weight", 4) && cfg.decays("fc.weight", 2));
        assert!(!cfg.decays("fc.bias", 1) && !cfg.decays("bn1.weight", 1));
        let dc = TrainConfig::dc(Arch::ConvNet { depth: 3 }, 300, 0);
        assert!(dc.decays("fc.bias", 1) && dc.tests_after(30) && !dc.tests_after(31));
    }

    #[test]
    fn config_serialises_with_readable_names() {
        let cfg = TrainConfig::dc(Arch::ConvNet { depth: 3 }, 300, 1);
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(
            json.contains("\"net\":\"convnet3\"") && json.contains("\"kind\":\"sgd\""),
            "{json}"
        );
        assert!(!json.contains("soft") && !json.contains("device"), "{json}");
        let back: TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
        let mut bad = cfg.clone();
        bad.epochs = 0;
        assert!(bad.validate().unwrap_err().to_string().contains("epochs"));
    }
}
