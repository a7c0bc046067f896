//! `dmgd sample` (under construction).

use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    bail!("`dmgd sample` is not built yet")
}

/// `cpu` or `cuda:N`.
pub fn parse_device(name: &str) -> Result<candle_core::Device> {
    if name == "cpu" {
        return Ok(candle_core::Device::Cpu);
    }
    if let Some(n) = name
        .strip_prefix("cuda:")
        .and_then(|n| n.parse::<usize>().ok())
    {
        return Ok(candle_core::Device::new_cuda(n)?);
    }
    bail!("unknown device {name:?}: expected cpu or cuda:N")
}
