//! `dmgd pretrain`: train a class-conditional pixel-space DiT on Fashion-MNIST or an ImageFolder
//! (hybrid loss, label dropout to the null class, AdamW, EMA, resumable checkpoints).

use crate::dataset::DataArgs;
use crate::progress::Bar;
use anyhow::{bail, Context, Result};
use dmgd_data::fashion_mnist::Split;
use dmgd_data::DataSource;
use dmgd_diffusion::dit::{preset_names, DitConfig, CLASS_DROPOUT_PROB};
use dmgd_diffusion::train::{InitCheckpoint, TrainConfig, Trainer, STATE_CONFIG_FILE};
use std::path::PathBuf;

/// Train a class-conditional DiT on a dataset (for data no public model covers).
///
/// Hybrid loss (MSE on the noise + the variational bound for the learned variance), label
/// dropout to the null class (for classifier-free guidance), AdamW, EMA. The run directory
/// gets `model.json` + `ema.safetensors` (the model `sample` and `distill` load) and
/// `train-state.*` (what `--resume` needs) every --checkpoint-every steps.
///
/// Example (the shipped Fashion-MNIST model; see models/fashion-mnist-dit/README.md):
///   dmgd pretrain --out runs/my-dit --preset DiT-Ti/4 --steps 3000 --batch-size 32 --lr 3e-4 \
///     --horizontal-flip false
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Run directory: model.json + ema.safetensors (the model), train-state.* (to resume).
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint, with its settings (only --steps,
    /// the new total, and --checkpoint-every may be given).
    #[arg(long)]
    resume: bool,
    /// Total optimizer steps [default: 20000; with --resume: the run's own, or a new total].
    #[arg(long)]
    steps: Option<usize>,
    /// Write a checkpoint every this many steps, and at the end [default: 200; with --resume:
    /// the run's own].
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// DiT preset (`DiT-Ti/4`, `DiT-S/2`, ...; see the error message for the list).
    #[arg(long, default_value = "DiT-Ti/4", conflicts_with = "resume")]
    preset: String,
    #[arg(long, default_value_t = 128, conflicts_with = "resume")]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-4, conflicts_with = "resume")]
    lr: f64,
    #[arg(long, default_value_t = 0.0, conflicts_with = "resume")]
    weight_decay: f64,
    #[arg(long, default_value_t = 0.9999, conflicts_with = "resume")]
    ema_decay: f64,
    #[arg(long, default_value_t = CLASS_DROPOUT_PROB, conflicts_with = "resume")]
    class_dropout_prob: f64,
    /// Random left-right flips of the training images (DiT does this, for ImageNet). Turn it
    /// off (`--horizontal-flip false`) for data whose images share one orientation, such as
    /// Fashion-MNIST: its shoes all point left, and a model trained with flips draws
    /// mirrored ones, which a classifier of real shoes rejects (models/fashion-mnist-dit).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, conflicts_with = "resume")]
    horizontal_flip: bool,
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    seed: u64,
    /// Also keep the EMA weights every this many steps in `snapshots/` (0: none), to choose a
    /// checkpoint afterwards by a Fréchet distance on the held-out images.
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    snapshot_every: usize,
    /// Hold this many images of every class out of training (the last ones of each class):
    /// validation images for choosing a checkpoint, never the test split.
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    holdout_per_class: usize,
    /// Start from the weights of this DiT checkpoint (an `ema.safetensors` of an earlier run,
    /// or any checkpoint of the same preset) instead of a fresh initialisation; the optimizer
    /// starts fresh. For continuing a run whose optimizer state is gone, or fine-tuning.
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// cpu, or cuda:N with a dmgd built with `--features cuda`.
    #[arg(long, default_value = "cpu")]
    device: dmgd_kernels::DeviceName,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.open()?;

    // Load the data:
    let source = DataSource::resolve(&args.data.data, &args.data.options(), Split::Train, None)?;
    let all = source.load()?;
    if all.shape.height != all.shape.width {
        bail!("training images must be square, found {}", all.shape);
    }

    // Build or resume the trainer:
    let mut data = all.split_validation(args.holdout_per_class).0;
    let mut trainer = if args.resume {
        let t = Trainer::resume(&args.out, args.steps, args.checkpoint_every, &device)
            .with_context(|| format!("resuming from {}", args.out.display()))?;
        data = all.split_validation(t.config.holdout_per_class).0;
        if t.config.dataset_fingerprint != data.fingerprint() {
            bail!(
                "--resume: the training data differs from the data of the run in {}",
                args.out.display()
            );
        }
        t
    } else {
        if args.out.join(STATE_CONFIG_FILE).exists() {
            bail!(
                "{} already holds a run; pass --resume to continue it",
                args.out.display()
            );
        }
        let model = DitConfig::preset(
            &args.preset,
            data.shape.height,
            data.shape.channels,
            data.num_classes(),
        )
        .with_context(|| format!("known presets: {}", preset_names().join(", ")))?;
        let config = TrainConfig {
            model,
            batch_size: args.batch_size,
            steps: args.steps.unwrap_or(20_000),
            lr: args.lr,
            weight_decay: args.weight_decay,
            ema_decay: args.ema_decay,
            class_dropout_prob: args.class_dropout_prob,
            horizontal_flip: args.horizontal_flip,
            seed: args.seed,
            checkpoint_every: args.checkpoint_every.unwrap_or(200),
            snapshot_every: args.snapshot_every,
            holdout_per_class: args.holdout_per_class,
            dataset_fingerprint: data.fingerprint(),
            init: match &args.init {
                Some(path) => Some(InitCheckpoint {
                    path: path.display().to_string(),
                    sha256: dmgd_run::sha256_file(path)
                        .with_context(|| format!("--init {}", path.display()))?,
                }),
                None => None,
            },
        };
        let mut t = Trainer::new(config, &device)?;
        if let Some(path) = &args.init {
            t.init_from(path)
                .with_context(|| format!("--init {}", path.display()))?;
        }
        t.save(&args.out)?; // the resolved settings are in the run directory before work starts
        t
    };
    eprintln!(
        "{}: {} parameters, {} images of {}, step {} of {}, batch {}",
        trainer.config.model.preset,
        trainer.num_parameters(),
        data.len(),
        data.shape,
        trainer.step,
        trainer.config.steps,
        trainer.config.batch_size
    );

    // Train:
    let trainer_steps = trainer.config.steps;
    let bar = Bar::new("steps", trainer.config.steps, trainer.step);
    let batch = trainer.config.batch_size as f64;
    let mut loss_avg: Option<f32> = None;
    trainer.train(&data, &args.out, |r| {
        let avg = loss_avg.map_or(r.loss, |a| 0.98 * a + 0.02 * r.loss);
        loss_avg = Some(avg);
        let (loss, mse, vb, seconds) = (r.loss, r.mse, r.vb, r.seconds);
        bar.set(r.step, trainer_steps);
        bar.status(format!(
            "loss {loss:.4} (avg {avg:.4}, mse {mse:.4}, vb {vb:.4}) {:.1} img/s",
            batch / seconds
        ));
        if r.checkpointed || r.step % 50 == 0 {
            let checkpoint = if r.checkpointed { " checkpoint" } else { "" };
            bar.line(&format!(
                "step {} loss {loss:.5} loss_avg {avg:.5} {seconds:.2} s/step{checkpoint}",
                r.step
            ));
        }
    })?;
    bar.finish();
    eprintln!("EMA model in {}", args.out.display());
    Ok(())
}
