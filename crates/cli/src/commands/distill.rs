//! `dmgd distill`: flags -> a `DistillSpec` -> `pipeline::run` (or `random_subset::write`) -> print.

use crate::dataset::DataArgs;
use crate::model_args::ModelArgs;
use crate::output_args::OutputArgs;
use anyhow::Result;
use dmgd_data::fashion_mnist::Split;
use dmgd_data::{DataError, DataSource};
use dmgd_diffusion::autoencoder::EncodeMode;
use dmgd_distill::config::DistillConfig;
use dmgd_distill::config::Method;
use dmgd_distill::pipeline::Job;
use dmgd_distill::random_subset::RandomError;
use dmgd_distill::run_dir::{RunDir, IMAGES_DIR};
use dmgd_distill::shard::Shard;
use dmgd_distill::spec::{DataRecord, DistillSpec};
use dmgd_distill::support_cache::{default_cache_dir, SupportCache};
use dmgd_run::flags::Knobs;
use std::path::PathBuf;

/// Distill a labelled image set into IPC synthetic images per class.
///
/// With no arguments: DMGD on Fashion-MNIST with the shipped pixel-space DiT, 10 images per
/// class, into runs/distill-dmgd-ipc10. Every knob has the reference default (shown in
/// brackets); a TOML file (--config) sets keys named like the flags; flags override the file.
/// Writes images/, latents/, manifest.json and grid.png; a run with any other setting, model
/// or data gets a default folder of its own (the name ends in its settings' hash).
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Generate only shard i of n (0-based), e.g. `--shard 0/4`; see docs/SHARDING.md.
    #[arg(long, default_value = "0/1")]
    pub shard: Shard,
    /// TOML file of settings (keys named as the settings' flags, e.g. `rho = 0.05`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the resolved settings as TOML (a file for --config) and stop.
    #[arg(long)]
    pub print_config: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    /// How real images become latents for the support points: a sample of the VAE encoder's
    /// Gaussian (as the reference's latent extraction) or its mean.
    #[arg(long, value_enum, default_value = "sample")]
    pub encode: EncodeArg,
    /// Where k-means supports are cached (default: $XDG_CACHE_HOME/dmgd or ~/.cache/dmgd).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub knobs: Knobs<DistillConfig>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum EncodeArg {
    Sample,
    Mean,
}

pub fn run(args: Args) -> Result<()> {
    let config = args.knobs.resolve(args.config.as_deref())?;
    if args.print_config {
        print!("{}", toml::to_string(&config)?);
        return Ok(());
    }
    let default_input = args.model.is_default() && args.data.is_default();
    let mut options = args.data.options();

    if config.method == Method::Random {
        anyhow::ensure!(
            args.shard == Shard::WHOLE,
            "--shard applies to generative methods; `random` copies real images in seconds"
        );
        let source = DataSource::resolve(&args.data.data, &options, Split::Train, None)?;
        let real = source.load()?;
        let data = DataRecord::of(&source, real.fingerprint());
        let spec = DistillSpec::random_subset(config, data, real.num_classes());
        let out = args.output.dir(|| spec.default_out(default_input));
        dmgd_distill::random_subset::write(&real, &spec, &out, args.output.overwrite).map_err(
            |e| match e {
                RandomError::Data(DataError::OutputExists { .. }) => anyhow::Error::new(e)
                    .context("pass --overwrite to replace it, or another --out"),
                e => e.into(),
            },
        )?;
        let images = real.num_classes() * spec.config.ipc;
        println!("{images} real images in {}", out.join(IMAGES_DIR).display());
        println!("picture: {}", out.join("grid.png").display());
        return Ok(());
    }

    let encode = match args.encode {
        EncodeArg::Mean => EncodeMode::Mean,
        EncodeArg::Sample => EncodeMode::Sample,
    };
    let models = args.model.load(encode)?;
    // Open the data (a folder is listed and its headers checked; a class is decoded when its
    // support is computed), sized for the models (ADM center crop) unless --image-size is given.
    options.image_size = options.image_size.or(models.real_image_size());
    let source = DataSource::resolve(&args.data.data, &options, Split::Train, None)?;
    println!("reading {}", source.describe());
    let real = source.open_by_class()?;
    let data = DataRecord::of(&source, real.fingerprint());
    let spec = models.spec_for_data(config, data, real.class_names(), args.shard.count)?;
    let out = args.output.dir(|| spec.default_out(default_input));
    let cache = SupportCache {
        dir: args.cache_dir.clone().or_else(default_cache_dir),
        seed: spec.config.seed,
    };
    let job = Job {
        real: Some(real.as_ref()),
        class_names: real.class_names(),
        only_classes: None,
        dit: &models.dit,
        codec: &models.codec,
        spec: &spec,
        cfg: spec.config.cfg(),
        shard: args.shard,
        cache: &cache,
        out: &out,
        existing: args.output.existing(),
    };

    let outcome = crate::progress::run_pipeline(&job, "distill")?;
    let t = &outcome.timings;
    println!(
        "{} images ({} generated now, {:.2} s per image) in {}",
        outcome.images.len(),
        t.images_generated,
        t.sampling_seconds / t.images_generated.max(1) as f64,
        out.join(IMAGES_DIR).display()
    );
    println!(
        "picture: {}",
        RunDir::new(&out, args.shard).grid_path().display()
    );
    println!("evaluate: dmgd eval --train {}", out.display());
    Ok(())
}
