//! Multi-head attention's core, softmax(q k^T / sqrt(hd)) v, from the qkv projection.
//!
//! In training it runs as one op with its own backward. The composed ops' backward built the
//! qkv gradient from three narrows, each padded with zeros to the full size and summed, plus
//! the permute and transpose copies (docs/BENCH-diffusion.md). The fused backward writes
//! d(qkv) in one copy and reuses the forward's probabilities.

use crate::cpu::f32_slice;
use crate::dit::{softmax_last_dim, softmax_last_dim_backward};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};
use std::sync::Mutex;

/// softmax(q k^T / sqrt(hd)) v per head, from the qkv projection (N, T, 3D) to (N, T, D) with
/// the heads concatenated, differentiable.
pub fn multi_head_attention(qkv: &Tensor, num_heads: usize) -> Result<Tensor> {
    if qkv.track_op() && qkv.device().is_cpu() && qkv.dtype() == DType::F32 {
        return qkv.contiguous()?.apply_op1(FusedAttention {
            num_heads,
            probs: Mutex::new(None),
        });
    }
    Ok(attention_forward(qkv, num_heads)?.0)
}

/// q (pre-scaled by 1/sqrt(hd)), k and v as contiguous (N, H, T, hd).
fn split_heads(qkv: &Tensor, num_heads: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let (n, t, d3) = qkv.dims3()?;
    let head_dim = d3 / 3 / num_heads;
    let qkv = qkv
        .reshape((n, t, 3, num_heads, head_dim))?
        .permute((2, 0, 3, 1, 4))?; // (3, N, H, T, hd)
    let q = (qkv.get(0)?.contiguous()? * (head_dim as f64).powf(-0.5))?;
    Ok((q, qkv.get(1)?.contiguous()?, qkv.get(2)?.contiguous()?))
}

/// The attention output (N, T, D) and the probabilities (N, H, T, T).
fn attention_forward(qkv: &Tensor, num_heads: usize) -> Result<(Tensor, Tensor)> {
    let (n, t, d3) = qkv.dims3()?;
    let (q, k, v) = split_heads(qkv, num_heads)?;
    let probs = softmax_last_dim(&q.matmul(&k.t()?)?)?;
    let out = probs
        .matmul(&v)? // (N, H, T, hd)
        .transpose(1, 2)?
        .contiguous()?
        .reshape((n, t, d3 / 3))?;
    Ok((out, probs))
}

/// One use of the attention in a graph: it keeps its forward's probabilities for the backward.
struct FusedAttention {
    num_heads: usize,
    probs: Mutex<Option<Tensor>>,
}

impl CustomOp1 for FusedAttention {
    fn name(&self) -> &'static str {
        "multi-head-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let data = f32_slice(storage, layout, self.name())?;
        let qkv = Tensor::from_slice(data, layout.shape(), &Device::Cpu)?;
        let (out, probs) = attention_forward(&qkv, self.num_heads)?;
        *self.probs.lock().expect("attention probabilities lock") = Some(probs);
        let shape = out.shape().clone();
        Ok((CpuStorage::F32(out.flatten_all()?.to_vec1()?), shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let qkv = arg.detach();
        let (n, t, d3) = qkv.dims3()?;
        let (h, head_dim) = (self.num_heads, d3 / 3 / self.num_heads);
        let kept = self
            .probs
            .lock()
            .expect("attention probabilities lock")
            .take();
        let probs = match kept {
            Some(probs) => probs,
            None => attention_forward(&qkv, h)?.1, // a second backward through this graph
        };
        let (q, k, v) = split_heads(&qkv, h)?;
        let d_out = grad_res
            .reshape((n, t, h, head_dim))?
            .transpose(1, 2)?
            .contiguous()?; // (N, H, T, hd)
        let d_v = probs.t()?.matmul(&d_out)?;
        let d_scores = softmax_last_dim_backward(&probs, &d_out.matmul(&v.t()?)?)?;
        let d_q = (d_scores.matmul(&k)? * (head_dim as f64).powf(-0.5))?;
        let d_k = d_scores.t()?.matmul(&q)?;
        // (N, H, T, hd) x 3 -> (N, T, 3, H, hd) -> (N, T, 3D), the qkv layout.
        let per_token = [d_q, d_k, d_v]
            .iter()
            .map(|g| g.transpose(1, 2)?.unsqueeze(2))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Tensor::cat(&per_token, 2)?.reshape((n, t, d3))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    /// The composed ops (what sampling runs) and the fused op give the same output and the same
    /// gradient of a weighted sum, which exercises every element of d(qkv).
    #[test]
    fn fused_backward_matches_composed_ops() -> Result<()> {
        let dev = Device::Cpu;
        let (n, t, h, hd) = (2, 5, 3, 4);
        let qkv = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, t, 3 * h * hd), &dev)?)?;
        let weights = Tensor::randn(0f32, 1.0, (n, t, h * hd), &dev)?;

        let fused = multi_head_attention(qkv.as_tensor(), h)?;
        let composed = attention_forward(qkv.as_tensor(), h)?.0;
        let grad_fused = (&fused * &weights)?.sum_all()?.backward()?;
        let grad_composed = (&composed * &weights)?.sum_all()?.backward()?;

        let max_diff = |a: &Tensor, b: &Tensor| -> Result<f32> {
            (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
        };
        assert!(max_diff(&fused, &composed)? < 1e-6);
        let (gf, gc) = (
            grad_fused.get(qkv.as_tensor()).expect("fused grad"),
            grad_composed.get(qkv.as_tensor()).expect("composed grad"),
        );
        assert!(gc.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()? > 0.1);
        assert!(max_diff(gf, gc)? < 1e-5, "max diff {}", max_diff(gf, gc)?);
        Ok(())
    }

    /// Without gradients the composed ops run (the fast path for sampling).
    #[test]
    fn plain_tensors_take_the_composed_path() -> Result<()> {
        let qkv = Tensor::randn(0f32, 1.0, (1, 3, 12), &Device::Cpu)?;
        let out = multi_head_attention(&qkv, 2)?;
        assert_eq!(out.dims(), &[1, 3, 4]);
        assert!(!out.track_op());
        Ok(())
    }
}
