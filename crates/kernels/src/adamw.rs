//! AdamW (decoupled weight decay, PyTorch's semantics) and the EMA of the weights.
//!
//! On the CPU both update their tensors in place, one parallel pass per tensor. The composed
//! candle version runs about 17 allocating, single-threaded passes per parameter: 0.22 s of a
//! 3.1 s DiT-S/2 step (docs/BENCH-diffusion.md). The in-place kernels repeat candle's f32
//! arithmetic operation by operation (`t * c` is `t * c + 0`, `t / c` is `t * (1 / c) + 0`), so
//! both paths give the same bits; the composed one serves other devices.

use crate::cpu::f32_slice;
use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Result, Tensor, Var};
use rayon::prelude::*;

/// Elements per rayon task.
const CHUNK: usize = 64 * 1024;

/// One AdamW step's constants.
#[derive(Debug, Clone, Copy)]
pub struct AdamW {
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// The step being taken, from 1 (bias corrections).
    pub step: i32,
}

impl AdamW {
    fn bias_corrections(&self) -> (f64, f64) {
        (
            1.0 - self.beta1.powi(self.step),
            1.0 - self.beta2.powi(self.step),
        )
    }

    /// Updates `var` and its moments `m`, `v` from the gradient `g`.
    pub fn update(&self, var: &Var, m: &mut Tensor, v: &mut Tensor, g: &Tensor) -> Result<()> {
        let w = var.as_tensor();
        if in_place_ok(&[w, m, v, g]) {
            m.inplace_op2(
                g,
                &Blend {
                    keep: self.beta1,
                    squared: false,
                },
            )?;
            v.inplace_op2(
                g,
                &Blend {
                    keep: self.beta2,
                    squared: true,
                },
            )?;
            return w.inplace_op3(m, v, &WeightStep(*self));
        }
        let (bc1, bc2) = self.bias_corrections();
        let new_m = ((&*m * self.beta1)? + (g * (1.0 - self.beta1))?)?;
        let new_v = ((&*v * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
        let step = ((&new_m / bc1)? / ((&new_v / bc2)?.sqrt()? + self.eps)?)?;
        let w = w.detach();
        let new_w = ((&w * (1.0 - self.lr * self.weight_decay))? - (step * self.lr)?)?;
        var.set(&new_w)?;
        *m = new_m.detach();
        *v = new_v.detach();
        Ok(())
    }
}

/// ema <- ema * decay + w * (1 - decay).
pub fn ema_update(ema: &mut Tensor, w: &Tensor, decay: f64) -> Result<()> {
    if in_place_ok(&[ema, w]) {
        return ema.inplace_op2(
            w,
            &Blend {
                keep: decay,
                squared: false,
            },
        );
    }
    *ema = ((&*ema * decay)? + (w.detach() * (1.0 - decay))?)?.detach();
    Ok(())
}

fn in_place_ok(tensors: &[&Tensor]) -> bool {
    tensors
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous())
}

fn contiguous_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a mut [f32]> {
    let (start, end) = match layout.contiguous_offsets() {
        Some(range) => range,
        None => candle_core::bail!("{op}: expects contiguous tensors"),
    };
    match storage {
        CpuStorage::F32(data) => Ok(&mut data[start..end]),
        _ => candle_core::bail!("{op}: expects f32 tensors"),
    }
}

/// x <- x * keep + y * (1 - keep), or with y^2: AdamW's moments and the EMA.
struct Blend {
    keep: f64,
    squared: bool,
}

impl InplaceOp2 for Blend {
    fn name(&self) -> &'static str {
        "blend"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        y: &CpuStorage,
        y_l: &Layout,
    ) -> Result<()> {
        let x = contiguous_mut(dst, dst_l, self.name())?;
        let y = f32_slice(y, y_l, self.name())?;
        let (keep, take) = (self.keep as f32, (1.0 - self.keep) as f32);
        let squared = self.squared;
        x.par_chunks_mut(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .for_each(|(x, y)| {
                for (x, &y) in x.iter_mut().zip(y) {
                    let y = if squared { y * y } else { y };
                    *x = (*x * keep + 0.0) + (y * take + 0.0);
                }
            });
        Ok(())
    }
}

/// w <- w * (1 - lr wd) - lr * (m / bc1) / (sqrt(v / bc2) + eps).
struct WeightStep(AdamW);

impl InplaceOp3 for WeightStep {
    fn name(&self) -> &'static str {
        "adamw-weight-step"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        m: &CpuStorage,
        m_l: &Layout,
        v: &CpuStorage,
        v_l: &Layout,
    ) -> Result<()> {
        let w = contiguous_mut(dst, dst_l, self.name())?;
        let m = f32_slice(m, m_l, self.name())?;
        let v = f32_slice(v, v_l, self.name())?;
        let a = self.0;
        let (bc1, bc2) = a.bias_corrections();
        let (inv_bc1, inv_bc2) = ((1.0 / bc1) as f32, (1.0 / bc2) as f32);
        let (eps, lr) = (a.eps as f32, a.lr as f32);
        let shrink = (1.0 - a.lr * a.weight_decay) as f32;
        w.par_chunks_mut(CHUNK)
            .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
            .for_each(|(w, (m, v))| {
                for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
                    let denom = (v * inv_bc2 + 0.0).sqrt() * 1.0 + eps;
                    let step = (m * inv_bc1 + 0.0) / denom;
                    *w = (*w * shrink + 0.0) - (step * lr + 0.0);
                }
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    }

    /// A strided view (not contiguous) takes the composed path: the reference.
    fn composed_copy(t: &Tensor) -> Tensor {
        t.t().unwrap().contiguous().unwrap().t().unwrap()
    }

    /// Three AdamW steps and EMA updates in place give the composed ops' bits, and the values of
    /// PyTorch's AdamW written out by hand for one element.
    #[test]
    fn in_place_updates_match_the_composed_ops_bit_for_bit() -> Result<()> {
        let dev = Device::Cpu;
        let shape = (37, 1000); // several rayon chunks
        let init = Tensor::randn(0f32, 1.0, shape, &dev)?;
        let (var_a, var_b) = (Var::from_tensor(&init)?, Var::from_tensor(&init)?);
        let zeros = || init.zeros_like();
        let (mut m_a, mut v_a, mut m_b, mut v_b) = (zeros()?, zeros()?, zeros()?, zeros()?);
        let (mut ema_a, mut ema_b) = (init.copy()?, init.copy()?);
        let mut reference = init.get(0)?.get(0)?.to_scalar::<f32>()? as f64;
        let (mut m_ref, mut v_ref) = (0f64, 0f64);
        for step in 1..=3 {
            let g = Tensor::randn(0f32, 1.0, shape, &dev)?;
            let adamw = AdamW {
                lr: 1e-3,
                weight_decay: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                step,
            };
            assert!(in_place_ok(&[var_a.as_tensor(), &m_a, &v_a, &g, &ema_a]));
            adamw.update(&var_a, &mut m_a, &mut v_a, &g)?;
            // Strided moments force the composed path for the reference run.
            let (mut m_s, mut v_s) = (composed_copy(&m_b), composed_copy(&v_b));
            assert!(!m_s.is_contiguous());
            adamw.update(&var_b, &mut m_s, &mut v_s, &g)?;
            (m_b, v_b) = (m_s, v_s);
            ema_update(&mut ema_a, var_a.as_tensor(), 0.9)?;
            let mut ema_s = composed_copy(&ema_b);
            ema_update(&mut ema_s, var_b.as_tensor(), 0.9)?;
            ema_b = ema_s;

            let g0 = g.get(0)?.get(0)?.to_scalar::<f32>()? as f64;
            m_ref = 0.9 * m_ref + 0.1 * g0;
            v_ref = 0.999 * v_ref + 0.001 * g0 * g0;
            let (bc1, bc2) = (1.0 - 0.9f64.powi(step), 1.0 - 0.999f64.powi(step));
            reference =
                reference * (1.0 - 1e-5) - 1e-3 * (m_ref / bc1) / ((v_ref / bc2).sqrt() + 1e-8);
        }
        assert_eq!(bits(var_a.as_tensor()), bits(var_b.as_tensor()));
        assert_eq!(bits(&m_a), bits(&m_b));
        assert_eq!(bits(&v_a), bits(&v_b));
        assert_eq!(bits(&ema_a), bits(&ema_b));
        let w0 = var_a.as_tensor().get(0)?.get(0)?.to_scalar::<f32>()? as f64;
        assert!((w0 - reference).abs() < 1e-6, "{w0} vs {reference}");
        Ok(())
    }
}
