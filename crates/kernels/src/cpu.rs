//! Fast CPU ops with their own backward passes: im2col + GEMM convolution, instance/batch
//! normalisation (optionally fused with ReLU) and pooling. candle's own conv backward is a
//! naive loop (CPU-NOTES.md); these are what make CNN training on a CPU practical.

mod conv2d;
mod gemm;
mod norm;
mod pool;

pub use conv2d::{conv2d, ConvParams};
pub use norm::{batch_mean_var, norm, NormParams, NormStats};
pub use pool::{avg_pool2d, max_pool2d, MaxPoolParams};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Storage};

/// The f32 values of a contiguous CPU tensor argument, or an error naming the op.
fn contiguous_f32<'a>(
    op: &'static str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!(
            "{op}: only f32 tensors are supported, got {:?}",
            storage.dtype()
        )
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: arguments must be contiguous")
    };
    Ok(&data[start..end])
}

/// The f32 values behind a contiguous CPU tensor's storage (from `Tensor::storage_and_layout`).
fn storage_f32<'a>(
    op: &'static str,
    storage: &'a Storage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    match storage {
        Storage::Cpu(cpu) => contiguous_f32(op, cpu, layout),
        _ => candle_core::bail!("{op}: only CPU tensors are supported"),
    }
}
