//! Optimal-transport pieces of DMGD (docs/METHOD.md §6): unit-sphere cost, k-means support points, Sinkhorn with gradients.
//!
//! - [`cost`]: projection onto the unit sphere and the plain Euclidean cost matrix between projected points.
//! - [`kmeans`]: seeded k-means++ / Lloyd on flattened latents, giving a [`support::Support`] (points and masses).
//! - [`support`]: the [`support::Support`] type and its safetensors cache file.
//! - [`sinkhorn`]: the reference's unrolled Sinkhorn iterations, plain and log-domain.
//! - [`guidance`]: the OT loss of Greedy Progressive Matching and its gradient w.r.t. `x0_hat`, single and batched.
//!
//! No model code lives here; everything works on candle tensors (f32 or f64, CPU or CUDA).

pub mod cost;
pub mod guidance;
pub mod kmeans;
pub mod sinkhorn;
pub mod support;

use std::path::PathBuf;

/// Errors of the OT crate.
#[derive(Debug, thiserror::Error)]
pub enum OtError {
    #[error("tensor computation failed")]
    Candle(#[from] candle_core::Error),
    #[error("k-means asked for {k} clusters but only {n} points were given (k must be at most the number of points)")]
    TooManyClusters { k: usize, n: usize },
    #[error("invalid {name} = {value}: {reason}")]
    InvalidParam {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape {
        what: &'static str,
        expected: String,
        got: Vec<usize>,
    },
    #[error("support file {path}: missing tensor `{key}`")]
    MissingKey { key: &'static str, path: PathBuf },
    #[error("support file {path}: unexpected tensors {keys:?}")]
    UnexpectedKeys { keys: Vec<String>, path: PathBuf },
    #[error("support file {path}: could not be read")]
    ReadSupport {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("support file {path}: could not be written")]
    WriteSupport {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
}
