//! Benchmark run (not a test): the DC protocol on `ipc` random real Fashion-MNIST images per
//! class, the "random real" baseline of docs/METHOD.md §9 (published 51.4 / 73.8 / 82.5 for
//! IPC 1 / 10 / 50 with ConvNet-3), mean ± std over `runs` fresh nets and subsets.
//!
//!     CARGO_TARGET_DIR=target-student cargo bench -p dmgd-student --bench dc_random -- IPC EPOCHS RUNS [dsa]

use dmgd_data::fashion_mnist::{self, Split};
use dmgd_student::protocol::{Augment, TrainConfig};
use dmgd_student::{train_and_test, Arch, Summary};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (ipc, epochs, runs) = (arg(0, 10), arg(1, 300), arg(2, 1));
    let dsa = args.iter().any(|a| a == "dsa");
    let dir = Path::new(fashion_mnist::DEFAULT_DIR);
    let train = fashion_mnist::load(dir, Split::Train)?;
    let test = fashion_mnist::load(dir, Split::Test)?;
    let mut reports = Vec::new();
    for run in 0..runs as u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(run);
        let picked: Vec<usize> = train
            .indices_by_class()
            .iter()
            .flat_map(|idx| {
                idx.choose_multiple(&mut rng, ipc)
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect();
        let subset = train.subset(&picked);
        let mut cfg = TrainConfig::dc(Arch::ConvNet { depth: 3 }, epochs, run);
        if dsa {
            cfg.augment = Augment::Dsa;
        }
        let trained = train_and_test(&subset, &test, &cfg, &mut |p| {
            if let Some(acc) = p.test_accuracy {
                println!(
                    "run {run} epoch {}/{} loss {:.4} test {acc:.2} % ({:.0} s)",
                    p.epoch, p.epochs, p.train_loss, p.seconds
                );
            }
        })?;
        let r = &trained.report;
        println!(
            "run {run}: final {:.2} %, best {:.2} % at epoch {}, {:.0} s",
            r.final_accuracy, r.best_accuracy, r.best_epoch, r.seconds
        );
        reports.push(trained.report);
    }
    println!(
        "ipc {ipc}, {epochs} epochs, dsa {dsa}: {}",
        Summary::of(&reports)
    );
    Ok(())
}
