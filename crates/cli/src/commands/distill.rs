//! `dmgd distill`: real data -> latents -> k-means support -> guided sampling -> ImageFolder.

use crate::dataset::{DataArgs, DataSource};
use crate::manifest::{sha256_file, Manifest};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use dmgd_data::fashion_mnist::Split;
use dmgd_data::{class_list, ClassSource, ImageSet};
use dmgd_diffusion::autoencoder::{Autoencoder, EncodeMode, SdVae, VaeConfig, SD_VAE_FACTOR};
use dmgd_diffusion::dit::{Cfg, CfgChannels, Dit, DitConfig};
use dmgd_distill::codec::Codec;
use dmgd_distill::config::{ClipDenoised, DistillConfig, Method, NoiseLaw};
use dmgd_distill::pipeline::{self, Existing, Job, Progress};
use dmgd_distill::run_dir::{RunDir, IMAGES_DIR};
use dmgd_distill::shard::Shard;
use dmgd_distill::support_cache::{default_cache_dir, SupportCache};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Distill a labelled image set into IPC synthetic images per class.
///
/// With no arguments: DMGD on Fashion-MNIST with the shipped pixel-space DiT, 10 images per
/// class, into runs/distill-dmgd-ipc10. Every knob has the reference default; a TOML file
/// (--config) sets keys named like the flags; flags override the file.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// dmgd | dit (plain CFG sampling) | mgd3 (mode guidance) | random (real images).
    #[arg(long)]
    pub method: Option<String>,
    /// DMGD without Semantic Matching (the ablation "distribution matching only").
    #[arg(long)]
    pub no_semantic: bool,
    /// DMGD without Distribution Matching (the ablation "semantic matching only").
    #[arg(long)]
    pub no_distribution: bool,
    /// Images per class.
    #[arg(long)]
    pub ipc: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output directory (images/, latents/, manifest.json, grid.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Finish an interrupted run in --out (its output is identical to an uninterrupted run's).
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Replace this run's share of an existing --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Generate only shard i of n (0-based), e.g. `--shard 0/4`; see docs/SHARDING.md.
    #[arg(long, default_value = "0/1")]
    pub shard: Shard,
    /// TOML file of settings (keys as the flags, e.g. `rho = 0.05`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// DiT checkpoint: a `dmgd pretrain` directory, or a .pt / .safetensors state dict
    /// (e.g. DiT-XL-2-256x256.pt). Default: the shipped Fashion-MNIST model.
    #[arg(long)]
    pub dit: Option<PathBuf>,
    /// SD VAE (diffusers AutoencoderKL .safetensors, e.g. sd-vae-ft-mse). Absent: pixel space.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    /// How real images become latents for the support points: a sample of the VAE encoder's
    /// Gaussian (as the reference's latent extraction) or its mean.
    #[arg(long, value_enum, default_value = "sample")]
    pub encode: EncodeArg,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Where k-means supports are cached (default: ~/.cache/dmgd).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub knobs: Knobs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum EncodeArg {
    Sample,
    Mean,
}

/// The method's knobs (DESIGN.md §5–7); unset ones come from --config, then the defaults.
#[derive(clap::Args, Debug, Default)]
pub struct Knobs {
    /// Respaced sampling steps [50].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Classifier-free guidance scale [4.0].
    #[arg(long)]
    pub cfg_scale: Option<f64>,
    /// first-three (the reference sampler) or all-eps [first-three].
    #[arg(long)]
    pub cfg_channels: Option<String>,
    /// Clamp x0_hat to [-1, 1] each step: auto (pixel space yes, VAE latents no), yes, no [auto].
    #[arg(long)]
    pub clip_denoised: Option<String>,
    /// Classes per DiT batch [10].
    #[arg(long)]
    pub class_batch: Option<usize>,
    /// Soft labels: exploration above this timestep [900].
    #[arg(long)]
    pub t_upper: Option<usize>,
    /// Soft labels: refinement below this timestep [500].
    #[arg(long)]
    pub t_lower: Option<usize>,
    /// Soft labels: noise weight [0.06].
    #[arg(long)]
    pub beta_n: Option<f64>,
    /// Soft labels: other-class weight [0.01].
    #[arg(long)]
    pub beta_s: Option<f64>,
    /// Soft-label noise law: uniform (the release) or gaussian (the paper's text) [uniform].
    #[arg(long)]
    pub noise: Option<String>,
    /// k-means support points K [10].
    #[arg(long)]
    pub support_points: Option<usize>,
    /// k-means iterations at most [300].
    #[arg(long)]
    pub kmeans_iterations: Option<usize>,
    /// OT guidance scale rho [0.5].
    #[arg(long)]
    pub rho: Option<f64>,
    /// Sinkhorn entropic regularisation [0.1].
    #[arg(long)]
    pub sinkhorn_eps: Option<f64>,
    /// Sinkhorn iterations [5].
    #[arg(long)]
    pub sinkhorn_iterations: Option<usize>,
    /// Log-domain Sinkhorn (for small eps).
    #[arg(long)]
    pub sinkhorn_log_domain: bool,
    /// OT guidance window of respaced indices, of 50 steps [30,45].
    #[arg(long, value_delimiter = ',', num_args = 2)]
    pub ot_window: Option<Vec<usize>>,
    /// mgd3: pull strength lambda [0.1].
    #[arg(long)]
    pub mode_lambda: Option<f64>,
    /// mgd3: guidance while the respaced index is above this, of 50 steps [25].
    #[arg(long)]
    pub mode_stop: Option<usize>,
}

/// Defaults <- TOML file <- flags.
fn resolve_config(args: &Args) -> Result<DistillConfig> {
    let mut c = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("in settings file {}", path.display()))?
        }
        None => DistillConfig::default(),
    };
    let k = &args.knobs;
    if let Some(m) = &args.method {
        c.method = serde_plain(m, "--method", "dmgd, dit, mgd3 or random")?;
    }
    if args.no_semantic {
        c.semantic = false;
    }
    if args.no_distribution {
        c.distribution = false;
    }
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = k.$field.clone() { c.$field = v; } )* };
    }
    set!(
        steps,
        cfg_scale,
        class_batch,
        t_upper,
        t_lower,
        beta_n,
        beta_s,
        support_points,
        kmeans_iterations,
        rho,
        sinkhorn_eps,
        sinkhorn_iterations,
        mode_lambda,
        mode_stop
    );
    if let Some(v) = args.ipc {
        c.ipc = v;
    }
    if let Some(v) = args.seed {
        c.seed = v;
    }
    if let Some(v) = &k.cfg_channels {
        c.cfg_channels = serde_plain::<CfgChannels>(v, "--cfg-channels", "first-three or all-eps")?;
    }
    if let Some(v) = &k.clip_denoised {
        c.clip_denoised = serde_plain::<ClipDenoised>(v, "--clip-denoised", "auto, yes or no")?;
    }
    if let Some(v) = &k.noise {
        c.noise = serde_plain::<NoiseLaw>(v, "--noise", "uniform or gaussian")?;
    }
    if k.sinkhorn_log_domain {
        c.sinkhorn_log_domain = true;
    }
    if let Some(w) = &k.ot_window {
        c.ot_window = [w[0], w[1]];
    }
    c.validate()
        .map_err(|e| anyhow::anyhow!("invalid setting {e}"))?;
    Ok(c)
}

/// Parses a flag value through the type's serde names, so flags and TOML agree.
fn serde_plain<T: serde::de::DeserializeOwned>(
    value: &str,
    flag: &str,
    expected: &str,
) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| anyhow::anyhow!("{flag} `{value}`: expected {expected}"))
}

#[derive(serde::Serialize)]
struct DistillManifest<'a> {
    config: &'a DistillConfig,
    /// Keys of `config` this method never reads.
    unused_keys: Vec<&'static str>,
    shard: String,
    device: String,
    dit: Option<ModelRecord>,
    vae: Option<ModelRecord>,
    data: String,
    dataset_fingerprint: String,
    model_labels: Vec<usize>,
    #[serde(flatten)]
    outcome: Option<&'a pipeline::Outcome>,
    /// Real images copied (method random): indices into the training set, per class.
    source_indices: Option<Vec<Vec<usize>>>,
    seconds: f64,
}

#[derive(serde::Serialize)]
struct ModelRecord {
    path: String,
    sha256: String,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let config = resolve_config(&args)?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&config));
    let device = super::sample::parse_device(&args.device)?;
    if config.method == Method::Random {
        let source = DataSource::resolve(&args.data.data, &args.data, Split::Train, None)?;
        let real = source.load()?;
        return copy_random(&args, &config, &out, &source, &real, started);
    }

    let (dit, dit_path) = load_dit(args.dit.as_deref(), &device)?;
    let (codec, vae_record) = match &args.vae {
        None => (Codec::pixel(), None),
        Some(path) => {
            let vae = SdVae::load(path, &VaeConfig::sd_vae(), &device)
                .with_context(|| format!("loading the SD VAE {}", path.display()))?;
            let sha256 = sha256_file(path)?;
            let codec = Codec {
                autoencoder: Autoencoder::SdVae(Box::new(vae)),
                id: format!("sd-vae:{sha256}"),
                encode_mode: match args.encode {
                    EncodeArg::Mean => EncodeMode::Mean,
                    EncodeArg::Sample => EncodeMode::Sample,
                },
            };
            let record = ModelRecord {
                path: path.display().to_string(),
                sha256,
            };
            (codec, Some(record))
        }
    };
    // Real images enter the autoencoder at the size its latents match the DiT's input
    // (ADM center crop), unless --image-size says otherwise.
    let mut data_args = args.data.clone();
    if data_args.image_size.is_none() && args.vae.is_some() {
        data_args.image_size = Some(dit.config.input_size * SD_VAE_FACTOR);
    }
    let source = DataSource::resolve(&data_args.data, &data_args, Split::Train, None)?;
    println!("reading {}", source.describe());
    let real = source.open_by_class()?;
    let model_labels = model_labels(real.as_ref(), &dit.config)?;
    let cache = SupportCache {
        dir: args.cache_dir.clone().or_else(default_cache_dir),
        seed: config.seed,
    };
    let existing = if args.resume {
        Existing::Resume
    } else if args.overwrite {
        Existing::Overwrite
    } else {
        Existing::Refuse
    };
    let job = Job {
        real: real.as_ref(),
        model_labels: &model_labels,
        dit: &dit,
        codec: &codec,
        config: &config,
        cfg: Cfg {
            scale: config.cfg_scale,
            channels: config.cfg_channels,
        },
        shard: args.shard,
        cache: &cache,
        out: &out,
        existing,
    };

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} images, {per_sec}, eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let outcome = pipeline::run(&job, &mut |p| match p {
        Progress::Preparing { class } => bar.set_message(format!("support of {class}")),
        Progress::Image { done, total } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(String::new());
        }
    })?;
    bar.finish_and_clear();

    let run_dir = RunDir::new(&out, args.shard);
    let images = read_outputs(&out, &outcome.classes)?;
    dmgd_data::grid::write_class_grid(&images, config.ipc, &run_dir.grid_path())?;
    let manifest = DistillManifest {
        config: &config,
        unused_keys: config.unused_keys(),
        shard: args.shard.to_string(),
        device: args.device.clone(),
        dit: Some(ModelRecord {
            sha256: sha256_file(&dit_path)?,
            path: dit_path.display().to_string(),
        }),
        vae: vae_record,
        data: source.describe(),
        dataset_fingerprint: real.fingerprint(),
        model_labels,
        outcome: Some(&outcome),
        source_indices: None,
        seconds: started.elapsed().as_secs_f64(),
    };
    Manifest::new(manifest).write_to(&run_dir.manifest_path())?;
    let generated = outcome.timings.images_generated;
    println!(
        "{} images ({} generated now, {:.2} s per image) in {}",
        outcome.images.len(),
        generated,
        outcome.timings.sampling_seconds / generated.max(1) as f64,
        out.join(IMAGES_DIR).display()
    );
    println!("picture: {}", run_dir.grid_path().display());
    println!("evaluate: dmgd eval --train {}", out.display());
    Ok(())
}

/// The ImageFolder of this shard's classes, read back (for the grid).
fn read_outputs(out: &Path, classes: &[String]) -> Result<ImageSet> {
    let options = dmgd_data::image_folder::ReadOptions {
        classes: Some(classes.to_vec()),
        ..Default::default()
    };
    Ok(dmgd_data::image_folder::read(
        &out.join(IMAGES_DIR),
        &options,
    )?)
}

/// `--method random`: IPC real images per class, same layout and manifest.
fn copy_random(
    args: &Args,
    config: &DistillConfig,
    out: &Path,
    source: &DataSource,
    real: &ImageSet,
    started: Instant,
) -> Result<()> {
    if args.shard != Shard::WHOLE {
        bail!("--shard applies to generative methods; `random` copies real images in seconds");
    }
    let run_dir = RunDir::new(out, Shard::WHOLE);
    let picks = super::select::select(
        real,
        dmgd_distill::coreset::CoresetMethod::Random,
        config.ipc,
        config.seed,
    )?;
    let subset = real.subset(&picks.concat());
    let staged = dmgd_data::atomic::StagedDir::new(out, args.overwrite)?;
    dmgd_data::image_folder::write_into(&subset, &staged.path().join(IMAGES_DIR))?;
    let staged_run = RunDir::new(staged.path(), Shard::WHOLE);
    dmgd_data::grid::write_class_grid(&subset, config.ipc, &staged_run.grid_path())?;
    let manifest = DistillManifest {
        config,
        unused_keys: config.unused_keys(),
        shard: Shard::WHOLE.to_string(),
        device: "cpu".into(),
        dit: None,
        vae: None,
        data: source.describe(),
        dataset_fingerprint: real.fingerprint(),
        model_labels: (0..real.num_classes()).collect(),
        outcome: None,
        source_indices: Some(picks),
        seconds: started.elapsed().as_secs_f64(),
    };
    Manifest::new(manifest).write_to(&staged_run.manifest_path())?;
    staged.commit()?;
    println!(
        "{} real images in {}",
        subset.len(),
        out.join(IMAGES_DIR).display()
    );
    println!("picture: {}", run_dir.grid_path().display());
    Ok(())
}

fn default_out(config: &DistillConfig) -> PathBuf {
    let method = match (config.method, config.semantic, config.distribution) {
        (Method::Dmgd, true, true) => "dmgd".to_string(),
        (Method::Dmgd, false, _) => "dmgd-no-semantic".to_string(),
        (Method::Dmgd, _, false) => "dmgd-no-distribution".to_string(),
        (m, _, _) => format!("{m:?}").to_lowercase(),
    };
    PathBuf::from("runs").join(format!("distill-{method}-ipc{}", config.ipc))
}

/// The DiT label of each dataset class: a model conditioned on ImageNet-1K (1000 classes) and
/// data whose class folders are ImageNet wnids (ImageWoof, ImageNette, ...) use ImageNet labels;
/// otherwise the model must know exactly the data's classes, in the data's order.
fn model_labels(real: &dyn ClassSource, dit: &DitConfig) -> Result<Vec<usize>> {
    let imagenet: Option<Vec<usize>> = real
        .class_names()
        .iter()
        .map(|n| class_list::imagenet1k_label(n))
        .collect();
    match imagenet {
        Some(labels) if dit.num_classes == 1000 => Ok(labels),
        _ if dit.num_classes == real.num_classes() => Ok((0..real.num_classes()).collect()),
        _ => bail!(
            "the DiT is conditioned on {} classes but the data has {} classes ({}...) that are not all ImageNet-1K wnids",
            dit.num_classes,
            real.num_classes(),
            real.class_names()[0]
        ),
    }
}

/// The shipped Fashion-MNIST model, in the repository this binary was built from.
pub fn default_model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/fashion-mnist-dit")
}

/// Loads a DiT strictly: a `dmgd pretrain` directory (its EMA weights and model.json) or a
/// .pt / .safetensors state dict (configuration from model.json beside it, else inferred).
fn load_dit(path: Option<&Path>, device: &Device) -> Result<(Dit, PathBuf)> {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(default_model_dir);
    let weights = if path.is_dir() {
        path.join(dmgd_diffusion::train::EMA_FILE)
    } else {
        path
    };
    let dit = dmgd_diffusion::checkpoint::load_dit(&weights, None, device)
        .with_context(|| format!("loading DiT checkpoint {}", weights.display()))?;
    Ok((dit, weights))
}
