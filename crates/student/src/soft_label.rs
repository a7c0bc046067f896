//! The soft-label protocol's loss and schedule (docs/METHOD.md §10): the student matches the
//! teacher's tempered softmax of the same (CutMix-ed) batch under KL divergence, and the
//! learning rate follows a half cosine.

use candle_core::{Result, Tensor, D};

/// KL(teacher || student) at temperature `t`, averaged over the batch (PyTorch's
/// `KLDivLoss(reduction="batchmean")` of `log_softmax(student / t)` against
/// `softmax(teacher / t)`), without the t² factor of distillation papers, as RDED trains.
/// `student` and `teacher` are logits (B, K); no gradient flows into `teacher`.
pub fn soft_label_kl(student: &Tensor, teacher: &Tensor, t: f64) -> Result<Tensor> {
    let b = student.dim(0)? as f64;
    let log_q = candle_nn::ops::log_softmax(&(student / t)?, D::Minus1)?; // (B, K)
    let log_p = candle_nn::ops::log_softmax(&(teacher.detach() / t)?, D::Minus1)?;
    let p = log_p.exp()?;
    // sum_bk p (log p - log q) / B; softmax probabilities are positive, so no 0 log 0 terms.
    (p * (log_p - log_q)?)?.sum_all()? / b
}

/// RDED's per-epoch learning-rate factor: `0.5 (1 + cos(pi e / (2 E)))` for epoch `e` of `E`,
/// which falls from 1 to 0.5 (not to 0), and 0 after the last epoch.
pub fn half_cosine(epoch: usize, epochs: usize) -> f64 {
    if epoch > epochs {
        return 0.0;
    }
    0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / (2.0 * epochs as f64)).cos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The loss and its gradient computed by hand in f64: KL = mean_b sum_k p (log p - log q),
    /// d KL / d z_student = (q - p) / (T B).
    #[test]
    fn kl_and_its_gradient_match_values_computed_by_hand() {
        let (zs, zt, temp) = (
            [[1.0f64, -0.5, 2.0], [0.0, 0.3, -1.2]],
            [[0.5f64, 0.5, 3.0], [-1.0, 2.0, 0.1]],
            2.0,
        );
        let softmax = |z: &[f64; 3]| {
            let e: Vec<f64> = z.iter().map(|v| (v / temp).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect::<Vec<f64>>()
        };
        let mut expected = 0.0;
        let mut expected_grad = vec![];
        for (s, t) in zs.iter().zip(&zt) {
            let (q, p) = (softmax(s), softmax(t));
            expected += p
                .iter()
                .zip(&q)
                .map(|(p, q)| p * (p.ln() - q.ln()))
                .sum::<f64>()
                / 2.0;
            expected_grad.extend(q.iter().zip(&p).map(|(q, p)| (q - p) / (temp * 2.0)));
        }
        let dev = Device::Cpu;
        let to_tensor = |z: [[f64; 3]; 2]| {
            Tensor::from_vec(z.concat().iter().map(|&v| v as f32).collect(), (2, 3), &dev).unwrap()
        };
        let student = Var::from_tensor(&to_tensor(zs)).unwrap();
        let teacher = to_tensor(zt);
        let loss = soft_label_kl(student.as_tensor(), &teacher, temp).unwrap();
        let got = loss.to_scalar::<f32>().unwrap() as f64;
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
        let grads = loss.backward().unwrap();
        let grad: Vec<f32> = grads
            .get(student.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (g, e) in grad.iter().zip(&expected_grad) {
            assert!(
                (*g as f64 - e).abs() < 1e-6,
                "{grad:?} vs {expected_grad:?}"
            );
        }
        // Equal logits: nothing to learn.
        let same = soft_label_kl(&teacher, &teacher, temp).unwrap();
        assert!(same.to_scalar::<f32>().unwrap().abs() < 1e-7);
    }

    #[test]
    fn the_schedule_falls_from_one_to_half() {
        assert_eq!(half_cosine(0, 300), 1.0);
        assert!((half_cosine(300, 300) - 0.5).abs() < 1e-12);
        // e = E / 2: 0.5 (1 + cos(pi / 4)) = 0.5 + sqrt(2) / 4.
        assert!((half_cosine(150, 300) - (0.5 + 2f64.sqrt() / 4.0)).abs() < 1e-12);
        assert_eq!(half_cosine(301, 300), 0.0);
    }
}
