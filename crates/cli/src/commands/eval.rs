//! `dmgd eval`: flags -> an `EvalSpec` -> `dmgd_eval::evaluate` -> the table.

use crate::dataset::DataArgs;
use crate::output_args::OutputArgs;
use crate::progress::Bar;
use anyhow::Result;
use dmgd_data::FASHION_MNIST;
use dmgd_eval::evaluate::{markdown_table, RESULTS_FILE, TABLE_FILE};
use dmgd_eval::{inputs, EvalError, Evaluation, Event, TrainChoices};
use dmgd_run::flags::Knobs;
use std::path::PathBuf;

/// Train fresh students on a set and test them on the real test split.
///
/// Writes eval.json, eval.md and manifest.json into --out (default:
/// runs/eval-<set>-<net>-<protocol>-<hash of the spec>); --resume keeps the networks an
/// interrupted run finished (--out/networks/) and trains only the others.
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
    /// Test set: `fashion-mnist` (its 10,000 test images), `fashion-mnist-val<N>` (the last N
    /// training images of every class: validation, for tuning) or an ImageFolder with the same
    /// classes.
    #[arg(long, default_value = FASHION_MNIST)]
    pub test: String,
    /// Teacher for --labels soft: a network `eval --save-nets` wrote on the full real data, or
    /// a PyTorch state dict (torchvision's ResNet-18 key names for resnet18). Its norm follows
    /// the file (batch norm when it holds running statistics).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
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
    let options = args.data.options();
    let teacher = args.teacher.as_deref();
    let prepared =
        inputs::prepare(&choices, &args.train, &args.test, teacher, &options).map_err(|e| {
            let advice = match e {
                EvalError::MixedIpc { .. } => "pass --epochs (minimax) or --batch-size (rded)",
                EvalError::InvalidChoice { .. } => {
                    "leave out --optimizer, or pass --protocol minimax or rded"
                }
                EvalError::NoTeacher => {
                    "pass --teacher FILE (`dmgd eval --save-nets` on the full data writes one)"
                }
                EvalError::TeacherWithHardLabels => "pass --labels soft, or leave out --teacher",
                _ => return anyhow::Error::new(e),
            };
            anyhow::Error::new(e).context(advice)
        })?;
    let (spec, train, repeats) = (&prepared.spec, &prepared.train, choices.repeats);
    let out = args.output.dir(|| spec.default_out(&prepared.first_name));
    let job = Evaluation {
        spec,
        train,
        test: &prepared.test,
        out: &out,
        existing: args.output.existing(),
        save_nets: args.save_nets,
        teacher: prepared.teacher.as_ref(),
    };
    let bar = Bar::new("epochs", train.len() * repeats * spec.config.epochs, 0);
    let sets = train.len();
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
