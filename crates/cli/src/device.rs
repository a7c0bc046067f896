//! `--device cpu|cuda:N`: one value parser for every computing command.

use anyhow::Result;
use candle_core::Device;

/// A device named on the command line; opened (`open`) when the command starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum DeviceArg {
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "cpu" {
            return Ok(DeviceArg::Cpu);
        }
        match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(DeviceArg::Cuda(n)),
            _ => Err(format!("`{s}`: expected cpu or cuda:N (e.g. cuda:0)")),
        }
    }
}

impl std::fmt::Display for DeviceArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceArg::Cpu => write!(f, "cpu"),
            DeviceArg::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceArg {
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceArg::Cpu => Ok(Device::Cpu),
            DeviceArg::Cuda(_) if !cfg!(feature = "cuda") => anyhow::bail!(
                "--device {self}: this dmgd was built without CUDA; build it with `--features cuda` (scripts/build-cuda.sh)"
            ),
            DeviceArg::Cuda(n) => Ok(Device::new_cuda(n)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_bad_names_say_what_is_expected() {
        assert_eq!("cpu".parse::<DeviceArg>(), Ok(DeviceArg::Cpu));
        assert_eq!("cuda:1".parse::<DeviceArg>(), Ok(DeviceArg::Cuda(1)));
        assert!("gpu"
            .parse::<DeviceArg>()
            .unwrap_err()
            .contains("cpu or cuda:N"));
        if !cfg!(feature = "cuda") {
            let err = DeviceArg::Cuda(0).open().unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
