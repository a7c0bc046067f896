//! `dmgd device-check`: `dmgd_eval::device_check` -> a Markdown report.

use anyhow::Result;
use dmgd_eval::device_check;
use std::path::PathBuf;

/// Check a device against the CPU (every op of the kernel crate, a small DiT's CFG forward,
/// one student training step: largest absolute differences), then time the paper's
/// workloads on it (ResNetAP-10 / ResNet-18 steps at 224 px; DiT-XL/2 forwards, random
/// weights, f32 and TF32). Run it on a GPU machine before trusting its numbers.
///
/// Example:
///   dmgd device-check --device cuda:0 --out runs/device-check.md
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The device to check: cuda:N (with a dmgd built with `--features cuda`), or cpu.
    #[arg(long)]
    device: dmgd_kernels::DeviceName,
    /// Timed repeats of each workload (after one warm-up).
    #[arg(long, default_value_t = 5, value_parser = crate::settings::positive)]
    repeats: usize,
    /// Compare only; time nothing (the timings take minutes on a CPU).
    #[arg(long)]
    no_timings: bool,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let device = args.device.open()?;
    let name = args.device.to_string();
    let repeats = (!args.no_timings).then_some(args.repeats);
    let report = device_check::check(&device, &name, repeats, &mut |line| eprintln!("{line}"))?;
    print!("{report}");
    if let Some(out) = &args.out {
        dmgd_data::atomic::write_file(out, report.as_bytes())?;
    }
    Ok(())
}
