//! `dmgd pretrain` (under construction).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`dmgd pretrain` is not built yet")
}
