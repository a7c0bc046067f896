//! `dmgd eval`: flags -> an `EvalSpec` -> `dmgd_eval::evaluate` -> the table.

use crate::dataset::DataArgs;
use crate::progress::Bar;
use anyhow::{bail, Context, Result};
use dmgd_data::{ImageSet, FASHION_MNIST};
use dmgd_eval::evaluate::{markdown_table, RESULTS_FILE, TABLE_FILE};
use dmgd_eval::{inputs, EvalError, EvalSpec, Evaluation, Event, Labels, TrainChoices};
use dmgd_run::flags::Knobs;
use dmgd_run::Existing;
use dmgd_student::train::net_input;
use dmgd_student::{Arch, SoftLabels, TrainConfig};
use std::path::PathBuf;

/// Train fresh students on a set and test them on the real test split.
///
/// Example (the classic Fashion-MNIST protocol on a distilled set):
///   dmgd eval --train runs/dmgd-ipc10 --net convnet3 --protocol dc --repeats 5
/// and with soft labels (RDED's protocol) from the shipped teacher:
///   dmgd eval --train runs/dmgd-ipc10 --labels soft \
///     --teacher models/fashion-mnist-teacher/convnet3.safetensors
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
    /// Teacher for --labels soft: a network `eval --save-nets` wrote on the full real data, or
    /// a PyTorch state dict (torchvision's ResNet-18 key names for resnet18). Its norm follows
    /// the file (batch norm when it holds running statistics).
    #[arg(long, required_if_eq("labels", "soft"))]
    pub teacher: Option<PathBuf>,
    /// Architecture of --teacher [default: --net].
    #[arg(long, requires = "teacher")]
    pub teacher_net: Option<Arch>,
    /// Temperature of the soft labels.
    #[arg(long, default_value_t = dmgd_student::protocol::RDED_TEMPERATURE, requires = "teacher")]
    pub temperature: f64,
    /// Fresh networks per training set.
    #[arg(long, default_value_t = 5, value_parser = crate::settings::positive)]
    pub repeats: usize,
    /// Where eval.json, eval.md and the manifest go (default: runs/eval-<set>-<net>-<protocol>-<hash of the spec>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace existing results in --out.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Keep the networks an interrupted run of the same spec finished (--out/networks/) and
    /// train only the others; refused, naming the keys, if any setting or set differs.
    #[arg(long)]
    pub resume: bool,
    /// Also keep each trained network, as --out/net-set<s>-run<r>.safetensors (what
    /// `dmgd select --embedding` and `dmgd quality --classifier` read).
    #[arg(long)]
    pub save_nets: bool,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub choices: Knobs<TrainChoices>,
}

pub fn run(args: Args) -> Result<()> {
    let choices = args.choices.resolve(None)?;
    if choices.labels == Labels::Hard && args.teacher.is_some() {
        bail!("--teacher is for --labels soft");
    }
    let device = choices.device.open()?; // before any data is read
    let options = args.data.options();
    let sets = inputs::read_training_sets(&args.train, &options)?;
    let (records, first_name): (Vec<_>, _) = (
        sets.iter().map(|n| n.record.clone()).collect(),
        sets[0].short_name.clone(),
    );
    let train: Vec<ImageSet> = sets.into_iter().map(|n| n.set).collect();
    let mut config = resolve_config(&choices, &train)?;
    let input = net_input(&config, train[0].shape);
    let test = inputs::read_test_set(&args.test, &options, &config, &train[0], &args.train[0])?;
    let teacher = match &args.teacher {
        Some(path) => {
            let net = args.teacher_net.unwrap_or(choices.net);
            let classes = train[0].num_classes();
            let (record, teacher) = dmgd_eval::teacher::load(path, net, input, classes, &device)
                .with_context(|| format!("--teacher {} as {net}", path.display()))?;
            config.soft_labels = Some(SoftLabels {
                teacher: record,
                temperature: args.temperature,
            });
            Some(teacher)
        }
        None => None,
    };
    let spec = EvalSpec {
        config,
        repeats: args.repeats,
        train_sets: records,
        test: test.record,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| spec.default_out(&first_name));
    let job = Evaluation {
        spec: &spec,
        train: &train,
        test: &test.set,
        out: &out,
        existing: Existing::from_flags(args.resume, args.overwrite),
        save_nets: args.save_nets,
        teacher: teacher.as_ref(),
    };
    let bar = Bar::new("epochs", train.len() * args.repeats * spec.config.epochs, 0);
    let (sets, repeats) = (train.len(), args.repeats);
    let result = dmgd_eval::evaluate(&job, &mut |event| {
        match &event {
            Event::Epoch { set, run, progress } => {
                bar.inc(1);
                if let Some(acc) = progress.test_accuracy {
                    let (s, r) = (set + 1, run + 1);
                    bar.status(format!("set {s}/{sets} run {r}/{repeats}: test {acc:.2}%"));
                }
            }
            Event::Finished {
                report, kept: true, ..
            } => bar.inc(report.config.epochs),
            Event::Finished { .. } => {}
        }
        match event.line() {
            Some((line, true)) => bar.line(&line),
            Some((line, false)) => bar.log(&line),
            None => {}
        }
    });
    bar.finish();
    let result = result.map_err(|e| {
        let advice = match &e {
            EvalError::ResultsExist { .. } => "pass --overwrite to replace it, or another --out",
            EvalError::Unfinished { .. } => "pass --resume to keep them (same settings only) or --overwrite to start again",
            EvalError::NetworkMismatch { .. } => "remove it, or pass --overwrite to start the evaluation again",
            EvalError::Manifest(_) => "this folder holds another evaluation: choose another --out (or leave it out: the default follows the settings), or --overwrite",
            _ => return anyhow::Error::new(e),
        };
        anyhow::Error::new(e).context(advice)
    })?;
    let table = markdown_table(&result);
    println!("{table}");
    println!(
        "results: {} and {}",
        out.join(RESULTS_FILE).display(),
        out.join(TABLE_FILE).display()
    );
    Ok(())
}

/// The protocol's configuration with the flags' changes.
fn resolve_config(choices: &TrainChoices, train: &[dmgd_data::ImageSet]) -> Result<TrainConfig> {
    choices.resolve(train).map_err(|e| {
        let advice = match e {
            EvalError::MixedIpc { .. } => "pass --epochs (minimax) or --batch-size (rded)",
            EvalError::InvalidChoice { .. } => {
                "leave out --optimizer, or pass --protocol minimax or rded"
            }
            _ => return anyhow::Error::new(e),
        };
        anyhow::Error::new(e).context(advice)
    })
}
