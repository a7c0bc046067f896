//! `dmgd select` (under construction).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`dmgd select` is not built yet")
}
