//! The flags that say where a run's output goes and what to do with an earlier run there,
//! shared by `sample`, `distill` and `eval`.

use dmgd_run::Existing;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct OutputArgs {
    /// Output directory. Default: derived from the settings, under runs/ (runs with other
    /// settings, models or data get other folders).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Finish an interrupted run in --out, keeping what it finished: refused, naming the keys,
    /// unless every setting, model and input equals the stored one.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Replace the results in --out (with --shard, that shard's share only).
    #[arg(long)]
    pub overwrite: bool,
}

impl OutputArgs {
    /// --out, or `default` when it is not given.
    pub fn dir(&self, default: impl FnOnce() -> PathBuf) -> PathBuf {
        self.out.clone().unwrap_or_else(default)
    }

    pub fn existing(&self) -> Existing {
        Existing::from_flags(self.resume, self.overwrite)
    }
}
