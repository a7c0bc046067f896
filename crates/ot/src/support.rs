//! The support of a class distribution (Distribution Approximate Matching): K points with masses, and its cache file.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::OtError;

/// K support points with their masses, e.g. k-means centres with m_k = cluster size / N.
///
/// Invariants (checked by [`Support::new`] and [`Support::load`]): `points` is `(K, D)` with
/// K >= 1, `masses` is `(K)` with the same dtype and device. The masses from
/// [`crate::kmeans::kmeans`] are positive and sum to 1 up to rounding.
#[derive(Debug, Clone)]
pub struct Support {
    points: Tensor,
    masses: Tensor,
}

impl Support {
    /// Safetensors key of the points (equal to the field name).
    pub const POINTS_KEY: &'static str = "points";
    /// Safetensors key of the masses (equal to the field name).
    pub const MASSES_KEY: &'static str = "masses";

    /// Builds a support from `(K, D)` points and `(K)` masses (cast to the points' dtype).
    pub fn new(points: Tensor, masses: Tensor) -> Result<Self, OtError> {
        let (k, _) = points.dims2().map_err(|_| OtError::Shape {
            what: "support points",
            expected: "(K, D)".into(),
            got: points.dims().to_vec(),
        })?;
        if k == 0 {
            return Err(OtError::Shape {
                what: "support points",
                expected: "(K, D) with K >= 1".into(),
                got: points.dims().to_vec(),
            });
        }
        if masses.dims() != [k] {
            return Err(OtError::Shape {
                what: "support masses",
                expected: format!("[{k}]"),
                got: masses.dims().to_vec(),
            });
        }
        let masses = masses
            .to_dtype(points.dtype())?
            .to_device(points.device())?;
        Ok(Self { points, masses })
    }

    /// The support points, `(K, D)`.
    pub fn points(&self) -> &Tensor {
        &self.points
    }

    /// The masses, `(K)`.
    pub fn masses(&self) -> &Tensor {
        &self.masses
    }

    /// Number of support points K.
    pub fn len(&self) -> usize {
        self.points.dims()[0]
    }

    /// Always false: a support has at least one point.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dimension D of the (flattened) points.
    pub fn dim(&self) -> usize {
        self.points.dims()[1]
    }

    /// The same support in another dtype and on another device.
    pub fn to(&self, dtype: DType, device: &Device) -> Result<Self, OtError> {
        Ok(Self {
            points: self.points.to_dtype(dtype)?.to_device(device)?,
            masses: self.masses.to_dtype(dtype)?.to_device(device)?,
        })
    }

    /// Writes the support as a safetensors file with the tensors `points` and `masses`.
    pub fn save(&self, path: &Path) -> Result<(), OtError> {
        let tensors = HashMap::from([
            (Self::POINTS_KEY, self.points.clone()),
            (Self::MASSES_KEY, self.masses.clone()),
        ]);
        candle_core::safetensors::save(&tensors, path).map_err(|source| OtError::WriteSupport {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a support written by [`Support::save`] onto `device`, checking keys and shapes.
    pub fn load(path: &Path, device: &Device) -> Result<Self, OtError> {
        let mut tensors = candle_core::safetensors::load(path, device).map_err(|source| {
            OtError::ReadSupport {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let mut take = |key: &'static str| {
            tensors.remove(key).ok_or_else(|| OtError::MissingKey {
                key,
                path: path.to_path_buf(),
            })
        };
        let points = take(Self::POINTS_KEY)?;
        let masses = take(Self::MASSES_KEY)?;
        if !tensors.is_empty() {
            let mut keys: Vec<String> = tensors.into_keys().collect();
            keys.sort();
            return Err(OtError::UnexpectedKeys {
                keys,
                path: path.to_path_buf(),
            });
        }
        Self::new(points, masses)
    }
}
