//! `dmgd sample`: plain class-conditional CFG sampling from a DiT, no real data needed. It is
//! `distill --method dit` through the same loop (same seeds, same images), for models whose
//! training data are not at hand and for class subsets (`--labels`).

use super::knobs::SamplingKnobs;
use anyhow::Result;
use dmgd_diffusion::autoencoder::EncodeMode;
use dmgd_distill::config::{DistillConfig, Method};
use dmgd_distill::models::Models;
use dmgd_distill::pipeline::{Existing, Job};
use dmgd_distill::run_dir::IMAGES_DIR;
use dmgd_distill::shard::Shard;
use dmgd_distill::support_cache::SupportCache;
use dmgd_kernels::{DeviceName, Precision};
use std::path::PathBuf;

/// Plain class-conditional sampling from a DiT (the `dit` baseline), no real data needed.
///
/// The same sampling loop, seeds and output layout as `dmgd distill --method dit`: image i of
/// class c comes from (seed, c, i), so `sample` and `distill --method dit` with the same
/// settings give the same images. Writes `<out>/images/<class>/<index>.png`, `manifest.json`
/// and `grid.png`. Default: the shipped Fashion-MNIST model.
///
/// Example:
///   dmgd sample --ipc 100 --labels 0,1,2
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Output directory. Default: derived from the settings, under runs/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Finish an interrupted run in --out (refused unless every setting equals the stored one).
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    #[arg(long)]
    overwrite: bool,
    /// DiT checkpoint: a `dmgd pretrain` directory or a .safetensors / .pt file.
    /// Default: the shipped Fashion-MNIST model.
    #[arg(long, alias = "model")]
    dit: Option<PathBuf>,
    /// The entry of a training checkpoint ({"model", "ema", "opt", "args"}, as DiT's train.py
    /// saves it) to load: `ema` (the default) or `model`.
    #[arg(long)]
    dit_entry: Option<String>,
    /// SD VAE weights (diffusers AutoencoderKL) for latent models; none = pixel space.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Class names in label order: fashion-mnist, imagenette, imagewoof, imagenet1k or a file;
    /// default: fashion-mnist for 10-class 1-channel models, else class-<k>.
    #[arg(long)]
    class_names: Option<String>,
    /// Only these labels (comma-separated); default every class.
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<usize>>,
    #[command(flatten)]
    knobs: SamplingKnobs,
    /// cpu, or cuda:N with a dmgd built with `--features cuda`.
    #[arg(long, default_value = "cpu")]
    device: DeviceName,
    /// The DiT's matrix products on CUDA: f32, or tf32 (as DiT's official sample.py).
    #[arg(long, default_value = "f32")]
    precision: Precision,
}

pub fn run(args: Args) -> Result<()> {
    let plain = DistillConfig {
        method: Method::Dit,
        ..DistillConfig::default()
    };
    let config = args.knobs.resolve(None, plain)?;
    let device = args.device.open()?;
    args.precision.apply(args.device)?;
    let models = Models::load(
        args.dit.as_deref(),
        args.dit_entry.as_deref(),
        args.vae.as_deref(),
        EncodeMode::Mean,
        &device,
    )?;
    let mc = &models.dit.config;

    let class_names: Vec<String> = match (&args.class_names, mc.num_classes, mc.in_channels) {
        (Some(name), _, _) => dmgd_data::class_list::resolve(name)?,
        (None, 10, 1) => dmgd_data::class_list::resolve("fashion-mnist")?,
        (None, n, _) => (0..n).map(|k| format!("class-{k:04}")).collect(),
    };
    anyhow::ensure!(
        class_names.len() == mc.num_classes,
        "--class-names: {} names for a model with {} classes",
        class_names.len(),
        mc.num_classes
    );
    if let Some(bad) = args.labels.iter().flatten().find(|&&y| y >= mc.num_classes) {
        anyhow::bail!(
            "--labels: label {bad} out of range: the model has {} classes",
            mc.num_classes
        );
    }

    let mut spec = models.spec_for_sampling(config, &class_names, args.labels.as_deref());
    (spec.device, spec.precision) = (args.device, args.precision);
    let out = args.out.clone().unwrap_or_else(|| {
        let hash = dmgd_run::spec_hash(&spec.identity());
        PathBuf::from("runs").join(format!("sample-ipc{}-{hash}", spec.config.ipc))
    });
    let cache = SupportCache {
        dir: None,
        seed: spec.config.seed,
    };
    let job = Job {
        real: None,
        class_names: &class_names,
        only_classes: args.labels.as_deref(),
        dit: &models.dit,
        codec: &models.codec,
        spec: &spec,
        cfg: spec.config.cfg(),
        shard: Shard::WHOLE,
        cache: &cache,
        out: &out,
        existing: Existing::from_flags(args.resume, args.overwrite),
    };

    let outcome = crate::progress::run_pipeline(&job, "sample")?;
    let (n, seconds) = (outcome.images.len(), outcome.seconds);
    println!(
        "{n} images in {seconds:.1} s -> {}",
        out.join(IMAGES_DIR).display()
    );
    Ok(())
}
