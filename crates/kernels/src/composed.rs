//! The students' ops written with candle's own differentiable ops: what runs on devices other
//! than the CPU (candle's CUDA convolution is im2col + cuBLAS), and the reference the fused
//! CPU kernels are tested against.

use crate::norm::{NormParams, NormStats};
use crate::pool::MaxPoolParams;
use crate::ConvParams;
use candle_core::{Result, Tensor};

/// conv2d(x, w) + b.
pub fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: ConvParams) -> Result<Tensor> {
    let y = x.conv2d(w, p.padding, p.stride, 1, 1)?;
    match b {
        Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
        None => Ok(y),
    }
}

/// [avg_pool_k]([relu]((x - mean) / sqrt(var + eps) * gamma + beta)).
pub fn norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, p: NormParams) -> Result<Tensor> {
    let c = x.dim(1)?;
    let dims: &[usize] = match p.stats {
        NormStats::Instance => &[2, 3],
        NormStats::Batch => &[0, 2, 3],
    };
    let mean = x.mean_keepdim(dims)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(dims)?;
    let xhat = centred.broadcast_div(&(var + p.eps)?.sqrt()?)?;
    let y = xhat
        .broadcast_mul(&gamma.reshape((1, c, 1, 1))?)?
        .broadcast_add(&beta.reshape((1, c, 1, 1))?)?;
    let y = if p.relu { y.relu()? } else { y };
    if p.pool > 1 {
        y.avg_pool2d(p.pool)
    } else {
        Ok(y)
    }
}

/// torch `MaxPool2d(kernel, stride, padding)`: the padding is -inf, so it never wins. The
/// maximum of the kernel x kernel strided views, as candle's own max-pool has no backward
/// for overlapping windows (ResNet-18's 3/2/1); tied values share the gradient.
pub fn max_pool2d(x: &Tensor, p: MaxPoolParams) -> Result<Tensor> {
    let x = if p.padding == 0 {
        x.clone()
    } else {
        let pad = |x: &Tensor, dim: usize| -> Result<Tensor> {
            let mut dims = x.dims().to_vec();
            dims[dim] = p.padding;
            let edge = Tensor::full(f32::NEG_INFINITY, dims, x.device())?.to_dtype(x.dtype())?;
            Tensor::cat(&[&edge, x, &edge], dim)
        };
        pad(&pad(x, 2)?, 3)?
    };
    let (k, s) = (p.kernel, p.stride);
    let positions = |len: usize, offset: usize| -> Result<Tensor> {
        let picks: Vec<u32> = (0..(len - k) / s + 1)
            .map(|o| (o * s + offset) as u32)
            .collect();
        Tensor::new(picks, x.device())
    };
    let mut best: Option<Tensor> = None;
    for i in 0..k {
        let rows = x.index_select(&positions(x.dim(2)?, i)?, 2)?;
        for j in 0..k {
            let view = rows.index_select(&positions(x.dim(3)?, j)?, 3)?;
            best = Some(match best {
                None => view,
                Some(b) => b.maximum(&view)?,
            });
        }
    }
    Ok(best.expect("a pooling window has at least one element"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_abs_diff, probe_grads, randn};
    use candle_core::Var;

    /// The fused CPU kernels and the composed ops agree, forward and backward.
    #[test]
    fn fused_kernels_match_the_composed_ops() {
        let x = Var::from_tensor(&randn(&[2, 3, 9, 9], 1)).unwrap();
        let w = Var::from_tensor(&randn(&[4, 3, 3, 3], 2)).unwrap();
        let b = Var::from_tensor(&randn(&[4], 3)).unwrap();
        let up = randn(&[2, 4, 5, 5], 4);
        let p = ConvParams {
            stride: 2,
            padding: 1,
        };
        let grads = |y: Tensor| probe_grads(&y, &up);
        let ours = grads(crate::conv2d(&x, &w, Some(&b), p).unwrap());
        let theirs = grads(conv2d(&x, &w, Some(&b), p).unwrap());
        for v in [&x, &w, &b] {
            let d = max_abs_diff(ours.get(v).unwrap(), theirs.get(v).unwrap());
            assert!(d < 1e-4, "conv2d gradient differs by {d}");
        }

        let mp = MaxPoolParams {
            kernel: 3,
            stride: 2,
            padding: 1,
        };
        let up = randn(&[2, 3, 5, 5], 5);
        let grads = |y: Tensor| probe_grads(&y, &up);
        let (yo, yt) = (
            crate::max_pool2d(&x, mp).unwrap(),
            max_pool2d(&x, mp).unwrap(),
        );
        assert_eq!(max_abs_diff(&yo, &yt), 0.0);
        let d = max_abs_diff(grads(yo).get(&x).unwrap(), grads(yt).get(&x).unwrap());
        assert!(d < 1e-6, "max-pool gradient differs by {d}");
        let avg = (crate::avg_pool2d(&x, 3).unwrap(), x.avg_pool2d(3).unwrap());
        assert!(max_abs_diff(&avg.0, &avg.1) < 1e-6);
    }
}
