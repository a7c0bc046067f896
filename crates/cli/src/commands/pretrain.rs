//! `dmgd pretrain`: flags -> `PretrainSettings` -> `pretrain::open` -> `Trainer::train`.

use crate::dataset::DataArgs;
use crate::progress::Bar;
use anyhow::Result;
use dmgd_data::fashion_mnist::Split;
use dmgd_data::DataSource;
use dmgd_diffusion::pretrain::{self, PretrainSettings, Start};
use dmgd_diffusion::DiffusionError;
use dmgd_run::flags::Knobs;
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
///     --no-horizontal-flip
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
    #[command(flatten)]
    knobs: Knobs<PretrainSettings>,
}

pub fn run(args: Args) -> Result<()> {
    let settings = args.knobs.resolve(None)?;
    let given: Vec<&str> = args.knobs.given().collect();
    let start = match args.resume {
        true => Start::resume(&settings, &given).map_err(|fixed| {
            anyhow::anyhow!("--resume keeps the run's settings; only --steps and --checkpoint-every may be given, not --{}", fixed.join(", --"))
        })?,
        false => Start::Fresh {
            settings: &settings,
            init: args.init.as_deref(),
        },
    };
    let device = args.device.open()?;
    let source = DataSource::resolve(&args.data.data, &args.data.options(), Split::Train, None)?;
    let all = source.load()?;
    let (mut trainer, data) =
        pretrain::open(&args.out, start, &all, &device).map_err(|e| match &e {
            DiffusionError::RunExists { .. } => {
                anyhow::Error::new(e).context("pass --resume to continue it, or another --out")
            }
            _ if args.init.is_some() => {
                let init = args.init.as_ref().expect("given").display();
                anyhow::Error::new(e).context(format!("--init {init}"))
            }
            _ => anyhow::Error::new(e).context(format!("run directory {}", args.out.display())),
        })?;
    let c = &trainer.config;
    eprintln!(
        "{}: {} parameters, {} images of {}, step {} of {}, batch {}",
        c.model.preset,
        trainer.num_parameters(),
        data.len(),
        data.shape,
        trainer.step,
        c.steps,
        c.batch_size
    );

    let (steps, batch) = (c.steps, c.batch_size as f64);
    let bar = Bar::new("steps", steps, trainer.step);
    let mut loss_avg: Option<f32> = None;
    trainer.train(&data, &args.out, |r| {
        let avg = loss_avg.map_or(r.loss, |a| 0.98 * a + 0.02 * r.loss);
        loss_avg = Some(avg);
        let (loss, mse, vb, seconds) = (r.loss, r.mse, r.vb, r.seconds);
        bar.set(r.step, steps);
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
