//! `dmgd`: training-free dataset distillation with diffusion models.

mod allocator;
mod commands;
mod dataset;
mod manifest;

use clap::{Parser, Subcommand};

// mimalloc, set up by `allocator` (why: there).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
// Each subcommand's help (summary and long text) is the doc comment of its `Args`.
enum Command {
    Pretrain(commands::pretrain::Args),
    Sample(commands::sample::Args),
    Distill(commands::distill::Args),
    Select(commands::select::Args),
    Eval(commands::eval::Args),
    Quality(commands::quality::Args),
}

fn main() {
    allocator::keep_freed_memory();
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
