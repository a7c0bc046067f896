//! dmgd's own tensor ops, each with its backward pass, and its in-place optimizer kernels:
//! the one crate where device dispatch lives. Each op runs a fused kernel on the CPU and
//! falls back to composed candle ops (the same maths) on other devices.
//!
//! - DiT: attention, tanh-GELU, LayerNorm without affine, softmax, adaLN broadcasts (`dit`);
//! - students: im2col + GEMM convolution, instance / batch norm (with ReLU), pooling
//!   (`conv2d`, `norm`, `pool`; candle's conv backward is a naive loop, docs/BENCH-student.md);
//! - AdamW and the EMA of weights, in place (`adamw`), and the students' optimisers (`optim`);
//! - reading safetensors weights with a clear error for a file that is not one (`weights`).

pub mod adamw;
pub mod attention;
pub mod composed;
pub mod conv2d;
mod cpu;
pub mod device;
pub mod dit;
mod gemm;
pub mod norm;
pub mod optim;
pub mod pool;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod weights;

pub use conv2d::{conv2d, ConvParams};
pub use device::{DeviceName, Precision};
pub use norm::{batch_mean_var, norm, NormParams, NormStats};
pub use pool::{avg_pool2d, max_pool2d, MaxPoolParams};
