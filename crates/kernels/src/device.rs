//! Devices by name (`cpu`, `cuda:N`): how commands and specs name the device a run computes on.

use candle_core::Device;

/// A device by name; opened (`open`) when a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum DeviceName {
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for DeviceName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "cpu" {
            return Ok(DeviceName::Cpu);
        }
        match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Ok(DeviceName::Cuda(n)),
            _ => Err(format!("`{s}`: expected cpu or cuda:N (e.g. cuda:0)")),
        }
    }
}

impl std::fmt::Display for DeviceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceName::Cpu => write!(f, "cpu"),
            DeviceName::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceName {
    pub fn open(self) -> candle_core::Result<Device> {
        match self {
            DeviceName::Cpu => Ok(Device::Cpu),
            DeviceName::Cuda(_) if !cfg!(feature = "cuda") => Err(candle_core::Error::Msg(format!(
                "device {self}: this dmgd was built without CUDA; build it with `--features cuda` (scripts/build-cuda.sh)"
            ))),
            DeviceName::Cuda(n) => Device::new_cuda(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_bad_names_say_what_is_expected() {
        assert_eq!("cpu".parse::<DeviceName>(), Ok(DeviceName::Cpu));
        assert_eq!("cuda:1".parse::<DeviceName>(), Ok(DeviceName::Cuda(1)));
        assert_eq!(DeviceName::Cuda(1).to_string(), "cuda:1");
        assert!("gpu"
            .parse::<DeviceName>()
            .unwrap_err()
            .contains("cpu or cuda:N"));
        if !cfg!(feature = "cuda") {
            let err = DeviceName::Cuda(0).open().unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
