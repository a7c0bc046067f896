//! `dmgd`: training-free dataset distillation with diffusion models.

mod commands;
mod dataset;
mod manifest;

use clap::{Parser, Subcommand};

/// Training-free dataset distillation with diffusion models (DMGD).
///
/// A labelled image set and a class-conditional diffusion model in, a small synthetic
/// training set (a few images per class) out, plus the evaluation that measures it.
#[derive(Parser)]
#[command(name = "dmgd", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a class-conditional DiT on a dataset (for data no public model covers).
    Pretrain(commands::pretrain::Args),
    /// Plain class-conditional sampling from a DiT into an ImageFolder (the `dit` baseline).
    Sample(commands::sample::Args),
    /// Distill a labelled image set into a few synthetic images per class (DMGD and baselines).
    Distill(commands::distill::Args),
    /// Pick real images per class (random, herding or k-center) into an ImageFolder.
    Select(commands::select::Args),
    /// Train fresh student networks on a set and test them on the real test split.
    Eval(commands::eval::Args),
    /// Judge generated images with a classifier trained on real data (agreement, Fréchet distance).
    Quality(commands::quality::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pretrain(args) => commands::pretrain::run(args),
        Command::Sample(args) => commands::sample::run(args),
        Command::Distill(args) => commands::distill::run(args),
        Command::Select(args) => commands::select::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Quality(args) => commands::quality::run(args),
    };
    if let Err(err) = result {
        eprintln!("error: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}
