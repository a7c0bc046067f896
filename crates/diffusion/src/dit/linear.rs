//! A linear layer (`weight` (out, in), `bias` (out)) that runs as one 2-D GEMM whatever the
//! leading dimensions, with the DiT initialisations as load hints.
//!
//! The layer keeps the weight transposed, (in, out). A trained layer holds a view of its
//! (out, in) variable; a loaded one is `freeze`d into a contiguous (in, out) copy, which gemm
//! reads in place. Through the view, gemm re-packs the whole weight on every call, which was
//! 40 % of a small sampling batch's time (docs/BENCH-distill.md).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

#[derive(Debug, Clone)]
pub struct Linear {
    weight_t: Tensor, // (in, out)
    pub bias: Tensor, // (out)
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
        Self::from_weight(weight, bias)
    }

    /// A layer from its checkpoint-layout `weight` (out, in) and `bias` (out).
    pub fn from_weight(weight: Tensor, bias: Tensor) -> Result<Self> {
        Ok(Linear {
            weight_t: weight.t()?,
            bias,
        })
    }

    /// The weight in checkpoint layout, (out, in).
    pub fn weight(&self) -> Result<Tensor> {
        self.weight_t.t()
    }

    /// Stores the weight as a contiguous (in, out) copy and drops the (out, in) original, so
    /// memory stays at one copy. For constant weights only: a variable's later updates would
    /// no longer reach the layer.
    pub fn freeze(&mut self) -> Result<()> {
        self.weight_t = self.weight_t.contiguous()?;
        Ok(())
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let in_dim = dims[dims.len() - 1];
        let x2 = x.reshape(((), in_dim))?; // (rows, in)
        let y = dmgd_kernels::dit::add_bias(&x2.matmul(&self.weight_t)?, &self.bias)?; // (rows, out)
        let mut out_dims = dims;
        *out_dims.last_mut().expect("non-empty dims") = self.bias.dim(0)?;
        y.reshape(out_dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn freeze_keeps_the_weight_and_the_output() {
        let dev = Device::Cpu;
        let weight = Tensor::arange(0f32, 12., &dev)
            .unwrap()
            .reshape((3, 4))
            .unwrap(); // (out, in)
        let bias = Tensor::new(&[1f32, -1., 0.5], &dev).unwrap();
        let x = Tensor::arange(0f32, 8., &dev)
            .unwrap()
            .reshape((2, 4))
            .unwrap();
        let mut layer = Linear::from_weight(weight.clone(), bias).unwrap();
        let before = layer.forward(&x).unwrap();
        layer.freeze().unwrap();
        assert!(layer.weight_t.is_contiguous());
        let after = layer.forward(&x).unwrap();
        // Row 0 of x is 0..4: weight row r dotted with it, plus the bias.
        let expected = [[15f32, 37., 62.5], [39., 125., 214.5]];
        assert_eq!(before.to_vec2::<f32>().unwrap(), expected);
        assert_eq!(after.to_vec2::<f32>().unwrap(), expected);
        assert_eq!(
            layer.weight().unwrap().to_vec2::<f32>().unwrap(),
            weight.to_vec2::<f32>().unwrap()
        );
    }
}
