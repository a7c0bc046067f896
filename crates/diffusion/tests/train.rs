//! Pretraining: seeded runs are reproducible, and a resumed run equals an uninterrupted one.

use candle_core::Device;
use dmgd_data::{ImageSet, ImageShape};
use dmgd_diffusion::dit::DitConfig;
use dmgd_diffusion::train::{TrainConfig, Trainer, EMA_FILE, SNAPSHOT_DIR};

fn tiny_data() -> ImageSet {
    let shape = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let n = 12;
    ImageSet {
        shape,
        pixels: (0..n * 64).map(|i| ((i * 37) % 256) as u8).collect(),
        labels: (0..n).map(|i| i % 3).collect(),
        class_names: vec!["a".into(), "b".into(), "c".into()],
    }
}

fn config(steps: usize, data: &ImageSet) -> TrainConfig {
    TrainConfig {
        model: DitConfig {
            preset: "custom".into(),
            input_size: 8,
            patch_size: 4,
            in_channels: 1,
            hidden_size: 32,
            depth: 1,
            num_heads: 2,
            mlp_ratio: 4.0,
            num_classes: 3,
            learn_sigma: true,
        },
        batch_size: 5,
        steps,
        lr: 1e-3,
        weight_decay: 0.0,
        ema_decay: 0.9999,
        class_dropout_prob: 0.1,
        horizontal_flip: true,
        seed: 7,
        checkpoint_every: 2,
        snapshot_every: 0,
        holdout_per_class: 0,
        dataset_fingerprint: data.fingerprint(),
        init: None,
    }
}

fn ema_sum(t: &Trainer) -> Vec<(String, f32)> {
    let mut v: Vec<(String, f32)> = t
        .ema_state_dict()
        .unwrap()
        .into_iter()
        .map(|(k, x)| {
            (
                k,
                x.sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn resuming_equals_training_straight_through() {
    let data = tiny_data();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut straight = Trainer::new(config(4, &data), &Device::Cpu).unwrap();
    let mut losses = Vec::new();
    straight
        .train(&data, a.path(), |r| losses.push(r.loss))
        .unwrap();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");

    let mut first = Trainer::new(config(2, &data), &Device::Cpu).unwrap();
    first.train(&data, b.path(), |_| {}).unwrap();
    // Settings not given again are the run's own: its total of 2 stays until a new one is given.
    let kept = Trainer::resume(b.path(), None, None, &Device::Cpu).unwrap();
    assert_eq!((kept.config.steps, kept.config.checkpoint_every), (2, 2));
    let mut resumed = Trainer::resume(b.path(), Some(4), None, &Device::Cpu).unwrap();
    assert_eq!(resumed.step, 2);
    let mut resumed_losses = Vec::new();
    resumed
        .train(&data, b.path(), |r| resumed_losses.push(r.loss))
        .unwrap();
    assert_eq!(resumed_losses, losses[2..].to_vec());
    assert_eq!(ema_sum(&straight), ema_sum(&resumed));
}

#[test]
fn snapshots_keep_the_ema_of_their_step() {
    let data = tiny_data();
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut cfg = config(4, &data);
    cfg.snapshot_every = 2;
    Trainer::new(cfg.clone(), &Device::Cpu)
        .unwrap()
        .train(&data, dir.path(), |_| {})
        .unwrap();
    let snapshots = dir.path().join(SNAPSHOT_DIR);
    let mut names: Vec<String> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ema-step0000002.safetensors", "ema-step0000004.safetensors"]
    );
    // The step-2 snapshot is the EMA a 2-step run ends with.
    let mut short = Trainer::new(config(2, &data), &Device::Cpu).unwrap();
    short.train(&data, other.path(), |_| {}).unwrap();
    let snapshot = std::fs::read(snapshots.join("ema-step0000002.safetensors")).unwrap();
    assert_eq!(
        snapshot,
        std::fs::read(other.path().join(EMA_FILE)).unwrap()
    );
}

#[test]
fn init_from_starts_at_the_checkpoint_weights() {
    let data = tiny_data();
    let dir = tempfile::tempdir().unwrap();
    let mut first = Trainer::new(config(2, &data), &Device::Cpu).unwrap();
    first.train(&data, dir.path(), |_| {}).unwrap();

    let mut other_seed = config(2, &data);
    other_seed.seed = 8;
    let mut warm = Trainer::new(other_seed, &Device::Cpu).unwrap();
    assert_ne!(ema_sum(&warm), ema_sum(&first));
    warm.init_from(&dir.path().join(EMA_FILE)).unwrap();
    assert_eq!(warm.step, 0);
    assert_eq!(ema_sum(&warm), ema_sum(&first));

    // Another width: every mis-shaped key is named.
    let mut wider = config(2, &data);
    wider.model.hidden_size = 64;
    let err = Trainer::new(wider, &Device::Cpu)
        .unwrap()
        .init_from(&dir.path().join(EMA_FILE))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("x_embedder.proj.weight") && err.contains("expected shape"),
        "{err}"
    );
}
