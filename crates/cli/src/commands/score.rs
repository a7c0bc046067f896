//! `dmgd score`: finished evaluations -> `dmgd_eval::score::score` -> HLR, IOR, LRS, ARS.

use anyhow::{Context, Result};
use dmgd_eval::score::{Cell, Cells};
use std::path::{Path, PathBuf};

/// Label- and augmentation-robust scores of a set (DD-Ranking's HLR, IOR, LRS, ARS) from
/// finished `dmgd eval` output directories: does the set beat a random real subset of the same
/// IPC under the same soft-label protocol, and how far is it from the full data?
///
/// Example (the same --net, protocol and teacher for set and subset; --repeats alike):
///   dmgd eval --train fashion-mnist --out runs/full-hard
///   dmgd eval --train runs/dmgd-ipc10 --out runs/set-hard
///   dmgd eval --train runs/dmgd-ipc10 --labels soft --teacher T --out runs/set-soft
///   dmgd eval --train runs/random-ipc10 --labels soft --teacher T --out runs/random-soft
///   dmgd score --full runs/full-hard --set-hard runs/set-hard --set-soft runs/set-soft \
///       --random-soft runs/random-soft
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Evaluation of the full real training data, hard labels.
    #[arg(long)]
    full: PathBuf,
    /// Evaluation of the set, hard labels.
    #[arg(long)]
    set_hard: PathBuf,
    /// Evaluation of the set, soft labels.
    #[arg(long)]
    set_soft: PathBuf,
    /// Evaluation of a random real subset of the same IPC, soft labels, the set's settings.
    #[arg(long)]
    random_soft: PathBuf,
    /// For ARS: the set, soft labels, `--augment none`.
    #[arg(long, requires = "random_noaug")]
    set_noaug: Option<PathBuf>,
    /// For ARS: the random subset, soft labels, `--augment none`.
    #[arg(long, requires = "set_noaug")]
    random_noaug: Option<PathBuf>,
    /// Also write the scores, per network pair, as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let read = |flag: &str, dir: &Path| {
        Cell::read(dir).with_context(|| {
            format!(
                "--{flag} {}: a finished `dmgd eval` output directory",
                dir.display()
            )
        })
    };
    let noaug = match (&args.set_noaug, &args.random_noaug) {
        (Some(s), Some(r)) => Some((read("set-noaug", s)?, read("random-noaug", r)?)),
        _ => None,
    };
    let cells = Cells {
        full_hard: read("full", &args.full)?,
        set_hard: read("set-hard", &args.set_hard)?,
        set_soft: read("set-soft", &args.set_soft)?,
        random_soft: read("random-soft", &args.random_soft)?,
        noaug,
    };
    let report = dmgd_eval::score::score(&cells)?;
    print!("{}", dmgd_eval::score::markdown(&report));
    if let Some(out) = &args.out {
        let json = serde_json::to_vec_pretty(&report).expect("scores serialise");
        dmgd_data::atomic::write_file(out, &json)?;
        println!("scores: {}", out.display());
    }
    Ok(())
}
