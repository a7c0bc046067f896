//! Devices by name (`cpu`, `cuda:N`): how commands and specs name the device a run computes on.

use candle_core::Device;

/// A device by name; opened (`open`) when a run starts. Serialised as its name (`cuda:0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceName {
    #[default]
    Cpu,
    Cuda(usize),
}

impl serde::Serialize for DeviceName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
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

/// The precision of the DiT's arithmetic: strict `f32`; `tf32`, f32 tensors whose matrix
/// products run on TF32 tensor cores (10-bit mantissas, as DiT's official sample.py samples;
/// CUDA only); or `bf16`, weights and activations in bfloat16 (8-bit mantissas), the
/// diffusion arithmetic around the model in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    #[default]
    F32,
    Tf32,
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "tf32" => Ok(Precision::Tf32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("`{s}`: expected f32, tf32 or bf16")),
        }
    }
}

impl Precision {
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    /// The dtype of the model's weights and activations.
    pub fn dtype(self) -> candle_core::DType {
        match self {
            Precision::Bf16 => candle_core::DType::BF16,
            Precision::F32 | Precision::Tf32 => candle_core::DType::F32,
        }
    }

    /// Sets the precision of this process's CUDA f32 matrix products; TF32 is refused on the
    /// CPU, where it would change nothing while the record said otherwise. (bf16 runs
    /// anywhere: on the CPU slowly, as a check.)
    pub fn apply(self, device: DeviceName) -> candle_core::Result<()> {
        if self == Precision::Tf32 && device.is_cpu() {
            candle_core::bail!("precision tf32 applies to CUDA devices; the CPU computes in f32");
        }
        candle_core::cuda::set_gemm_reduced_precision_f32(self == Precision::Tf32);
        Ok(())
    }
}

impl DeviceName {
    pub fn is_cpu(&self) -> bool {
        *self == DeviceName::Cpu
    }

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
