//! The students' optimisers with PyTorch semantics: SGD with momentum and (coupled) weight
//! decay, and AdamW (decoupled weight decay; the in-place kernel of `adamw`).

use crate::adamw::AdamW;
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

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
    /// Whether each variable is decayed (a torch parameter group with weight_decay 0 if not).
    decays: Vec<bool>,
    buffers: Vec<Option<Tensor>>,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
}

impl Sgd {
    pub fn new(
        vars: Vec<Var>,
        decays: Vec<bool>,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    ) -> Self {
        let buffers = vec![None; vars.len()];
        Sgd {
            vars,
            decays,
            buffers,
            lr,
            momentum,
            weight_decay,
        }
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        for ((var, buffer), &decay) in self.vars.iter().zip(&mut self.buffers).zip(&self.decays) {
            let Some(grad) = grads.get(var) else { continue };
            // Detached: a buffer that kept the graph alive grew one run to 24 GB (docs/BENCH-student.md).
            let mut g = grad.detach();
            if decay && self.weight_decay != 0.0 {
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

/// AdamW over a set of variables: its moments and step count.
pub struct AdamWState {
    vars: Vec<Var>,
    decays: Vec<bool>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: i32,
    lr: f64,
    weight_decay: f64,
}

impl AdamWState {
    pub fn new(vars: Vec<Var>, decays: Vec<bool>, lr: f64, weight_decay: f64) -> Result<Self> {
        let zeros = |var: &Var| var.as_tensor().zeros_like();
        let m = vars.iter().map(zeros).collect::<Result<Vec<_>>>()?;
        let v = vars.iter().map(zeros).collect::<Result<Vec<_>>>()?;
        Ok(AdamWState {
            vars,
            decays,
            m,
            v,
            step: 0,
            lr,
            weight_decay,
        })
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        // torch.optim.AdamW's defaults.
        let adamw = AdamW {
            lr: self.lr,
            weight_decay: self.weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: self.step,
        };
        let undecayed = AdamW {
            weight_decay: 0.0,
            ..adamw
        };
        for (k, var) in self.vars.iter().enumerate() {
            if let Some(g) = grads.get(var) {
                let rule = if self.decays[k] { &adamw } else { &undecayed };
                rule.update(var, &mut self.m[k], &mut self.v[k], &g.detach())?;
            }
        }
        Ok(())
    }
}

/// The optimiser of one training run; the learning rate can change between steps.
pub enum Optimizer {
    Sgd(Sgd),
    AdamW(AdamWState),
}

impl Optimizer {
    /// Every variable decayed.
    pub fn new(kind: OptimizerKind, vars: Vec<Var>) -> Result<Self> {
        let decays = vec![true; vars.len()];
        Self::with_decays(kind, vars, decays)
    }

    /// Weight decay only on the variables whose entry of `decays` is true (the others form a
    /// torch parameter group with weight_decay 0).
    pub fn with_decays(kind: OptimizerKind, vars: Vec<Var>, decays: Vec<bool>) -> Result<Self> {
        assert_eq!(vars.len(), decays.len(), "one decay flag per variable");
        Ok(match kind {
            OptimizerKind::Sgd {
                lr,
                momentum,
                weight_decay,
            } => Optimizer::Sgd(Sgd::new(vars, decays, lr, momentum, weight_decay)),
            OptimizerKind::AdamW { lr, weight_decay } => {
                Optimizer::AdamW(AdamWState::new(vars, decays, lr, weight_decay)?)
            }
        })
    }

    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Optimizer::Sgd(sgd) => sgd.lr = lr,
            Optimizer::AdamW(adam) => adam.lr = lr,
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

    /// A variable left out of decay moves as under weight decay 0, one decayed as under the
    /// full rate: two parameter groups in one optimiser equal two separate optimisers.
    #[test]
    fn decay_applies_only_where_asked() {
        let run = |vars: Vec<Var>, decays: Vec<bool>, wd: f64| {
            for kind in [
                OptimizerKind::AdamW {
                    lr: 0.1,
                    weight_decay: wd,
                },
                OptimizerKind::Sgd {
                    lr: 0.1,
                    momentum: 0.9,
                    weight_decay: wd,
                },
            ] {
                let fresh: Vec<Var> = vars
                    .iter()
                    .map(|v| Var::from_tensor(&v.as_tensor().copy().unwrap()).unwrap())
                    .collect();
                let mut opt = Optimizer::with_decays(kind, fresh.clone(), decays.clone()).unwrap();
                for _ in 0..3 {
                    let mut loss = Tensor::new(0f32, &Device::Cpu).unwrap();
                    for v in &fresh {
                        loss = (loss + v.as_tensor().sqr().unwrap().sum_all().unwrap()).unwrap();
                    }
                    opt.step(&loss.backward().unwrap()).unwrap();
                }
                vars.iter()
                    .zip(&fresh)
                    .for_each(|(v, f)| v.set(f.as_tensor()).unwrap());
            }
            vars.iter()
                .map(|v| v.as_tensor().to_vec1::<f32>().unwrap())
                .collect::<Vec<_>>()
        };
        let var = |x: &[f32]| Var::new(x, &Device::Cpu).unwrap();
        let (a, b) = ([1.0f32, -2.0], [0.5f32, 3.0]);
        let grouped = run(vec![var(&a), var(&b)], vec![true, false], 0.5);
        let decayed = run(vec![var(&a)], vec![true], 0.5);
        let plain = run(vec![var(&b)], vec![true], 0.0);
        assert_eq!(grouped, vec![decayed[0].clone(), plain[0].clone()]);
        assert_ne!(grouped[1], run(vec![var(&b)], vec![true], 0.5)[0]);
    }

    /// The in-place AdamW gives candle's own AdamW, bit for bit (the students used it before).
    #[test]
    fn adamw_gives_candles_bits() {
        use candle_nn::Optimizer as _;
        let values: Vec<f32> = (0..1000)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let target = Tensor::new(
            values.iter().map(|x| x.sin()).collect::<Vec<f32>>(),
            &Device::Cpu,
        )
        .unwrap();
        let ours = Var::new(values.as_slice(), &Device::Cpu).unwrap();
        let theirs = Var::new(values.as_slice(), &Device::Cpu).unwrap();
        let mut a = Optimizer::new(
            OptimizerKind::AdamW {
                lr: 1e-3,
                weight_decay: 0.01,
            },
            vec![ours.clone()],
        )
        .unwrap();
        let params = candle_nn::ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.01,
            ..Default::default()
        };
        let mut b = candle_nn::AdamW::new(vec![theirs.clone()], params).unwrap();
        for step in 0..5 {
            let loss = |p: &Var| {
                (p.as_tensor() - &target)
                    .unwrap()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
            };
            a.step(&loss(&ours).backward().unwrap()).unwrap();
            b.step(&loss(&theirs).backward().unwrap()).unwrap();
            if step == 2 {
                a.set_lr(5e-4);
                b.set_learning_rate(5e-4);
            }
        }
        let (x, y) = (
            ours.as_tensor().to_vec1::<f32>().unwrap(),
            theirs.as_tensor().to_vec1::<f32>().unwrap(),
        );
        assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()));
    }
}
