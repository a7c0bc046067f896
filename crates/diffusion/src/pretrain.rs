//! A pretraining run as its user chooses it (`PretrainSettings`, `dmgd pretrain`'s flags) and
//! how it opens: fresh, into an empty directory, or resumed from the directory's last
//! checkpoint on the same data.

use crate::dit::DitConfig;
use crate::error::{DiffusionError, Result};
use crate::train::{InitCheckpoint, TrainConfig, Trainer, STATE_CONFIG_FILE};
use candle_core::Device;
use dmgd_data::ImageSet;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a fresh run lets one choose; `TrainConfig` is these resolved for the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PretrainSettings {
    pub preset: String,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub ema_decay: f64,
    pub class_dropout_prob: f64,
    pub horizontal_flip: bool,
    pub seed: u64,
    pub checkpoint_every: usize,
    pub snapshot_every: usize,
    pub holdout_per_class: usize,
}

impl Default for PretrainSettings {
    fn default() -> Self {
        PretrainSettings {
            preset: "DiT-Ti/4".into(),
            steps: 20_000,
            batch_size: 128,
            lr: 1e-4,
            weight_decay: 0.0,
            ema_decay: 0.9999,
            class_dropout_prob: crate::dit::CLASS_DROPOUT_PROB,
            horizontal_flip: true,
            seed: 0,
            checkpoint_every: 200,
            snapshot_every: 0,
            holdout_per_class: 0,
        }
    }
}

/// The keys a resumed run may change: the new total, and how often it checkpoints.
pub const RESUMABLE_KEYS: [&str; 2] = ["steps", "checkpoint-every"];

impl dmgd_run::Settings for PretrainSettings {
    fn described() -> Vec<(&'static str, &'static str)> {
        vec![
            ("preset", "DiT preset: DiT-Ti/4, DiT-S/2, ... (an unknown name lists them all)."),
            ("steps", "Total optimizer steps (a resumed run keeps its own unless given: the new total)."),
            ("batch-size", "Images per step."),
            ("lr", "AdamW learning rate."),
            ("weight-decay", "AdamW weight decay."),
            ("ema-decay", "Decay of the EMA of the weights (the model that is kept)."),
            ("class-dropout-prob", "Share of labels dropped to the null class (for classifier-free guidance)."),
            ("horizontal-flip", "Random left-right flips of the training images (DiT does this, for ImageNet). Turn it off for data whose images share one orientation, such as Fashion-MNIST: its shoes all point left, and a model trained with flips draws mirrored ones, which a classifier of real shoes rejects."),
            ("seed", "Seed of the initialisation, the batch order, the noise and the flips."),
            ("checkpoint-every", "Write a checkpoint every this many steps, and at the end (a resumed run keeps its own unless given)."),
            ("snapshot-every", "Also keep the EMA weights every this many steps in snapshots/ (0: none), to choose a checkpoint afterwards by a Fréchet distance on held-out images."),
            ("holdout-per-class", "Hold this many images of every class out of training (the last ones of each class): validation images for choosing a checkpoint, never the test split."),
        ]
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let positive = [
            ("steps", self.steps),
            ("batch-size", self.batch_size),
            ("checkpoint-every", self.checkpoint_every),
        ];
        match positive.into_iter().find(|&(_, n)| n == 0) {
            Some((key, _)) => Err(format!("`{key}`: expected at least 1")),
            None => Ok(()),
        }
    }
}

impl<'a> Start<'a> {
    /// A resume with the values of `settings` whose keys are `given` (as flags): only
    /// `RESUMABLE_KEYS` may be; the error lists the others.
    pub fn resume(
        settings: &PretrainSettings,
        given: &[&str],
    ) -> std::result::Result<Self, Vec<String>> {
        let fixed: Vec<String> = given
            .iter()
            .filter(|key| !RESUMABLE_KEYS.contains(key))
            .map(|key| key.to_string())
            .collect();
        if !fixed.is_empty() {
            return Err(fixed);
        }
        Ok(Start::Resume {
            steps: given.contains(&"steps").then_some(settings.steps),
            checkpoint_every: given
                .contains(&"checkpoint-every")
                .then_some(settings.checkpoint_every),
        })
    }
}

/// How a run opens.
pub enum Start<'a> {
    /// A new run, from a fresh initialisation or from the weights of `init` (a DiT checkpoint of
    /// the same configuration; the optimizer starts fresh).
    Fresh {
        settings: &'a PretrainSettings,
        init: Option<&'a Path>,
    },
    /// The directory's run, from its last checkpoint, with its own settings but these.
    Resume {
        steps: Option<usize>,
        checkpoint_every: Option<usize>,
    },
}

/// Opens the run in `dir` on `all` (the run's held-out images split off): the trainer, and the
/// images it trains on. A fresh run refuses a directory that holds one and writes its resolved
/// settings there before any step; a resumed one refuses other data than its own.
pub fn open(
    dir: &Path,
    start: Start,
    all: &ImageSet,
    device: &Device,
) -> Result<(Trainer, ImageSet)> {
    if all.shape.height != all.shape.width {
        return Err(DiffusionError::NotSquare {
            shape: all.shape.to_string(),
        });
    }
    match start {
        Start::Resume {
            steps,
            checkpoint_every,
        } => {
            let trainer = Trainer::resume(dir, steps, checkpoint_every, device)?;
            let data = all.split_validation(trainer.config.holdout_per_class).0;
            if trainer.config.dataset_fingerprint != data.fingerprint() {
                return Err(DiffusionError::OtherData {
                    dir: dir.to_path_buf(),
                });
            }
            Ok((trainer, data))
        }
        Start::Fresh { settings, init } => {
            if dir.join(STATE_CONFIG_FILE).exists() {
                return Err(DiffusionError::RunExists {
                    dir: dir.to_path_buf(),
                });
            }
            let data = all.split_validation(settings.holdout_per_class).0;
            let config = resolve(settings, &data, init)?;
            let mut trainer = Trainer::new(config, device)?;
            if let Some(path) = init {
                trainer.init_from(path)?;
            }
            trainer.save(dir)?;
            Ok((trainer, data))
        }
    }
}

/// The run's `TrainConfig`: the settings, the preset sized for `data`, the data's fingerprint
/// and the starting checkpoint's hash.
fn resolve(s: &PretrainSettings, data: &ImageSet, init: Option<&Path>) -> Result<TrainConfig> {
    let (side, channels) = (data.shape.height, data.shape.channels);
    let init = match init {
        Some(path) => Some(InitCheckpoint {
            path: path.display().to_string(),
            sha256: dmgd_run::sha256_file(path)?,
        }),
        None => None,
    };
    Ok(TrainConfig {
        model: DitConfig::preset(&s.preset, side, channels, data.num_classes())?,
        batch_size: s.batch_size,
        steps: s.steps,
        lr: s.lr,
        weight_decay: s.weight_decay,
        ema_decay: s.ema_decay,
        class_dropout_prob: s.class_dropout_prob,
        horizontal_flip: s.horizontal_flip,
        seed: s.seed,
        checkpoint_every: s.checkpoint_every,
        snapshot_every: s.snapshot_every,
        holdout_per_class: s.holdout_per_class,
        dataset_fingerprint: data.fingerprint(),
        init,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_described() {
        dmgd_run::settings::assert_described::<PretrainSettings>();
    }

    #[test]
    fn every_flag_sets_its_key_alone() {
        dmgd_run::flags::assert_every_flag_sets_its_key::<PretrainSettings>(
            r#"
preset | --preset DiT-S/2 | "DiT-S/2"
steps | --steps 5 | 5
batch-size | --batch-size 3 | 3
lr | --lr 3e-4 | 3e-4
weight-decay | --weight-decay 0.1 | 0.1
ema-decay | --ema-decay 0.5 | 0.5
class-dropout-prob | --class-dropout-prob 0.2 | 0.2
horizontal-flip | --no-horizontal-flip | false
seed | --seed 7 | 7
checkpoint-every | --checkpoint-every 9 | 9
snapshot-every | --snapshot-every 4 | 4
holdout-per-class | --holdout-per-class 2 | 2
"#,
        );
    }

    #[test]
    fn a_resume_takes_only_a_new_total_and_checkpoint_interval() {
        let settings = PretrainSettings {
            steps: 900,
            ..PretrainSettings::default()
        };
        match Start::resume(&settings, &["steps"]) {
            Ok(Start::Resume {
                steps: Some(900),
                checkpoint_every: None,
            }) => {}
            _ => panic!("--steps alone is a new total"),
        }
        let refused = Start::resume(&settings, &["lr", "steps", "seed"]).err();
        assert_eq!(refused, Some(vec!["lr".to_string(), "seed".to_string()]));
    }
}
