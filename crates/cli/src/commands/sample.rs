//! `dmgd sample`: plain class-conditional CFG sampling from a DiT into an ImageFolder
//! (`<class>/<index>.png`), with `manifest.json` and `grid.png` (the `dit` baseline).

use crate::manifest::{sha256_file, Manifest};
use anyhow::{bail, Context, Result};
use dmgd_data::{image_folder, pixels::model_to_u8, ImageSet, ImageShape};
use dmgd_diffusion::autoencoder::{Autoencoder, SdVae, VaeConfig};
use dmgd_diffusion::checkpoint::load_dit;
use dmgd_diffusion::dit::{Cfg, CfgChannels};
use dmgd_diffusion::gaussian::GaussianDiffusion;
use dmgd_diffusion::sampler::{sample, Method, SampleOptions};
use dmgd_diffusion::train::EMA_FILE;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Images per row of `grid.png` at most.
const GRID_COLUMNS: usize = 10;

/// Plain class-conditional sampling from a DiT into an ImageFolder (the `dit` baseline).
///
/// Writes `<out>/<class>/<index>.png`, `manifest.json` and `grid.png`. Default: the shipped
/// Fashion-MNIST model, 10 images per class, 50 DDPM steps, CFG 4 on the first three channels.
///
/// Example:
///   dmgd sample --out runs/fmnist-dit-ipc10 --ipc 10
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Output ImageFolder (refused if it exists, unless --overwrite).
    #[arg(long)]
    out: PathBuf,
    /// DiT checkpoint: a `dmgd pretrain` directory (its ema.safetensors) or a .safetensors /
    /// .pt file (as `distill --dit`). Default: the shipped Fashion-MNIST model.
    #[arg(long, alias = "model")]
    dit: Option<PathBuf>,
    /// SD VAE weights (diffusers AutoencoderKL) for latent models; none = pixel space.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Images per class.
    #[arg(long, default_value_t = 10)]
    ipc: usize,
    /// Class names in label order: fashion-mnist, imagenette, imagewoof, imagenet1k or a file;
    /// default: fashion-mnist for 10-class 1-channel models, else class-<k>.
    #[arg(long)]
    class_names: Option<String>,
    /// Only these labels (comma-separated); default every class.
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<usize>>,
    /// Respaced sampling steps (`space_timesteps(1000, steps)`, e.g. 50 or ddim50).
    #[arg(long, default_value = "50")]
    steps: String,
    #[arg(long, default_value_t = 4.0)]
    cfg_scale: f64,
    /// first-three (reference) or all-eps.
    #[arg(long, default_value = "first-three")]
    cfg_channels: String,
    /// ddpm (reference) or ddim (eta 0).
    #[arg(long, default_value = "ddpm")]
    sampler: String,
    /// Clamp x0_hat to [-1, 1] at every step: auto = yes in pixel space (IDDPM/ADM), no for
    /// latent models (DiT reference).
    #[arg(long, default_value = "auto")]
    clip_denoised: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per model batch.
    #[arg(long, default_value_t = 25)]
    batch_size: usize,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long)]
    overwrite: bool,
}

#[derive(serde::Serialize)]
struct SampleManifest {
    model: PathBuf,
    model_sha256: String,
    model_config: dmgd_diffusion::dit::DitConfig,
    vae: Option<PathBuf>,
    vae_sha256: Option<String>,
    ipc: usize,
    labels: Vec<usize>,
    class_names: Vec<String>,
    steps: String,
    cfg: Cfg,
    sampler: Method,
    clip_denoised: bool,
    seed: u64,
    /// How noise is drawn: one ChaCha8 stream per class (stream = label), batches in order.
    seeding: &'static str,
    batch_size: usize,
    device: String,
    seconds_total: f64,
    seconds_per_image: f64,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let device = parse_device(&args.device)?;

    // Load model:
    let model = args
        .dit
        .clone()
        .unwrap_or_else(super::distill::default_model_dir);
    let weights = if model.is_dir() {
        model.join(EMA_FILE)
    } else {
        model
    };
    let dit = load_dit(&weights, None, &device)
        .with_context(|| format!("loading the DiT {}", weights.display()))?;
    let mc = dit.config.clone();
    let autoencoder = match &args.vae {
        None => Autoencoder::Pixel,
        Some(path) => {
            Autoencoder::SdVae(Box::new(SdVae::load(path, &VaeConfig::sd_vae(), &device)?))
        }
    };
    let image_channels = match &autoencoder {
        Autoencoder::Pixel => mc.in_channels,
        Autoencoder::SdVae(v) => v.config.in_channels,
    };
    if image_channels != 1 && image_channels != 3 {
        bail!(
            "{} has {image_channels} channels: images need 1 or 3 (latent model without --vae?)",
            weights.display()
        );
    }
    let class_names: Vec<String> = match (&args.class_names, mc.num_classes, mc.in_channels) {
        (Some(name), _, _) => dmgd_data::class_list::resolve(name)?,
        (None, 10, 1) => dmgd_data::class_list::resolve("fashion-mnist")?,
        (None, n, _) => (0..n).map(|k| format!("class-{k:04}")).collect(),
    };
    if class_names.len() != mc.num_classes {
        bail!(
            "{} class names for a model with {} classes",
            class_names.len(),
            mc.num_classes
        );
    }
    let labels = args
        .labels
        .clone()
        .unwrap_or_else(|| (0..mc.num_classes).collect());
    if let Some(&bad) = labels.iter().find(|&&y| y >= mc.num_classes) {
        bail!(
            "label {bad} out of range: the model has {} classes",
            mc.num_classes
        );
    }
    let cfg = Cfg {
        scale: args.cfg_scale,
        channels: match args.cfg_channels.as_str() {
            "first-three" => CfgChannels::FirstThree,
            "all-eps" => CfgChannels::AllEps,
            other => bail!("--cfg-channels {other:?}: expected first-three or all-eps"),
        },
    };
    let method = match args.sampler.as_str() {
        "ddpm" => Method::Ddpm,
        "ddim" => Method::Ddim { eta: 0.0 },
        other => bail!("--sampler {other:?}: expected ddpm or ddim"),
    };
    let clip_denoised = match args.clip_denoised.as_str() {
        "auto" => matches!(autoencoder, Autoencoder::Pixel),
        "yes" => true,
        "no" => false,
        other => bail!("--clip-denoised {other:?}: expected auto, yes or no"),
    };
    let options = SampleOptions {
        cfg,
        method,
        clip_denoised,
    };
    let diffusion = GaussianDiffusion::new(&args.steps)?;

    // Refused before the sampling, not after it.
    if args.out.exists() && !args.overwrite {
        return Err(dmgd_data::DataError::OutputExists {
            path: args.out.clone(),
        }
        .into());
    }

    // Sample images:
    let bar = indicatif::ProgressBar::new((labels.len() * args.ipc) as u64);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} images {msg}",
    )?);
    let mut shape: Option<ImageShape> = None;
    let mut pixels = Vec::new();
    let mut image_labels = Vec::new();
    for &y in &labels {
        let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
        rng.set_stream(y as u64);
        let mut done = 0;
        while done < args.ipc {
            let n = args.batch_size.min(args.ipc - done);
            let latents = sample(&dit, &diffusion, &vec![y; n], &options, &mut rng)?;
            let images = autoencoder
                .decode(&latents)?
                .to_device(&candle_core::Device::Cpu)?; // (n, C, H, W)
            let (_, c, h, w) = images.dims4()?;
            shape = Some(ImageShape {
                channels: c,
                height: h,
                width: w,
            });
            pixels.extend(
                images
                    .flatten_all()?
                    .to_vec1::<f32>()?
                    .into_iter()
                    .map(model_to_u8),
            );
            image_labels.extend(std::iter::repeat_n(y, n));
            done += n;
            bar.inc(n as u64);
        }
    }
    bar.finish();
    let shape = shape.context("nothing to sample: --ipc 0 or no labels")?;
    let set = ImageSet {
        shape,
        pixels,
        labels: image_labels,
        class_names: class_names.clone(),
    };

    // Write outputs, under a temporary name renamed into place at the end:
    let staged = dmgd_data::atomic::StagedDir::new(&args.out, args.overwrite)?;
    image_folder::write_into(&set, staged.path())?;
    let image_count = set.len();
    write_grid(set, &labels, args.ipc, &staged.path().join("grid.png"))?;
    let seconds_total = started.elapsed().as_secs_f64();
    Manifest::new(SampleManifest {
        model: weights.clone(),
        model_sha256: sha256_file(&weights)?,
        model_config: mc,
        vae_sha256: args.vae.as_deref().map(sha256_file).transpose()?,
        vae: args.vae.clone(),
        ipc: args.ipc,
        labels,
        class_names,
        steps: args.steps.clone(),
        cfg,
        sampler: method,
        clip_denoised,
        seed: args.seed,
        seeding: "x_T and every step's noise from ChaCha8Rng(seed) with stream = label, batches in order",
        batch_size: args.batch_size,
        device: args.device.clone(),
        seconds_total,
        seconds_per_image: seconds_total / image_count.max(1) as f64,
    })
    .write(staged.path())?;
    staged.commit()?;
    eprintln!(
        "{} images in {:.1} s -> {}",
        image_count,
        seconds_total,
        args.out.display()
    );
    Ok(())
}

/// One row per sampled label (in `labels` order), up to `GRID_COLUMNS` images each.
fn write_grid(set: ImageSet, labels: &[usize], ipc: usize, path: &Path) -> Result<()> {
    // The set holds `ipc` images of each label in turn; renumber them as rows so that classes
    // not sampled leave no empty rows.
    let rows = ImageSet {
        labels: (0..set.len()).map(|i| i / ipc).collect(),
        class_names: labels.iter().map(|&y| set.class_names[y].clone()).collect(),
        ..set
    };
    dmgd_data::grid::write_class_grid(&rows, GRID_COLUMNS, path)?;
    Ok(())
}

/// `cpu` or `cuda:N`.
pub fn parse_device(name: &str) -> Result<candle_core::Device> {
    if name == "cpu" {
        return Ok(candle_core::Device::Cpu);
    }
    if let Some(n) = name
        .strip_prefix("cuda:")
        .and_then(|n| n.parse::<usize>().ok())
    {
        return Ok(candle_core::Device::new_cuda(n)?);
    }
    bail!("unknown device {name:?}: expected cpu or cuda:N")
}
