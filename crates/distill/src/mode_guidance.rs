//! mgd3's mode guidance (docs/METHOD.md §7): the posterior mean of image k is pulled toward mode k.
//!
//! mean <- mean + lambda * (mode - x0_hat) * sigma_t, while the respaced index is above stop_t
//! (reference: lambda 0.1, stop_t 25 of 50 steps). The modes are k-means centres with K = IPC
//! (`dmgd_ot::kmeans::kmeans`); no gradient is involved.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::{scale_step_index, DistillConfig};

/// Parameters of mode guidance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModeGuidanceParams {
    /// Strength lambda of the pull.
    pub lambda: f64,
    /// Guidance acts while the respaced index is above this; given for 50 steps and mapped
    /// proportionally for other step counts ([`scale_step_index`]).
    pub stop_t: usize,
}

impl Default for ModeGuidanceParams {
    fn default() -> Self {
        Self {
            lambda: 0.1,
            stop_t: 25,
        }
    }
}

impl ModeGuidanceParams {
    /// The mode-guidance knobs of a resolved run configuration.
    pub fn from_config(config: &DistillConfig) -> Self {
        Self {
            lambda: config.mode_lambda,
            stop_t: config.mode_stop,
        }
    }

    /// Whether guidance acts at respaced `index` of a `steps`-step sampler.
    pub fn is_active(&self, index: usize, steps: usize) -> bool {
        index > scale_step_index(self.stop_t, steps)
    }

    /// The shift lambda * (mode - x0_hat) * sigma_t to add to the posterior mean, or `None` when
    /// guidance is off at this step.
    ///
    /// `x0_hat` is `(N, C, H, W)` (or any shape); `mode` and `sigma_t` broadcast against it
    /// (`mode` one `(C, H, W)` centre or `(N, C, H, W)` one per image; `sigma_t` the per-element
    /// exp(0.5 log sigma^2) of the learned variance, or a scalar tensor).
    pub fn shift(
        &self,
        index: usize,
        steps: usize,
        x0_hat: &Tensor,
        mode: &Tensor,
        sigma_t: &Tensor,
    ) -> Result<Option<Tensor>> {
        if !self.is_active(index, steps) {
            return Ok(None);
        }
        let pull = mode.broadcast_sub(x0_hat)?.affine(self.lambda, 0.0)?; // (N, C, H, W)
        Ok(Some(pull.broadcast_mul(sigma_t)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn shift_is_lambda_times_pull_times_sigma_above_stop() {
        let dev = Device::Cpu;
        // Two images (N = 2) of shape (1, 1, 3); one mode per image; per-element sigma.
        let x0_hat = Tensor::new(&[[[[1.0f64, -2.0, 0.5]]], [[[0.0, 4.0, -1.0]]]], &dev).unwrap();
        let mode = Tensor::new(&[[[[3.0f64, 0.0, 0.5]]], [[[1.0, 1.0, 1.0]]]], &dev).unwrap();
        let sigma = Tensor::new(&[[[[0.5f64, 1.0, 2.0]]], [[[0.1, 0.2, 0.3]]]], &dev).unwrap();
        let p = ModeGuidanceParams::default();
        let shift = p
            .shift(26, 50, &x0_hat, &mode, &sigma)
            .unwrap()
            .expect("index 26 > 25 is active");
        let want = [
            0.1 * 2.0 * 0.5,
            0.1 * 2.0 * 1.0,
            0.0,
            0.1 * 1.0 * 0.1,
            0.1 * -3.0 * 0.2,
            0.1 * 2.0 * 0.3,
        ];
        let got = shift.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{got:?} vs {want:?}");
        }
        assert!(p.shift(25, 50, &x0_hat, &mode, &sigma).unwrap().is_none());
        assert!(p.shift(0, 50, &x0_hat, &mode, &sigma).unwrap().is_none());

        // One shared mode and a scalar sigma broadcast over the batch.
        let shared = p
            .shift(
                49,
                50,
                &x0_hat,
                &mode.get(0).unwrap(),
                &Tensor::new(2.0f64, &dev).unwrap(),
            )
            .unwrap()
            .unwrap();
        let first = shared
            .get(1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        assert_eq!(
            first,
            vec![0.1 * 3.0 * 2.0, 0.1 * -4.0 * 2.0, 0.1 * 1.5 * 2.0]
        );
        assert_eq!(shared.dtype(), DType::F64);
    }

    #[test]
    fn stop_index_maps_to_other_step_counts() {
        let p = ModeGuidanceParams::default();
        // 25 of 50 is 51 of 100 (25 * 99 / 49 = 50.5 -> 51) and 12 of 25 (25 * 24 / 49 = 12.2).
        assert!(!p.is_active(51, 100) && p.is_active(52, 100));
        assert!(!p.is_active(12, 25) && p.is_active(13, 25));
        assert_eq!(
            ModeGuidanceParams::from_config(&DistillConfig::default()),
            p
        );
    }
}
