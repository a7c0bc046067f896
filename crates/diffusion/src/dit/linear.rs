//! A linear layer (`weight` (out, in), `bias` (out)) that runs as one 2-D GEMM whatever the
//! leading dimensions, with the DiT initialisations as load hints.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor, // (out, in)
    pub bias: Tensor,   // (out)
}

/// How a fresh (not loaded) layer starts.
#[derive(Debug, Clone, Copy)]
pub enum LinearInit {
    /// Xavier-uniform weight, zero bias (DiT `_basic_init`).
    XavierUniform,
    /// Normal(0, std) weight, zero bias (DiT: timestep MLP, std 0.02).
    Normal(f64),
    /// Zero weight and bias (adaLN-Zero modulation and the final layer).
    Zero,
}

impl Linear {
    pub fn new(in_dim: usize, out_dim: usize, init: LinearInit, vb: VarBuilder) -> Result<Self> {
        let weight_init = match init {
            LinearInit::XavierUniform => {
                let bound = (6.0 / (in_dim + out_dim) as f64).sqrt();
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                }
            }
            LinearInit::Normal(stdev) => Init::Randn { mean: 0.0, stdev },
            LinearInit::Zero => Init::Const(0.0),
        };
        let weight = vb.get_with_hints((out_dim, in_dim), "weight", weight_init)?;
        let bias = vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?;
        Ok(Linear { weight, bias })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let in_dim = dims[dims.len() - 1];
        let x2 = x.reshape(((), in_dim))?; // (rows, in)
        let y = x2.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?; // (rows, out)
        let mut out_dims = dims;
        *out_dims.last_mut().expect("non-empty dims") = self.bias.dim(0)?;
        y.reshape(out_dims)
    }
}
