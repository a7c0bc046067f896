//! `dmgd sample`: plain class-conditional CFG sampling from a DiT, no real data needed. It is
//! `distill --method dit` through the same loop (same seeds, same images), for models whose
//! training data are not at hand and for class subsets (`--labels`).

use crate::device::DeviceArg;
use crate::settings::parse_named;
use anyhow::{Context, Result};
use dmgd_diffusion::autoencoder::{Autoencoder, SdVae, VaeConfig};
use dmgd_diffusion::dit::Cfg;
use dmgd_distill::codec::Codec;
use dmgd_distill::config::{DistillConfig, Method};
use dmgd_distill::pipeline::{Existing, Job};
use dmgd_distill::run_dir::IMAGES_DIR;
use dmgd_distill::shard::Shard;
use dmgd_distill::spec::{DataRecord, DistillSpec, ModelRecord};
use dmgd_distill::support_cache::SupportCache;
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
    /// Images per class.
    #[arg(long)]
    ipc: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Respaced sampling steps.
    #[arg(long)]
    steps: Option<usize>,
    /// ddpm (the reference) or ddim (eta 0).
    #[arg(long)]
    sampler: Option<String>,
    /// Classifier-free guidance scale.
    #[arg(long)]
    cfg_scale: Option<f64>,
    /// first-three (the reference) or all-eps.
    #[arg(long)]
    cfg_channels: Option<String>,
    /// Clamp x0_hat to [-1, 1] each step: auto (pixel space yes, VAE latents no), yes, no.
    #[arg(long)]
    clip_denoised: Option<String>,
    /// Classes per DiT batch.
    #[arg(long)]
    class_batch: Option<usize>,
    #[arg(long, default_value = "cpu")]
    device: DeviceArg,
}

impl Args {
    fn config(&self) -> Result<DistillConfig> {
        let mut c = DistillConfig {
            method: Method::Dit,
            ..DistillConfig::default()
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field.clone() { c.$field = v; } )* };
        }
        set!(ipc, seed, steps, cfg_scale, class_batch);
        if let Some(v) = &self.sampler {
            c.sampler = parse_named(v, "--sampler")?;
        }
        if let Some(v) = &self.cfg_channels {
            c.cfg_channels = parse_named(v, "--cfg-channels")?;
        }
        if let Some(v) = &self.clip_denoised {
            c.clip_denoised = parse_named(v, "--clip-denoised")?;
        }
        c.validate()
            .map_err(|e| anyhow::anyhow!("invalid setting {e} (the flag of that name)"))?;
        Ok(c)
    }
}

pub fn run(args: Args) -> Result<()> {
    let config = args.config()?;
    let device = args.device.open()?;

    // Load the models:
    let dit_path = dmgd_diffusion::shipped::resolve_dit_weights(args.dit.as_deref())?;
    let dit = dmgd_diffusion::checkpoint::load_dit(&dit_path, None, &device)
        .with_context(|| format!("loading the DiT {}", dit_path.display()))?;
    let mc = dit.config.clone();
    let (codec, vae) = match &args.vae {
        None => (Codec::pixel(), None),
        Some(path) => {
            let vae = SdVae::load(path, &VaeConfig::sd_vae(), &device)
                .with_context(|| format!("loading the SD VAE {}", path.display()))?;
            let record = ModelRecord::of(path)?;
            let codec = Codec {
                autoencoder: Autoencoder::SdVae(Box::new(vae)),
                id: format!("sd-vae:{}", record.sha256),
                encode_mode: dmgd_diffusion::autoencoder::EncodeMode::Mean,
            };
            (codec, Some(record))
        }
    };

    // The classes:
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

    let spec = DistillSpec {
        config,
        dit: Some(ModelRecord::of(&dit_path)?),
        vae,
        encode: "none".into(),
        data: DataRecord {
            description: "none: plain sampling".into(),
            // The classes and the subset sampled: a run of other labels is another run.
            fingerprint: format!(
                "classes:{}",
                dmgd_run::spec_hash(&(&class_names, &args.labels))
            ),
        },
        model_labels: (0..mc.num_classes).collect(),
        shards: 1,
    };
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
        dit: &dit,
        codec: &codec,
        spec: &spec,
        cfg: Cfg {
            scale: spec.config.cfg_scale,
            channels: spec.config.cfg_channels,
        },
        shard: Shard::WHOLE,
        cache: &cache,
        out: &out,
        existing: Existing::from_flags(args.resume, args.overwrite),
    };

    // Sample:
    let outcome = crate::progress::run_pipeline(&job, "sample")?;
    println!(
        "{} images in {:.1} s -> {}",
        outcome.images.len(),
        outcome.seconds,
        out.join(IMAGES_DIR).display()
    );
    Ok(())
}
