//! Optimisers with PyTorch semantics: SGD with momentum and (coupled) weight decay, and AdamW.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use candle_nn::Optimizer as _;

/// Which optimiser and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// torch.optim.SGD(lr, momentum, weight_decay), dampening 0, no Nesterov.
    Sgd {
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    },
    /// torch.optim.AdamW(lr, weight_decay), betas (0.9, 0.999), eps 1e-8.
    AdamW { lr: f64, weight_decay: f64 },
}

impl OptimizerKind {
    pub fn lr(&self) -> f64 {
        match *self {
            OptimizerKind::Sgd { lr, .. } | OptimizerKind::AdamW { lr, .. } => lr,
        }
    }
}

/// torch SGD: g = grad + wd * p; buf = g on the first step, else momentum * buf + g; p -= lr * buf.
pub struct Sgd {
    vars: Vec<Var>,
    buffers: Vec<Option<Tensor>>,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
}

impl Sgd {
    pub fn new(vars: Vec<Var>, lr: f64, momentum: f64, weight_decay: f64) -> Self {
        let buffers = vec![None; vars.len()];
        Sgd {
            vars,
            buffers,
            lr,
            momentum,
            weight_decay,
        }
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        for (var, buffer) in self.vars.iter().zip(&mut self.buffers) {
            let Some(grad) = grads.get(var) else { continue };
            // Detached: a buffer that kept the graph alive grew one run to 24 GB (docs/BENCH-student.md).
            let mut g = grad.detach();
            if self.weight_decay != 0.0 {
                g = (g + (var.as_tensor().detach() * self.weight_decay)?)?;
            }
            if self.momentum != 0.0 {
                g = match buffer.take() {
                    None => g,
                    Some(b) => ((b * self.momentum)? + g)?,
                };
                *buffer = Some(g.clone());
            }
            var.set(&(var.as_tensor().detach() - (g * self.lr)?)?)?;
        }
        Ok(())
    }
}

/// The optimiser of one training run; the learning rate can change between steps.
pub enum Optimizer {
    Sgd(Sgd),
    AdamW(candle_nn::AdamW),
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, vars: Vec<Var>) -> Result<Self> {
        Ok(match kind {
            OptimizerKind::Sgd {
                lr,
                momentum,
                weight_decay,
            } => Optimizer::Sgd(Sgd::new(vars, lr, momentum, weight_decay)),
            OptimizerKind::AdamW { lr, weight_decay } => {
                let params = candle_nn::ParamsAdamW {
                    lr,
                    weight_decay,
                    ..Default::default()
                };
                Optimizer::AdamW(candle_nn::AdamW::new(vars, params)?)
            }
        })
    }

    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Optimizer::Sgd(sgd) => sgd.lr = lr,
            Optimizer::AdamW(adam) => adam.set_learning_rate(lr),
        }
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        match self {
            Optimizer::Sgd(sgd) => sgd.step(grads),
            Optimizer::AdamW(adam) => adam.step(grads),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Oracle (torch 2.15):
    /// ```python
    /// p = torch.tensor([1.0, -2.0], requires_grad=True); c = torch.tensor([0.5, 3.0])
    /// o = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)   # or AdamW(lr=0.1, weight_decay=0.01)
    /// for i in range(3):
    ///     o.zero_grad(); (p * c * p).sum().backward(); o.step()
    /// print(p.tolist())   # SGD [0.26312503, 1.78625]; AdamW [0.69891125, -1.69494462]
    /// ```
    #[test]
    fn three_steps_match_torch() {
        let c = Tensor::new(&[0.5f32, 3.0], &Device::Cpu).unwrap();
        let kinds = [
            (
                OptimizerKind::Sgd {
                    lr: 0.1,
                    momentum: 0.9,
                    weight_decay: 0.5,
                },
                [0.263_125_03f32, 1.786_25],
            ),
            (
                OptimizerKind::AdamW {
                    lr: 0.1,
                    weight_decay: 0.01,
                },
                [0.698_911_25, -1.694_944_6],
            ),
        ];
        for (kind, expected) in kinds {
            let p = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
            let mut opt = Optimizer::new(kind, vec![p.clone()]).unwrap();
            for _ in 0..3 {
                let loss = (p.as_tensor() * &c)
                    .unwrap()
                    .mul(p.as_tensor())
                    .unwrap()
                    .sum_all()
                    .unwrap();
                opt.step(&loss.backward().unwrap()).unwrap();
            }
            let got = p.as_tensor().to_vec1::<f32>().unwrap();
            for (g, e) in got.iter().zip(expected) {
                assert!((g - e).abs() < 1e-5, "{kind:?}: {got:?} vs {expected:?}");
            }
            if let Optimizer::Sgd(sgd) = &opt {
                // The momentum buffer must not hold on to an autograd graph.
                assert!(!sgd.buffers[0].as_ref().unwrap().track_op());
            }
        }
    }
}
