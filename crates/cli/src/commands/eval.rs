//! `dmgd eval`: train fresh student networks on one or more sets, test each on the real test
//! split, and report final- and best-epoch accuracy as mean ± std.

use super::eval_networks::{self, FinishedNetwork};
use crate::dataset::{run_images, DataArgs, DataSource, FASHION_MNIST};
use crate::manifest::Manifest;
use anyhow::{bail, Context, Result};
use dmgd_data::fashion_mnist::Split;
use dmgd_data::preprocess::Resize;
use dmgd_data::ImageSet;
use dmgd_distill::run_dir::IMAGES_DIR;
use dmgd_student::{Arch, Augment, NormKind, Protocol, RunReport, Summary, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Train fresh students on a set and test them on the real test split.
///
/// Example (the classic Fashion-MNIST protocol on a distilled set):
///   dmgd eval --train runs/dmgd-ipc10 --net convnet3 --protocol dc --repeats 5
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Training set(s): `fashion-mnist` (the full real training split), an ImageFolder, or a
    /// `dmgd distill` output directory (its `images/` folder is used). Repeat for several sets.
    #[arg(long, required = true)]
    pub train: Vec<String>,
    /// Test set: `fashion-mnist` (its 10,000 test images) or an ImageFolder with the same classes.
    #[arg(long, default_value = FASHION_MNIST)]
    pub test: String,
    /// Student network: convnet3 (28–32 px), convnet6 (224 px), convnetD, resnetap10, resnet18.
    #[arg(long, default_value = "convnet3")]
    pub net: String,
    /// Normalisation layers of the student.
    #[arg(long, value_enum, default_value = "instance")]
    pub norm: NormArg,
    /// `dc` (Fashion-MNIST: SGD, batch 256, lr x0.1 at half) or `minimax` (ImageNet subsets at
    /// 224 px: augmentation chain, CutMix, epochs by IPC).
    #[arg(long, default_value = "dc")]
    pub protocol: String,
    /// Epochs (default: 300 for dc, by IPC for minimax).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Training augmentation (default: none for dc, the Minimax chain for minimax).
    #[arg(long, value_enum)]
    pub augment: Option<AugmentArg>,
    /// Optimiser for minimax: adamw (default) or sgd (dc always uses SGD 0.01 / 0.9 / 5e-4,
    /// and refuses this flag).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Test every this many epochs (default: E/10 for dc, E/100 for minimax; always at the end).
    /// A pass over the 10,000 Fashion-MNIST test images costs about as much as several training
    /// epochs at IPC 10: for short runs pass `--test-every <epochs>` to test once, at the end.
    #[arg(long)]
    pub test_every: Option<usize>,
    /// Fresh networks per training set.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Seed of the first network; repeat r of set s uses seed + 1000 s + r.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where eval.json, eval.md and the configuration go (default: runs/eval-<set>-<net>-<protocol>-<hash of the setup>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace existing results in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Keep the networks an interrupted run already finished (--out/networks/, which must match
    /// these sets, test set and configuration) and train only the others.
    #[arg(long)]
    pub resume: bool,
    /// Also keep each trained network, as --out/net-set<s>-run<r>.safetensors (what
    /// `dmgd select --embedding` and `dmgd quality --classifier` read).
    #[arg(long)]
    pub save_nets: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum NormArg {
    Instance,
    Batch,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum AugmentArg {
    None,
    Dsa,
    Minimax,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum OptimizerArg {
    Adamw,
    Sgd,
}

#[derive(serde::Serialize)]
struct TrainSetRecord {
    source: String,
    images: usize,
    fingerprint: String,
}

#[derive(serde::Serialize)]
struct EvalSetup<'a> {
    config: &'a TrainConfig,
    repeats: usize,
    train_sets: &'a [TrainSetRecord],
    test: String,
    test_images: usize,
    test_fingerprint: String,
}

#[derive(serde::Serialize)]
struct EvalResult<'a> {
    #[serde(flatten)]
    setup: EvalSetup<'a>,
    summary: Summary,
    /// Per training set, mean ± std over its repeats.
    per_set: Vec<Summary>,
    runs: Vec<RunReport>,
    /// Networks taken from --out/networks/ (finished by an interrupted run) instead of trained.
    resumed_networks: usize,
    /// Wall time of this invocation plus the training time of the resumed networks.
    seconds: f64,
}

pub fn run(args: Args) -> Result<()> {
    let protocol: Protocol = args.protocol.parse()?;
    let arch: Arch = args.net.parse()?;
    if args.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    let test_resize = match protocol {
        Protocol::Minimax => Some(Resize::CenterCrop(224)),
        Protocol::Dc => None,
    };
    let test_source = DataSource::resolve(&args.test, &args.data, Split::Test, test_resize)?;
    let test = test_source.load()?;

    let mut train_sets = Vec::new();
    let mut records = Vec::new();
    for spec in &args.train {
        let source = DataSource::resolve(&run_images(spec), &args.data, Split::Train, None)?;
        let set = source.load()?;
        check_compatible(&set, &test, spec, &args.test)?;
        records.push(TrainSetRecord {
            source: source.describe(),
            images: set.len(),
            fingerprint: set.fingerprint(),
        });
        train_sets.push(set);
    }
    let ipc = train_sets[0].len() / train_sets[0].num_classes().max(1);
    let config = resolve_config(&args, arch, protocol, ipc)?;
    config.validate()?;

    let setup = EvalSetup {
        config: &config,
        repeats: args.repeats,
        train_sets: &records,
        test: test_source.describe(),
        test_images: test.len(),
        test_fingerprint: test.fingerprint(),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.train[0], &args.net, &args.protocol, &setup));
    let results_path = out.join("eval.json");
    if results_path.exists() && !args.overwrite {
        bail!(
            "{} already exists; pass --overwrite to replace it",
            results_path.display()
        );
    }
    let finished = eval_networks::count(&out)?;
    if finished > 0 && !args.resume {
        if !args.overwrite {
            bail!(
                "{} holds {finished} network{} finished by an interrupted run; pass --resume to keep them or --overwrite to start again",
                out.join(eval_networks::NETWORKS_DIR).display(),
                if finished == 1 { "" } else { "s" }
            );
        }
        eval_networks::clear(&out)?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // The resolved configuration goes down before any training.
    Manifest::new(&setup).write(&out)?;

    let started = std::time::Instant::now();
    let bar = ProgressBar::new((train_sets.len() * args.repeats * config.epochs) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} epochs, eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let mut runs = Vec::new();
    let mut per_set = Vec::new();
    let (mut resumed_networks, mut resumed_seconds) = (0, 0.0);
    for (s, set) in train_sets.iter().enumerate() {
        let mut set_runs = Vec::new();
        for r in 0..args.repeats {
            let cfg = TrainConfig {
                seed: args.seed + 1000 * s as u64 + r as u64,
                ..config.clone()
            };
            let network_path = eval_networks::path(&out, s, r);
            let net_path = out.join(format!("net-set{s}-run{r}.safetensors"));
            let expected = eval_networks::Expected {
                config: &cfg,
                train_fingerprint: &records[s].fingerprint,
                test_fingerprint: &setup.test_fingerprint,
            };
            if let Some(report) = eval_networks::load(&network_path, &expected)? {
                // Without its weights a resumed network cannot honour --save-nets: train it.
                if !args.save_nets || net_path.exists() {
                    bar.inc(config.epochs as u64);
                    bar.suspend(|| {
                        eprintln!(
                            "set {} run {}: final {:.2}%, kept from {}",
                            s + 1,
                            r + 1,
                            report.final_accuracy,
                            network_path.display()
                        )
                    });
                    resumed_networks += 1;
                    resumed_seconds += report.seconds;
                    set_runs.push(report);
                    continue;
                }
            }
            let trained = dmgd_student::train_and_test(set, &test, &cfg, &mut |p| {
                bar.inc(1);
                // Logs (output not a terminal) get a line per tenth of the run and per test.
                let tenth = (p.epochs / 10).max(1);
                if bar.is_hidden() && (p.test_accuracy.is_some() || p.epoch % tenth == 0) {
                    eprintln!(
                        "set {} run {} epoch {}/{}: train loss {:.4}, lr {}, {}{:.0} s",
                        s + 1,
                        r + 1,
                        p.epoch,
                        p.epochs,
                        p.train_loss,
                        p.lr,
                        p.test_accuracy
                            .map_or(String::new(), |a| format!("test {a:.2}%, ")),
                        p.seconds
                    );
                }
                if let Some(acc) = p.test_accuracy {
                    bar.set_message(format!(
                        "set {}/{} run {}/{}: test {acc:.2}%",
                        s + 1,
                        train_sets.len(),
                        r + 1,
                        args.repeats
                    ));
                }
            })?;
            // `suspend`, not `println`: a hidden bar (output not a terminal, e.g. a log file)
            // drops `println` lines.
            bar.suspend(|| {
                eprintln!(
                    "set {} run {}: final {:.2}%, best {:.2}% (epoch {}), {:.0} s",
                    s + 1,
                    r + 1,
                    trained.report.final_accuracy,
                    trained.report.best_accuracy,
                    trained.report.best_epoch,
                    trained.report.seconds
                )
            });
            if args.save_nets {
                trained.classifier.save(&net_path)?;
            }
            eval_networks::save(
                &network_path,
                &FinishedNetwork {
                    train_fingerprint: records[s].fingerprint.clone(),
                    test_fingerprint: setup.test_fingerprint.clone(),
                    report: trained.report.clone(),
                },
            )?;
            set_runs.push(trained.report);
        }
        per_set.push(Summary::of(&set_runs));
        runs.extend(set_runs);
    }
    bar.finish_and_clear();
    let summary = Summary::of(&runs);
    let result = EvalResult {
        setup,
        summary,
        per_set,
        runs,
        resumed_networks,
        seconds: started.elapsed().as_secs_f64() + resumed_seconds,
    };
    dmgd_data::atomic::write_file(&results_path, &serde_json::to_vec_pretty(&result)?)?;
    let table = markdown_table(&result, &args);
    dmgd_data::atomic::write_file(&out.join("eval.md"), table.as_bytes())?;
    println!("{table}");
    println!(
        "results: {} and {}",
        results_path.display(),
        out.join("eval.md").display()
    );
    Ok(())
}

fn check_compatible(
    train: &ImageSet,
    test: &ImageSet,
    train_name: &str,
    test_name: &str,
) -> Result<()> {
    if train.class_names != test.class_names {
        bail!(
            "training set {train_name} has classes {:?} but test set {test_name} has {:?}; they must match in order",
            train.class_names,
            test.class_names
        );
    }
    if train.shape.channels != test.shape.channels {
        bail!(
            "training set {train_name} has {} channels but test set {test_name} has {}",
            train.shape.channels,
            test.shape.channels
        );
    }
    Ok(())
}

fn resolve_config(args: &Args, arch: Arch, protocol: Protocol, ipc: usize) -> Result<TrainConfig> {
    if protocol == Protocol::Dc && args.optimizer.is_some() {
        bail!("--optimizer applies to --protocol minimax; dc always trains with SGD 0.01 / 0.9 / 5e-4");
    }
    let mut config = match protocol {
        Protocol::Dc => TrainConfig::dc(
            arch,
            args.epochs.unwrap_or(dmgd_student::protocol::DC_EPOCHS),
            args.seed,
        ),
        Protocol::Minimax => {
            let mut c = TrainConfig::minimax(arch, ipc, args.seed);
            if let Some(epochs) = args.epochs {
                c.epochs = epochs;
                c.test_every = (epochs / 100).max(1);
            }
            if let Some(OptimizerArg::Sgd) = args.optimizer {
                c.optimizer = TrainConfig::MINIMAX_SGD;
            }
            c
        }
    };
    if protocol == Protocol::Dc && args.epochs.is_some() {
        config.test_every = (config.epochs / 10).max(1);
    }
    config.norm = match args.norm {
        NormArg::Instance => NormKind::Instance,
        NormArg::Batch => NormKind::Batch,
    };
    if let Some(augment) = args.augment {
        config.augment = match augment {
            AugmentArg::None => Augment::None,
            AugmentArg::Dsa => Augment::Dsa,
            AugmentArg::Minimax => Augment::Minimax,
        };
    }
    if let Some(b) = args.batch_size {
        config.batch_size = b;
    }
    if let Some(t) = args.test_every {
        config.test_every = t;
    }
    Ok(config)
}

/// `runs/eval-<set>-<net>-<protocol>-<hash>`: the set's folder name for reading (its parent's
/// when it is an `images/` folder), the hash of the whole setup (the sets' fingerprints
/// included) so that two different evaluations never share a folder.
fn default_out(train: &str, net: &str, protocol: &str, setup: &EvalSetup) -> PathBuf {
    let path = Path::new(train);
    let named = match path.file_name() {
        Some(n) if n == IMAGES_DIR => path.parent().and_then(Path::file_name),
        other => other,
    };
    let name = named.map_or_else(|| "set".into(), |n| n.to_string_lossy().into_owned());
    let hash = dmgd_run::spec_hash(setup);
    PathBuf::from("runs").join(format!("eval-{name}-{net}-{protocol}-{hash}"))
}

/// The value of `--augment` that gives this augmentation.
fn augment_name(augment: Augment) -> String {
    serde_json::to_value(augment)
        .ok()
        .and_then(|v| v.as_str().map(str::to_lowercase))
        .unwrap_or_else(|| format!("{augment:?}").to_lowercase())
}

fn markdown_table(result: &EvalResult, args: &Args) -> String {
    let c = result.setup.config;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| training set | images | net | protocol | epochs | augment | runs | final acc (%) | best acc (%) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for (record, summary) in result.setup.train_sets.iter().zip(&result.per_set) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            record.source,
            record.images,
            args.net,
            args.protocol,
            c.epochs,
            augment_name(c.augment),
            summary.runs,
            summary.final_accuracy,
            summary.best_accuracy
        );
    }
    if result.per_set.len() > 1 {
        let _ = writeln!(
            s,
            "| **all sets** | | {} | {} | {} | {} | {} | {} | {} |",
            args.net,
            args.protocol,
            c.epochs,
            augment_name(c.augment),
            result.summary.runs,
            result.summary.final_accuracy,
            result.summary.best_accuracy
        );
    }
    let _ = writeln!(
        s,
        "\nmean ± sample std over fresh networks; best = best test accuracy over the tested epochs (optimistic). {:.0} s in all.",
        result.seconds
    );
    if result.resumed_networks > 0 {
        let _ = writeln!(
            s,
            "{} of the networks were finished by an earlier, interrupted run (--resume).",
            result.resumed_networks
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup_of<'a>(config: &'a TrainConfig, sets: &'a [TrainSetRecord]) -> EvalSetup<'a> {
        EvalSetup {
            config,
            repeats: 2,
            train_sets: sets,
            test: "fashion-mnist Test".into(),
            test_images: 10_000,
            test_fingerprint: "t".into(),
        }
    }

    #[test]
    fn two_image_folders_get_two_default_folders() {
        let config = TrainConfig::dc("convnet3".parse().unwrap(), 300, 0);
        let set = |source: &str, fingerprint: &str| {
            vec![TrainSetRecord {
                source: source.into(),
                images: 100,
                fingerprint: fingerprint.into(),
            }]
        };
        let (a, b) = (set("runs/a/images", "fa"), set("runs/b/images", "fb"));
        let out_a = default_out("runs/a/images", "convnet3", "dc", &setup_of(&config, &a));
        let out_b = default_out("runs/b/images", "convnet3", "dc", &setup_of(&config, &b));
        assert_ne!(out_a, out_b);
        assert!(
            out_a
                .to_string_lossy()
                .starts_with("runs/eval-a-convnet3-dc-"),
            "{out_a:?}"
        );
        // The same set evaluated otherwise is another evaluation too.
        let longer = TrainConfig::dc("convnet3".parse().unwrap(), 1000, 0);
        assert_ne!(
            default_out("runs/a/images", "convnet3", "dc", &setup_of(&longer, &a)),
            out_a
        );
    }
}
