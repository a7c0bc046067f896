//! What one training run reports, and mean ± std over repeated runs.

use crate::protocol::TrainConfig;
use serde::{Deserialize, Serialize};

/// Progress of a run, reported after every epoch.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// 1-based: the number of epochs done.
    pub epoch: usize,
    pub epochs: usize,
    pub lr: f64,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Test accuracy in percent, when this epoch was a test epoch.
    pub test_accuracy: Option<f64>,
    pub seconds: f64,
}

/// The outcome of one run. Accuracies are percentages on the full test set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub config: TrainConfig,
    pub num_params: usize,
    pub train_images: usize,
    pub test_images: usize,
    /// Accuracy after the last epoch (the DC protocol's number).
    pub final_accuracy: f64,
    /// Best accuracy over the test epochs (what the Minimax peers report; optimistic).
    pub best_accuracy: f64,
    pub best_epoch: usize,
    /// (epochs done, test accuracy) at every test epoch.
    pub curve: Vec<(usize, f64)>,
    pub seconds: f64,
}

/// Mean and **sample** standard deviation (n - 1 denominator; 0 for a single run).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

impl MeanStd {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return MeanStd {
                mean: f64::NAN,
                std: f64::NAN,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        MeanStd { mean, std }
    }
}

impl std::fmt::Display for MeanStd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} ± {:.2}", self.mean, self.std)
    }
}

/// Mean ± sample std of final and best accuracy over repeated runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub runs: usize,
    pub final_accuracy: MeanStd,
    pub best_accuracy: MeanStd,
}

impl Summary {
    pub fn of(reports: &[RunReport]) -> Self {
        let finals: Vec<f64> = reports.iter().map(|r| r.final_accuracy).collect();
        let bests: Vec<f64> = reports.iter().map(|r| r.best_accuracy).collect();
        Summary {
            runs: reports.len(),
            final_accuracy: MeanStd::of(&finals),
            best_accuracy: MeanStd::of(&bests),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "final {} %, best {} % (mean ± sample std over {} runs)",
            self.final_accuracy, self.best_accuracy, self.runs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_std_uses_n_minus_one() {
        let m = MeanStd::of(&[80.0, 82.0, 84.0]);
        assert_eq!(m.mean, 82.0);
        assert!((m.std - 2.0).abs() < 1e-12); // sqrt((4 + 0 + 4) / 2)
        assert_eq!(MeanStd::of(&[70.0]).std, 0.0);
        assert_eq!(m.to_string(), "82.00 ± 2.00");
    }
}
