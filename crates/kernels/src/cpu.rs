//! Access to the f32 values behind CPU tensors, for the kernels' `cpu_fwd`s.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Storage};

/// The f32 values of a contiguous CPU tensor argument, or an error naming the op.
pub(crate) fn contiguous_f32<'a>(
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
pub(crate) fn storage_f32<'a>(
    op: &'static str,
    storage: &'a Storage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    match storage {
        Storage::Cpu(cpu) => contiguous_f32(op, cpu, layout),
        _ => candle_core::bail!("{op}: only CPU tensors are supported"),
    }
}

/// The contiguous f32 values of a CPU storage, or an error naming the op.
pub(crate) fn f32_slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: expects a contiguous input"),
    }
}
