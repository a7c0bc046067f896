//! `dmgd distill`: flags -> a `DistillSpec` -> `pipeline::run` (or `random_subset::write`) -> print.

use crate::dataset::{DataArgs, DataSource};
use crate::device::DeviceArg;
use crate::settings::{parse_named, read_toml};
use anyhow::{Context, Result};
use dmgd_data::fashion_mnist::Split;
use dmgd_diffusion::autoencoder::{Autoencoder, EncodeMode, SdVae, VaeConfig, SD_VAE_FACTOR};
use dmgd_diffusion::dit::Cfg;
use dmgd_distill::codec::Codec;
use dmgd_distill::config::{DistillConfig, Method};
use dmgd_distill::pipeline::{Existing, Job};
use dmgd_distill::run_dir::IMAGES_DIR;
use dmgd_distill::shard::Shard;
use dmgd_distill::spec::{model_labels, DataRecord, DistillSpec, ModelRecord};
use dmgd_distill::support_cache::{default_cache_dir, SupportCache};
use std::path::{Path, PathBuf};

/// Distill a labelled image set into IPC synthetic images per class.
///
/// With no arguments: DMGD on Fashion-MNIST with the shipped pixel-space DiT, 10 images per
/// class, into runs/distill-dmgd-ipc10. Every knob has the reference default (shown in
/// brackets); a TOML file (--config) sets keys named like the flags; flags override the file.
/// A run with any other setting, model or data gets a default folder of its own (the name
/// ends in its settings' hash).
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Output directory (images/, latents/, manifest.json, grid.png). Default: derived from
    /// the settings, under runs/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Finish an interrupted run in --out: refused unless every setting equals the stored one.
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
    #[arg(long, default_value = "cpu")]
    pub device: DeviceArg,
    /// Where k-means supports are cached (default: $XDG_CACHE_HOME/dmgd or ~/.cache/dmgd).
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

/// The method's settings (docs/METHOD.md §5–7): each a flag and a key of --config, named alike.
/// Unset ones come from --config, then from `DistillConfig::default()` (the only place a
/// default is written; `--help` shows it from there).
#[derive(clap::Args, Debug, Default)]
pub struct Knobs {
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
    /// Seed of every random draw: noise, y*, k-means, random picks (per class and image).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Respaced sampling steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// ddpm (the reference) or ddim (eta 0; no OT or mode guidance).
    #[arg(long)]
    pub sampler: Option<String>,
    /// Classifier-free guidance scale.
    #[arg(long)]
    pub cfg_scale: Option<f64>,
    /// first-three (the reference sampler) or all-eps.
    #[arg(long)]
    pub cfg_channels: Option<String>,
    /// Clamp x0_hat to [-1, 1] each step: auto (pixel space yes, VAE latents no), yes, no.
    #[arg(long)]
    pub clip_denoised: Option<String>,
    /// Classes per DiT batch.
    #[arg(long)]
    pub class_batch: Option<usize>,
    /// Soft labels: exploration above this timestep.
    #[arg(long)]
    pub t_upper: Option<usize>,
    /// Soft labels: refinement below this timestep.
    #[arg(long)]
    pub t_lower: Option<usize>,
    /// Soft labels: noise weight.
    #[arg(long)]
    pub beta_n: Option<f64>,
    /// Soft labels: other-class weight.
    #[arg(long)]
    pub beta_s: Option<f64>,
    /// Soft-label noise law: uniform (the release) or gaussian (the paper's text).
    #[arg(long)]
    pub noise: Option<String>,
    /// k-means support points K.
    #[arg(long)]
    pub support_points: Option<usize>,
    /// k-means iterations at most.
    #[arg(long)]
    pub kmeans_iterations: Option<usize>,
    /// OT guidance scale rho.
    #[arg(long)]
    pub rho: Option<f64>,
    /// Sinkhorn entropic regularisation.
    #[arg(long)]
    pub sinkhorn_eps: Option<f64>,
    /// Sinkhorn iterations.
    #[arg(long)]
    pub sinkhorn_iterations: Option<usize>,
    /// Log-domain Sinkhorn (for small eps).
    #[arg(long)]
    pub sinkhorn_log_domain: bool,
    /// OT guidance window of respaced indices, of 50 steps (scaled for others).
    #[arg(long, value_delimiter = ',', num_args = 1..=2)]
    pub ot_window: Option<Vec<usize>>,
    /// mgd3: pull strength lambda.
    #[arg(long)]
    pub mode_lambda: Option<f64>,
    /// mgd3: guidance while the respaced index is above this, of 50 steps.
    #[arg(long)]
    pub mode_stop: Option<usize>,
}

impl Knobs {
    /// Defaults <- TOML file <- flags; validated.
    pub fn resolve(&self, file: Option<&Path>) -> Result<DistillConfig> {
        let c = self.resolve_unvalidated(file)?;
        c.validate().map_err(|e| {
            anyhow::anyhow!("invalid setting {e} (a flag of the same name, or a key of --config)")
        })?;
        Ok(c)
    }

    /// Defaults <- TOML file <- flags.
    fn resolve_unvalidated(&self, file: Option<&Path>) -> Result<DistillConfig> {
        let mut c: DistillConfig = match file {
            Some(path) => read_toml(path)?,
            None => DistillConfig::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field.clone() { c.$field = v; } )* };
        }
        set!(
            ipc,
            seed,
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
        macro_rules! set_named {
            ($($field:ident: $flag:literal),*) => {
                $( if let Some(v) = &self.$field { c.$field = parse_named(v, $flag)?; } )*
            };
        }
        set_named!(
            method: "--method",
            sampler: "--sampler",
            cfg_channels: "--cfg-channels",
            clip_denoised: "--clip-denoised",
            noise: "--noise"
        );
        if self.no_semantic {
            c.semantic = false;
        }
        if self.no_distribution {
            c.distribution = false;
        }
        if self.sinkhorn_log_domain {
            c.sinkhorn_log_domain = true;
        }
        if let Some(w) = &self.ot_window {
            let &[first, last] = w.as_slice() else {
                anyhow::bail!("--ot-window: expected two indices, FIRST,LAST (e.g. 30,45)");
            };
            c.ot_window = [first, last];
        }
        Ok(c)
    }
}

pub fn run(args: Args) -> Result<()> {
    let config = args.knobs.resolve(args.config.as_deref())?;
    let device = args.device.open()?;
    let default_input = args.dit.is_none() && args.vae.is_none() && args.data.is_default();

    if config.method == Method::Random {
        anyhow::ensure!(
            args.shard == Shard::WHOLE,
            "--shard applies to generative methods; `random` copies real images in seconds"
        );
        let source = DataSource::resolve(&args.data.data, &args.data, Split::Train, None)?;
        let real = source.load()?;
        let spec = DistillSpec {
            config,
            dit: None,
            vae: None,
            encode: "none".into(),
            data: DataRecord {
                description: source.describe(),
                fingerprint: real.fingerprint(),
            },
            model_labels: (0..real.num_classes()).collect(),
            shards: 1,
        };
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| spec.default_out(default_input));
        dmgd_distill::random_subset::write(&real, &spec, &out, args.overwrite)?;
        println!(
            "{} real images in {}",
            real.num_classes() * spec.config.ipc,
            out.join(IMAGES_DIR).display()
        );
        println!("picture: {}", out.join("grid.png").display());
        return Ok(());
    }

    // Load the models:
    let dit_path = dmgd_diffusion::shipped::resolve_dit_weights(args.dit.as_deref())?;
    let dit = dmgd_diffusion::checkpoint::load_dit(&dit_path, None, &device)
        .with_context(|| format!("loading DiT checkpoint {}", dit_path.display()))?;
    let (codec, vae) = match &args.vae {
        None => (Codec::pixel(), None),
        Some(path) => {
            let vae = SdVae::load(path, &VaeConfig::sd_vae(), &device)
                .with_context(|| format!("loading the SD VAE {}", path.display()))?;
            let record = ModelRecord::of(path)?;
            let codec = Codec {
                autoencoder: Autoencoder::SdVae(Box::new(vae)),
                id: format!("sd-vae:{}", record.sha256),
                encode_mode: match args.encode {
                    EncodeArg::Mean => EncodeMode::Mean,
                    EncodeArg::Sample => EncodeMode::Sample,
                },
            };
            (codec, Some(record))
        }
    };

    // Open the data (a folder is listed and its headers checked; a class is decoded when its
    // support is computed). Real images enter the autoencoder at the size its latents match
    // the DiT's input (ADM center crop), unless --image-size says otherwise.
    let mut data_args = args.data.clone();
    if data_args.image_size.is_none() && args.vae.is_some() {
        data_args.image_size = Some(dit.config.input_size * SD_VAE_FACTOR);
    }
    let source = DataSource::resolve(&data_args.data, &data_args, Split::Train, None)?;
    println!("reading {}", source.describe());
    let real = source.open_by_class()?;
    let spec = DistillSpec {
        encode: match (&args.vae, args.encode) {
            (None, _) => "pixels".into(),
            (Some(_), EncodeArg::Sample) => "sample".into(),
            (Some(_), EncodeArg::Mean) => "mean".into(),
        },
        dit: Some(ModelRecord::of(&dit_path)?),
        vae,
        data: DataRecord {
            description: source.describe(),
            fingerprint: real.fingerprint(),
        },
        model_labels: model_labels(real.class_names(), dit.config.num_classes)?,
        shards: args.shard.count,
        config,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| spec.default_out(default_input));
    let cache = SupportCache {
        dir: args.cache_dir.clone().or_else(default_cache_dir),
        seed: spec.config.seed,
    };
    let job = Job {
        real: Some(real.as_ref()),
        class_names: real.class_names(),
        only_classes: None,
        dit: &dit,
        codec: &codec,
        spec: &spec,
        cfg: Cfg {
            scale: spec.config.cfg_scale,
            channels: spec.config.cfg_channels,
        },
        shard: args.shard,
        cache: &cache,
        out: &out,
        existing: Existing::from_flags(args.resume, args.overwrite),
    };

    // Distill:
    let outcome = crate::progress::run_pipeline(&job, "distill")?;
    println!(
        "{} images ({} generated now, {:.2} s per image) in {}",
        outcome.images.len(),
        outcome.timings.images_generated,
        outcome.timings.sampling_seconds / outcome.timings.images_generated.max(1) as f64,
        out.join(IMAGES_DIR).display()
    );
    println!(
        "picture: {}",
        dmgd_distill::run_dir::RunDir::new(&out, args.shard)
            .grid_path()
            .display()
    );
    println!("evaluate: dmgd eval --train {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};
    use serde_json::{json, Value};

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        knobs: Knobs,
    }

    /// For every key: a value for the TOML file, flags that set another one, and that one.
    fn cases() -> Vec<(&'static str, &'static str, Vec<&'static str>, Value)> {
        vec![
            ("method", "\"mgd3\"", vec!["--method", "dit"], json!("dit")),
            // Switches go one way: the file holds the other value.
            ("semantic", "true", vec!["--no-semantic"], json!(false)),
            (
                "distribution",
                "true",
                vec!["--no-distribution"],
                json!(false),
            ),
            ("ipc", "3", vec!["--ipc", "7"], json!(7)),
            ("seed", "3", vec!["--seed", "9"], json!(9)),
            ("steps", "20", vec!["--steps", "30"], json!(30)),
            (
                "sampler",
                "\"ddim\"",
                vec!["--sampler", "ddpm"],
                json!("ddpm"),
            ),
            ("cfg-scale", "2.0", vec!["--cfg-scale", "3.0"], json!(3.0)),
            (
                "cfg-channels",
                "\"all-eps\"",
                vec!["--cfg-channels", "first-three"],
                json!("first-three"),
            ),
            (
                "clip-denoised",
                "\"yes\"",
                vec!["--clip-denoised", "no"],
                json!("no"),
            ),
            ("class-batch", "2", vec!["--class-batch", "5"], json!(5)),
            ("t-upper", "800", vec!["--t-upper", "950"], json!(950)),
            ("t-lower", "400", vec!["--t-lower", "300"], json!(300)),
            ("beta-n", "0.2", vec!["--beta-n", "0.3"], json!(0.3)),
            ("beta-s", "0.2", vec!["--beta-s", "0.3"], json!(0.3)),
            (
                "noise",
                "\"gaussian\"",
                vec!["--noise", "uniform"],
                json!("uniform"),
            ),
            (
                "support-points",
                "5",
                vec!["--support-points", "7"],
                json!(7),
            ),
            (
                "kmeans-iterations",
                "5",
                vec!["--kmeans-iterations", "7"],
                json!(7),
            ),
            ("rho", "2.0", vec!["--rho", "-1"], json!(-1.0)),
            (
                "sinkhorn-eps",
                "0.2",
                vec!["--sinkhorn-eps", "0.3"],
                json!(0.3),
            ),
            (
                "sinkhorn-iterations",
                "7",
                vec!["--sinkhorn-iterations", "9"],
                json!(9),
            ),
            (
                "sinkhorn-log-domain",
                "false",
                vec!["--sinkhorn-log-domain"],
                json!(true),
            ),
            (
                "ot-window",
                "[20, 40]",
                vec!["--ot-window", "10,30"],
                json!([10, 30]),
            ),
            (
                "mode-lambda",
                "0.2",
                vec!["--mode-lambda", "0.3"],
                json!(0.3),
            ),
            ("mode-stop", "20", vec!["--mode-stop", "10"], json!(10)),
        ]
    }

    fn resolved(file: Option<&str>, flags: &[&str]) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let args = Wrapper::command()
            .allow_negative_numbers(true)
            .try_get_matches_from(std::iter::once("distill").chain(flags.iter().copied()))
            .unwrap();
        let knobs = Wrapper::from_arg_matches(&args).unwrap().knobs;
        // A combination the validator refuses would hide the precedence: check it unvalidated.
        let config = knobs
            .resolve_unvalidated(file.map(|_| path.as_path()))
            .unwrap();
        serde_json::to_value(config).unwrap()
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_the_defaults_for_every_key() {
        let defaults = serde_json::to_value(DistillConfig::default()).unwrap();
        let keys: Vec<&String> = defaults.as_object().unwrap().keys().collect();
        let cases = cases();
        let covered: Vec<&str> = cases.iter().map(|c| c.0).collect();
        for key in &keys {
            assert!(
                covered.contains(&key.as_str()),
                "key {key} has no precedence case"
            );
        }
        for (key, file_value, flags, flag_value) in cases {
            let file = format!("{key} = {file_value}");
            let from_file: Value = toml::from_str::<toml::Value>(&file).unwrap()[key]
                .clone()
                .try_into()
                .unwrap();
            assert_eq!(resolved(None, &[])[key], defaults[key], "{key}: default");
            assert_eq!(
                resolved(Some(&file), &[])[key],
                from_file,
                "{key}: file over default"
            );
            assert_eq!(
                resolved(Some(&file), &flags)[key],
                flag_value,
                "{key}: flag over file"
            );
            assert_ne!(
                flag_value, from_file,
                "{key}: the case must tell the three apart"
            );
        }
    }
}
