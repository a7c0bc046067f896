//! An evaluation's training configuration from what its user chose: the protocol's defaults
//! (which may follow the sets' IPC and class count), then each choice made.

use crate::evaluate::common_ipc;
use crate::EvalError;
use dmgd_data::ImageSet;
use dmgd_kernels::DeviceName;
use dmgd_student::{Arch, Augment, NormKind, Protocol, TrainConfig};
use serde::{Deserialize, Serialize};

/// The optimiser, where the protocol lets one choose (minimax, rded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerChoice {
    AdamW,
    /// The Minimax code's SGD alternative (`TrainConfig::MINIMAX_SGD`).
    Sgd,
}

/// Whose labels the students learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Labels {
    /// The sets' own labels.
    #[default]
    Hard,
    /// A frozen teacher's tempered outputs on every training batch (the caller loads it).
    Soft,
}

/// What the user chose (`dmgd eval`'s settings); `None`: the protocol's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrainChoices {
    pub net: Arch,
    pub norm: NormKind,
    pub protocol: Option<Protocol>,
    pub labels: Labels,
    pub epochs: Option<usize>,
    pub augment: Option<Augment>,
    pub optimizer: Option<OptimizerChoice>,
    pub batch_size: Option<usize>,
    pub test_every: Option<usize>,
    pub seed: u64,
    pub device: DeviceName,
    /// Fresh networks per training set.
    pub repeats: usize,
    /// Architecture of the soft labels' teacher; `None`: the student's.
    pub teacher_net: Option<Arch>,
    pub temperature: f64,
}

impl Default for TrainChoices {
    fn default() -> Self {
        TrainChoices {
            net: Arch::ConvNet { depth: 3 },
            norm: NormKind::Instance,
            protocol: None,
            labels: Labels::Hard,
            epochs: None,
            augment: None,
            optimizer: None,
            batch_size: None,
            test_every: None,
            seed: 0,
            device: DeviceName::Cpu,
            repeats: 5,
            teacher_net: None,
            temperature: dmgd_student::protocol::RDED_TEMPERATURE,
        }
    }
}

impl dmgd_run::Settings for TrainChoices {
    fn described() -> Vec<(&'static str, &'static str)> {
        vec![
            ("net", "Student network: convnet3 (28-32 px), convnet6 (224 px), convnetD, resnetap10, resnet18."),
            ("norm", "Normalisation layers of the student: instance or batch."),
            ("protocol", "dc (Fashion-MNIST: SGD, batch 256, lr x0.1 at half), minimax (ImageNet subsets at 224 px: augmentation chain, CutMix, epochs by IPC) or rded (the soft-label protocol: AdamW, half cosine, batch by IPC) [default: dc, rded with --labels soft]."),
            ("labels", "hard (the sets' own labels) or soft: a frozen --teacher labels every training batch."),
            ("epochs", "Epochs [default: 300 for dc and rded, by IPC for minimax]."),
            ("augment", "Training augmentation: none, dsa, minimax or rded [default: the protocol's: none for dc]."),
            ("optimizer", "Optimiser for minimax and rded: adamw (their default) or sgd; dc always uses SGD 0.01 / 0.9 / 5e-4, and refuses this."),
            ("batch-size", "Training batch [default: the protocol's; by IPC for rded]."),
            ("test-every", "Test every this many epochs, and always at the end [default: E/10 for dc, E/100 for minimax, E/30 after 80 % of E for rded]. A pass over the 10,000 Fashion-MNIST test images costs about as much as several training epochs at IPC 10: for short runs, give the epoch count to test once, at the end."),
            ("seed", "Seed of the first network; repeat r of set s uses seed + 1000 s + r."),
            ("device", "cpu, or cuda:N with a dmgd built with `--features cuda` (the students' CPU kernels give way to candle's ops there; another device is another run: other bits)."),
            ("repeats", "Fresh networks per training set."),
            ("teacher-net", "Architecture of the soft labels' teacher [default: the student's net]."),
            ("temperature", "Temperature of the soft labels."),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        if self.repeats == 0 {
            return Err("`repeats`: expected at least 1".into());
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err("`temperature`: expected a positive number".into());
        }
        Ok(())
    }
}

impl TrainChoices {
    /// The configuration for `train` (the soft labels' teacher is set by the caller, once
    /// loaded). Minimax epochs and rded batches follow the IPC, so sets of different IPCs
    /// need those chosen.
    pub fn resolve(&self, train: &[ImageSet]) -> Result<TrainConfig, EvalError> {
        let invalid = |reason: &str| EvalError::InvalidChoice {
            reason: reason.into(),
        };
        let protocol = self.protocol.unwrap_or(match self.labels {
            Labels::Soft => Protocol::Rded,
            Labels::Hard => Protocol::Dc,
        });
        if protocol == Protocol::Dc && self.optimizer.is_some() {
            return Err(invalid("the optimiser is chosen under the minimax and rded protocols; dc always trains with SGD 0.01 / 0.9 / 5e-4"));
        }
        let follows_ipc = match protocol {
            Protocol::Minimax => self.epochs.is_none(),
            Protocol::Rded => self.batch_size.is_none(),
            Protocol::Dc => false,
        };
        let ipc = if follows_ipc { common_ipc(train)? } else { 1 };
        let classes = train.first().map_or(0, |t| t.num_classes());
        let mut config = TrainConfig::for_protocol(protocol, self.net, (ipc, classes), self.seed);
        if let Some(epochs) = self.epochs {
            config = config.with_epochs(epochs);
        }
        if self.optimizer == Some(OptimizerChoice::Sgd) {
            config.optimizer = TrainConfig::MINIMAX_SGD;
        }
        config.norm = self.norm;
        config.device = self.device;
        config.augment = self.augment.unwrap_or(config.augment);
        config.batch_size = self.batch_size.unwrap_or(config.batch_size);
        config.test_every = self.test_every.unwrap_or(config.test_every);
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmgd_data::ImageShape;

    /// `ipc` blank images of each of 10 classes.
    fn set(ipc: usize) -> ImageSet {
        let shape = ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        };
        ImageSet {
            shape,
            pixels: vec![0; 10 * ipc * shape.numel()],
            labels: (0..10 * ipc).map(|i| i % 10).collect(),
            class_names: (0..10).map(|k| k.to_string()).collect(),
        }
    }

    fn choices() -> TrainChoices {
        TrainChoices {
            seed: 3,
            ..TrainChoices::default()
        }
    }

    #[test]
    fn every_choice_is_described() {
        dmgd_run::settings::assert_described::<TrainChoices>();
    }

    #[test]
    fn defaults_follow_the_protocol_and_the_sets() {
        let hard = choices().resolve(&[set(10)]).unwrap();
        assert_eq!(
            (hard.protocol, hard.epochs, hard.batch_size),
            (Protocol::Dc, 300, 256)
        );
        let soft = TrainChoices {
            labels: Labels::Soft,
            ..choices()
        };
        let rded = soft.resolve(&[set(10)]).unwrap();
        assert_eq!(
            (rded.protocol, rded.batch_size, rded.augment),
            (Protocol::Rded, 50, Augment::Rded)
        );
        assert_eq!(soft.resolve(&[set(1)]).unwrap().batch_size, 10);
        // Sets of two IPCs: the rded batch must be chosen, then they may be evaluated together.
        let mixed = [set(1), set(10)];
        assert!(matches!(
            soft.resolve(&mixed),
            Err(EvalError::MixedIpc { .. })
        ));
        let chosen = TrainChoices {
            batch_size: Some(32),
            ..soft.clone()
        };
        assert_eq!(chosen.resolve(&mixed).unwrap().batch_size, 32);
        let minimax = TrainChoices {
            protocol: Some(Protocol::Minimax),
            optimizer: Some(OptimizerChoice::Sgd),
            ..choices()
        };
        let mm = minimax.resolve(&[set(50)]).unwrap();
        assert_eq!((mm.epochs, mm.optimizer), (1500, TrainConfig::MINIMAX_SGD));
        let dc_sgd = TrainChoices {
            optimizer: Some(OptimizerChoice::AdamW),
            ..choices()
        };
        assert!(matches!(
            dc_sgd.resolve(&[set(10)]),
            Err(EvalError::InvalidChoice { .. })
        ));
    }

    #[test]
    fn repeats_and_temperature_are_checked() {
        use dmgd_run::Settings;
        assert!(choices().validate().is_ok());
        for bad in [
            TrainChoices {
                repeats: 0,
                ..choices()
            },
            TrainChoices {
                temperature: 0.0,
                ..choices()
            },
            TrainChoices {
                temperature: f64::NAN,
                ..choices()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_flag_sets_its_key_alone() {
        dmgd_run::flags::assert_every_flag_sets_its_key::<TrainChoices>(
            r#"
net | --net resnet18 | "resnet18"
norm | --norm batch | "batch"
protocol | --protocol minimax | "minimax"
labels | --labels soft | "soft"
epochs | --epochs 7 | 7
augment | --augment dsa | "dsa"
optimizer | --optimizer sgd | "sgd"
batch-size | --batch-size 8 | 8
test-every | --test-every 2 | 2
seed | --seed 4 | 4
device | --device cuda:1 | "cuda:1"
repeats | --repeats 2 | 2
teacher-net | --teacher-net resnet18 | "resnet18"
temperature | --temperature 4 | 4.0
"#,
        );
    }
}
