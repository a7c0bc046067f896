//! `dmgd quality`: flags -> sets and a classifier -> `dmgd_eval::quality::judge` -> the table.

use crate::dataset::DataArgs;
use anyhow::Result;
use dmgd_data::{ImageSet, FASHION_MNIST};
use dmgd_eval::{inputs, quality, SetRecord};
use dmgd_student::Arch;
use std::path::PathBuf;

/// Judge image sets with a classifier trained on the real data: the share classified as the
/// class they were generated for, and the Fréchet distance of its penultimate features to
/// those of the real test split.
///
/// Example (the shipped model's samples, with a ConvNet-3 that `dmgd eval --save-nets` kept):
///   dmgd quality --images runs/fmnist-dit-ipc100 --images fashion-mnist \
///     --classifier runs/eval-full/net-set0-run0.safetensors
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Image set(s) to judge: an ImageFolder, a `dmgd distill`/`sample` output, or
    /// `fashion-mnist` (the real training split: the reference distance). Repeat for several.
    #[arg(long, required = true)]
    pub images: Vec<String>,
    /// Real images the features are compared with: `fashion-mnist` (its test split) or an
    /// ImageFolder with the same classes.
    #[arg(long, default_value = FASHION_MNIST)]
    pub reference: String,
    /// Compare with the last N images of every class of --data's training split instead (the
    /// images `dmgd pretrain --holdout-per-class N` held out): for choosing a checkpoint
    /// without looking at the test split.
    #[arg(long, conflicts_with = "reference")]
    pub holdout_per_class: Option<usize>,
    /// Weights of the classifier (instance norm, `dc` input normalisation), as
    /// `dmgd eval --save-nets` writes them: e.g. `dmgd eval --train fashion-mnist --repeats 1
    /// --epochs 10 --save-nets` gives one trained on the whole real training split.
    #[arg(long)]
    pub classifier: PathBuf,
    /// Architecture of --classifier.
    #[arg(long, default_value = "convnet3")]
    pub net: Arch,
    /// Where the results go (JSON; a Markdown table is printed).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// cpu, or cuda:N with a dmgd built with `--features cuda`: where the classifier runs.
    #[arg(long, default_value = "cpu")]
    pub device: dmgd_kernels::DeviceName,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.open()?; // before any data is read
    let options = args.data.options();
    let reference = inputs::read_reference(
        &args.reference,
        args.holdout_per_class,
        &args.data.data,
        &options,
    )?;
    let (reference_record, reference) = (reference.record, reference.set);
    let (classifier, record) =
        quality::load_classifier(&args.classifier, args.net, &reference, &device)?;
    // Every set is read and checked before any work.
    let judged = inputs::read_judged_sets(&args.images, &options, &reference)?;
    let records: Vec<SetRecord> = judged.iter().map(|n| n.record.clone()).collect();
    let sets: Vec<(String, ImageSet)> = judged
        .into_iter()
        .map(|n| (n.record.source, n.set))
        .collect();
    let report = quality::judge(
        &classifier,
        record,
        &reference,
        &reference_record.source,
        &sets,
        &mut |line| eprintln!("{line}"),
    )?;
    println!("{}", quality::markdown_table(&report));
    if let Some(out) = &args.out {
        quality::write(out, &report, &reference_record, &records)?;
        println!("results: {}", out.display());
    }
    Ok(())
}
