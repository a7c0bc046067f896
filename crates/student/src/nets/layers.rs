//! The building blocks of the student nets: parameter creation with seeded PyTorch-default
//! initialisation, convolution, normalisation and linear layers. Parameter names follow the
//! PyTorch module paths so saved weights carry the same keys as a torch state dict.

use candle_core::{Device, Result, Tensor, Var};
use candle_nn::VarMap;
use dmgd_kernels::{self as ops, ConvParams, NormParams, NormStats};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::cell::RefCell;

/// Normalisation layer of a student net.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NormKind {
    /// torch `GroupNorm(C, C)` (the default of every protocol, docs/METHOD.md §8).
    Instance,
    /// torch `BatchNorm2d` (batch statistics in training, running statistics in evaluation).
    Batch,
}

/// torch's defaults for GroupNorm and BatchNorm2d.
pub const NORM_EPS: f64 = 1e-5;
/// torch BatchNorm2d: running = (1 - momentum) * running + momentum * batch.
pub const BATCH_NORM_MOMENTUM: f64 = 0.1;
/// Names of buffers (saved with the weights, never trained).
pub const BUFFER_NAMES: [&str; 2] = ["running_mean", "running_var"];

/// How a parameter starts out.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    Uniform { bound: f64 },
    Normal { std: f64 },
    Const(f32),
}

/// Creates named variables in a `VarMap`, drawing initial values from one seeded generator
/// in creation order (so the same seed gives the same net).
pub struct Params<'a> {
    map: &'a VarMap,
    rng: &'a RefCell<ChaCha8Rng>,
    device: &'a Device,
    prefix: String,
    /// The layers get detached views of the variables: a net for inference only, whose
    /// forward records no graph (a teacher, a loaded classifier). Loading still sets them.
    frozen: bool,
}

impl<'a> Params<'a> {
    /// Parameters drawn on the CPU (the same values whatever the device), stored on `device`.
    pub fn new(map: &'a VarMap, rng: &'a RefCell<ChaCha8Rng>, device: &'a Device) -> Self {
        Params {
            map,
            rng,
            device,
            prefix: String::new(),
            frozen: false,
        }
    }

    /// `new` for a net that is never trained (see `frozen`).
    pub fn frozen(map: &'a VarMap, rng: &'a RefCell<ChaCha8Rng>, device: &'a Device) -> Self {
        Params {
            frozen: true,
            ..Params::new(map, rng, device)
        }
    }

    /// The same store, names under `prefix.name`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Params<'a> {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        Params {
            map: self.map,
            rng: self.rng,
            device: self.device,
            prefix,
            frozen: self.frozen,
        }
    }

    pub fn var(&self, name: &str, shape: &[usize], init: Init) -> Result<Var> {
        let n: usize = shape.iter().product();
        let mut rng = self.rng.borrow_mut();
        let values: Vec<f32> = match init {
            Init::Uniform { bound } => (0..n)
                .map(|_| rng.gen_range(-bound..bound) as f32)
                .collect(),
            Init::Normal { std } => {
                let normal = Normal::new(0.0, std).expect("finite std");
                (0..n).map(|_| normal.sample(&mut *rng) as f32).collect()
            }
            Init::Const(v) => vec![v; n],
        };
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, self.device)?)?;
        let key = self.pp(name).prefix;
        let mut data = self.map.data().lock().expect("var map lock");
        if data.insert(key.clone(), var.clone()).is_some() {
            candle_core::bail!("parameter {key} created twice");
        }
        Ok(var)
    }

    fn tensor(&self, name: &str, shape: &[usize], init: Init) -> Result<Tensor> {
        let var = self.var(name, shape, init)?;
        // A detached tensor shares the variable's storage, so `Var::set` still reaches it.
        Ok(if self.frozen {
            var.as_tensor().detach()
        } else {
            var.as_tensor().clone()
        })
    }
}

/// torch's default for Conv2d and Linear weights and biases (kaiming_uniform with a = sqrt(5)
/// gives the same bound): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
fn torch_default(fan_in: usize) -> Init {
    Init::Uniform {
        bound: 1.0 / (fan_in as f64).sqrt(),
    }
}

/// A 2-D convolution (square kernel).
pub struct Conv {
    weight: Tensor,
    bias: Option<Tensor>,
    params: ConvParams,
}

/// How a convolution's weights start out.
#[derive(Debug, Clone, Copy)]
pub enum ConvInit {
    /// nn.Conv2d's default (weight and bias U(±1/sqrt(fan_in))).
    TorchDefault,
    /// The ResNet(AP) rule of the IDC/Minimax code: N(0, sqrt(2 / (k * k * C_out))).
    HeFanOut,
}

pub struct ConvSpec {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub bias: bool,
    pub init: ConvInit,
}

impl Conv {
    pub fn new(p: &Params, s: ConvSpec) -> Result<Self> {
        let fan_in = s.c_in * s.kernel * s.kernel;
        let w_init = match s.init {
            ConvInit::TorchDefault => torch_default(fan_in),
            ConvInit::HeFanOut => Init::Normal {
                std: (2.0 / (s.kernel * s.kernel * s.c_out) as f64).sqrt(),
            },
        };
        let weight = p.tensor("weight", &[s.c_out, s.c_in, s.kernel, s.kernel], w_init)?;
        let bias = if s.bias {
            Some(p.tensor("bias", &[s.c_out], torch_default(fan_in))?)
        } else {
            None
        };
        Ok(Conv {
            weight,
            bias,
            params: ConvParams {
                stride: s.stride,
                padding: s.padding,
            },
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::conv2d(x, &self.weight, self.bias.as_ref(), self.params)
    }
}

/// Instance or batch normalisation with affine parameters (weight 1, bias 0 at the start).
pub struct Norm {
    weight: Tensor,
    bias: Tensor,
    /// Batch norm only.
    running: Option<(Var, Var)>,
}

impl Norm {
    pub fn new(p: &Params, kind: NormKind, channels: usize) -> Result<Self> {
        let weight = p.tensor("weight", &[channels], Init::Const(1.0))?;
        let bias = p.tensor("bias", &[channels], Init::Const(0.0))?;
        let running = match kind {
            NormKind::Instance => None,
            NormKind::Batch => Some((
                p.var(BUFFER_NAMES[0], &[channels], Init::Const(0.0))?,
                p.var(BUFFER_NAMES[1], &[channels], Init::Const(1.0))?,
            )),
        };
        Ok(Norm {
            weight,
            bias,
            running,
        })
    }

    /// Normalises x (N, C, H, W), then applies ReLU when `relu` and k x k average pooling
    /// when `pool` = k > 1. Batch norm in `train` mode uses the batch statistics and updates
    /// the running ones.
    pub fn forward(&self, x: &Tensor, relu: bool, pool: usize, train: bool) -> Result<Tensor> {
        let params = |stats| NormParams {
            stats,
            eps: NORM_EPS,
            relu,
            pool,
        };
        match (&self.running, train) {
            (None, _) => ops::norm(x, &self.weight, &self.bias, params(NormStats::Instance)),
            (Some((mean, var)), true) => {
                let (batch_mean, batch_var) = ops::batch_mean_var(x)?;
                let c = batch_mean.len();
                let m = BATCH_NORM_MOMENTUM;
                let update = |running: &Var, batch: Vec<f32>| -> Result<()> {
                    let batch = Tensor::from_vec(batch, c, running.device())?;
                    running.set(&((running.as_tensor() * (1.0 - m))? + (batch * m)?)?.detach())
                };
                update(mean, batch_mean)?;
                update(var, batch_var)?;
                ops::norm(x, &self.weight, &self.bias, params(NormStats::Batch))
            }
            (Some((mean, var)), false) => {
                let c = self.weight.dim(0)?;
                // Running statistics are buffers: no gradient, so no graph.
                let (mean, var) = (mean.as_tensor().detach(), var.as_tensor().detach());
                let scale = (&self.weight / (var + NORM_EPS)?.sqrt()?)?;
                let shift = (&self.bias - (mean * &scale)?)?;
                let y = x
                    .broadcast_mul(&scale.reshape((1, c, 1, 1))?)?
                    .broadcast_add(&shift.reshape((1, c, 1, 1))?)?;
                let y = if relu { y.relu()? } else { y };
                if pool > 1 {
                    ops::avg_pool2d(&y, pool)
                } else {
                    Ok(y)
                }
            }
        }
    }
}

/// nn.Linear with torch's default initialisation.
pub fn linear(p: &Params, in_features: usize, out_features: usize) -> Result<candle_nn::Linear> {
    let weight = p.tensor(
        "weight",
        &[out_features, in_features],
        torch_default(in_features),
    )?;
    let bias = p.tensor("bias", &[out_features], torch_default(in_features))?;
    Ok(candle_nn::Linear::new(weight, Some(bias)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// torch BatchNorm2d: training uses batch statistics and folds them into the running ones
    /// with momentum 0.1 (unbiased variance); evaluation uses the running statistics.
    #[test]
    fn batch_norm_updates_and_uses_running_statistics() {
        let map = VarMap::new();
        let rng = RefCell::new(ChaCha8Rng::seed_from_u64(0));
        let norm = Norm::new(&Params::new(&map, &rng, &Device::Cpu), NormKind::Batch, 1).unwrap();
        // One channel, values 1, 3, 5, 7: mean 4, biased var 5, unbiased var 20/3.
        let x = Tensor::from_vec(vec![1f32, 3., 5., 7.], (2, 1, 2, 1), &Device::Cpu).unwrap();
        let y = norm
            .forward(&x, false, 1, true)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let expected: Vec<f32> = [1f32, 3., 5., 7.]
            .iter()
            .map(|v| (v - 4.0) / (5.0f32 + 1e-5).sqrt())
            .collect();
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
        let (mean, var) = norm.running.as_ref().unwrap();
        let rm = mean.as_tensor().to_vec1::<f32>().unwrap()[0];
        let rv = var.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!(
            (rm - 0.4).abs() < 1e-6 && (rv - (0.9 + 0.1 * 20.0 / 3.0)).abs() < 1e-5,
            "{rm} {rv}"
        );
        let y_eval = norm
            .forward(&x, false, 1, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(
            (y_eval[0] - (1.0 - rm) / (rv + 1e-5).sqrt()).abs() < 1e-5,
            "{y_eval:?}"
        );
    }
}
