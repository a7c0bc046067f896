//! `dmgd`: training-free dataset distillation with diffusion models.

mod allocator;
mod commands;
mod dataset;
mod model_args;
mod output_args;
mod progress;
mod settings;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
    Score(commands::score::Args),
    DeviceCheck(commands::device_check::Args),
}

fn main() {
    allocator::keep_freed_memory();
    let cli = Cli::from_arg_matches(&Cli::command().get_matches()).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Pretrain(args) => commands::pretrain::run(args),
        Command::Sample(args) => commands::sample::run(args),
        Command::Distill(args) => commands::distill::run(args),
        Command::Select(args) => commands::select::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Quality(args) => commands::quality::run(args),
        Command::Score(args) => commands::score::run(args),
        Command::DeviceCheck(args) => commands::device_check::run(args),
    };
    if let Err(err) = result {
        for line in error_lines(&err) {
            eprintln!("{line}");
        }
        std::process::exit(1);
    }
}

/// The error and its causes, one line each; a cause whose text the line above already holds
/// (variants that print their source in their own message) is not printed again.
fn error_lines(err: &anyhow::Error) -> Vec<String> {
    let mut lines = vec![format!("error: {err}")];
    let mut shown = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !shown.contains(&text) {
            lines.push(format!("  caused by: {text}"));
        }
        shown = text;
    }
    lines
}
