//! The teacher of soft-label evaluation: a network trained on the full real data, read
//! strictly from a file `dmgd eval --save-nets` wrote (safetensors) or from a PyTorch state
//! dict (`.pt` / `.pth`, e.g. torchvision's ResNet-18 with batch norm and its key names),
//! whose pickle is read as data and refused when it names anything but tensor rebuilding.

use crate::EvalError;
use candle_core::Device;
use dmgd_data::ImageShape;
use dmgd_student::nets::{Arch, Net, NetSpec, NormKind};
use dmgd_student::Teacher;
use std::path::Path;

/// The teacher `net` in `path` for `input` images of `num_classes` classes, on `device`, and
/// its record (with the file's hash, so that a resumed evaluation with another teacher file
/// is refused). Its norm follows the file: batch norm when it holds running statistics.
pub fn load(
    path: &Path,
    net: Arch,
    input: ImageShape,
    num_classes: usize,
    device: &Device,
) -> Result<(Teacher, Net), EvalError> {
    let sha256 = dmgd_run::sha256_file(path)?;
    // The caller names the teacher; the reader's error names the file.
    let tensors = dmgd_diffusion::checkpoint::read_tensors(path, &Device::Cpu)?;
    let norm = if tensors.keys().any(|k| k.ends_with(".running_mean")) {
        NormKind::Batch
    } else {
        NormKind::Instance
    };
    let spec = NetSpec {
        arch: net,
        norm,
        input,
        num_classes,
    };
    let teacher = Net::from_tensors(spec, &tensors, path, device)?;
    let record = Teacher {
        net,
        norm,
        path: path.display().to_string(),
        sha256,
    };
    Ok((record, teacher))
}
