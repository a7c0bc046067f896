//! Fused CPU ops with their own backward: tanh-GELU, LayerNorm without affine, softmax over
//! the last dimension. candle's fused `layer_norm` / `softmax_last_dim` have no backward and its
//! tanh-GELU runs as scalar libm calls (CPU-NOTES.md); these keep training on one fast path.
//!
//! On devices other than the CPU every op falls back to composed candle ops (same maths).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

/// sqrt(2 / pi), the constant of the tanh approximation of GELU.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// The cubic coefficient of the tanh approximation of GELU.
const GELU_CUBIC: f32 = 0.044_715;
/// Elements per rayon task: small enough to split a DiT activation over both cores.
const CHUNK: usize = 16 * 1024;

/// GELU with the tanh approximation (the DiT MLP activation), differentiable.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return x.gelu();
    }
    x.contiguous()?.apply_op1(GeluTanh)
}

/// LayerNorm over the last dimension without affine parameters, differentiable.
pub fn layer_norm_no_affine(x: &Tensor, eps: f32) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        return xc.broadcast_div(&(var + eps as f64)?.sqrt()?);
    }
    x.contiguous()?.apply_op1(LayerNormNoAffine { eps })
}

/// Softmax over the last dimension, differentiable.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return candle_nn::ops::softmax_last_dim(x);
    }
    x.contiguous()?.apply_op1(SoftmaxLastDim)
}

fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: expects a contiguous input"),
    }
}

// ---------------------------------------------------------------------------------------------
// exp / tanh written so that LLVM vectorises them (no libm calls in the loop).

/// exp(x) for x in about [-87, 88]: 2^n * p(r), r = x - n ln 2, |r| <= ln2 / 2, degree-6
/// Taylor polynomial (relative error ~2e-7).
///
/// n is rounded by adding 1.5 * 2^23, which leaves n in the low mantissa bits: integer maths
/// on those bits builds 2^n. A saturating `n as i32` would instead compile to one scalar
/// conversion per lane and stop the loop from vectorising.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND_MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n (two's complement, in [-126, 127]) + 127 is the biased exponent of 2^n.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    p * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// tanh(u) = 1 - 2 / (exp(2u) + 1), saturating for |u| > 9 where tanh is 1 to f32 precision.
#[inline(always)]
fn fast_tanh(u: f32) -> f32 {
    let u = u.clamp(-9.0, 9.0);
    1.0 - 2.0 / (fast_exp(2.0 * u) + 1.0)
}

#[inline(always)]
fn gelu_fwd_kernel(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        let u = SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x);
        *y = 0.5 * x * (1.0 + fast_tanh(u));
    }
}

/// d/dx [0.5 x (1 + tanh(u))] = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 c x^2).
#[inline(always)]
fn gelu_bwd_kernel(x: &[f32], g: &[f32], dx: &mut [f32]) {
    for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(g) {
        let u = SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x);
        let t = fast_tanh(u);
        let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x);
        *dx = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du);
    }
}

/// Runs `kernel` compiled for AVX-512 / AVX2 when the CPU has it (runtime dispatch), else SSE2.
macro_rules! multiversion {
    ($name:ident, $kernel:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) { $kernel($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) { $kernel($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports the enabled features (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $kernel($($arg),*)
        }
    };
}
multiversion!(gelu_fwd, gelu_fwd_kernel, (x: &[f32], y: &mut [f32]));
multiversion!(gelu_bwd, gelu_bwd_kernel, (x: &[f32], g: &[f32], dx: &mut [f32]));

struct GeluTanh;

impl CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| gelu_fwd(x, y));
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(
            &grad_res.contiguous()?,
            &GeluTanhBackward,
        )?))
    }
}

struct GeluTanhBackward;

impl CustomOp2 for GeluTanhBackward {
    fn name(&self) -> &'static str {
        "gelu-tanh-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let g = f32_slice(s2, l2, self.name())?;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(dx, (x, g))| gelu_bwd(x, g, dx));
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------

/// Float reductions with 16 independent partial sums: one running sum is a serial dependency
/// that LLVM must keep in order, which leaves the whole loop scalar.
const LANES: usize = 16;

#[inline(always)]
fn sum_lanes(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder().iter().sum::<f32>();
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[inline(always)]
fn dot_lanes(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (xs, ys) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let rest: f32 = (xs.remainder().iter().zip(ys.remainder()))
        .map(|(x, y)| x * y)
        .sum();
    for (xc, yc) in xs.zip(ys) {
        for ((a, x), y) in acc.iter_mut().zip(xc).zip(yc) {
            *a += x * y;
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[inline(always)]
fn max_lanes(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = if v > *a { v } else { *a };
        }
    }
    acc.iter().copied().fold(rest, f32::max)
}

/// y = (x - mean) / sqrt(var + eps) per row; y holds the centred row while var is summed.
#[inline(always)]
fn layer_norm_rows_kernel(x: &[f32], y: &mut [f32], dim: usize, eps: f32) {
    for (x, y) in x.chunks_exact(dim).zip(y.chunks_exact_mut(dim)) {
        let mean = sum_lanes(x) / dim as f32;
        for (y, x) in y.iter_mut().zip(x) {
            *y = x - mean;
        }
        let inv = 1.0 / (dot_lanes(y, y) / dim as f32 + eps).sqrt();
        y.iter_mut().for_each(|y| *y *= inv);
    }
}

/// dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), per row; dx holds x_hat first.
#[inline(always)]
fn layer_norm_bwd_rows_kernel(x: &[f32], g: &[f32], dx: &mut [f32], dim: usize, eps: f32) {
    for ((x, g), dx) in x
        .chunks_exact(dim)
        .zip(g.chunks_exact(dim))
        .zip(dx.chunks_exact_mut(dim))
    {
        let mean = sum_lanes(x) / dim as f32;
        for (dx, x) in dx.iter_mut().zip(x) {
            *dx = x - mean;
        }
        let inv = 1.0 / (dot_lanes(dx, dx) / dim as f32 + eps).sqrt();
        dx.iter_mut().for_each(|dx| *dx *= inv);
        let g_mean = sum_lanes(g) / dim as f32;
        let gx_mean = dot_lanes(g, dx) / dim as f32;
        for (dx, g) in dx.iter_mut().zip(g) {
            *dx = inv * (g - g_mean - *dx * gx_mean);
        }
    }
}
multiversion!(layer_norm_rows, layer_norm_rows_kernel, (x: &[f32], y: &mut [f32], dim: usize, eps: f32));
multiversion!(layer_norm_bwd_rows, layer_norm_bwd_rows_kernel, (x: &[f32], g: &[f32], dx: &mut [f32], dim: usize, eps: f32));

fn rows_per_task(dim: usize) -> usize {
    (CHUNK / dim.max(1)).max(1)
}

struct LayerNormNoAffine {
    eps: f32,
}

impl CustomOp1 for LayerNormNoAffine {
    fn name(&self) -> &'static str {
        "layer-norm-no-affine"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        let dim = layout.shape().dims().last().copied().unwrap_or(1);
        let rows = rows_per_task(dim) * dim;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(rows)
            .zip(x.par_chunks(rows))
            .for_each(|(y, x)| layer_norm_rows(x, y, dim, self.eps));
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let op = LayerNormNoAffineBackward { eps: self.eps };
        Ok(Some(arg.apply_op2_no_bwd(&grad_res.contiguous()?, &op)?))
    }
}

struct LayerNormNoAffineBackward {
    eps: f32,
}

impl CustomOp2 for LayerNormNoAffineBackward {
    fn name(&self) -> &'static str {
        "layer-norm-no-affine-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let g = f32_slice(s2, l2, self.name())?;
        let dim = l1.shape().dims().last().copied().unwrap_or(1);
        let rows = rows_per_task(dim) * dim;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(rows)
            .zip(x.par_chunks(rows).zip(g.par_chunks(rows)))
            .for_each(|(dx, (x, g))| layer_norm_bwd_rows(x, g, dx, dim, self.eps));
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------

#[inline(always)]
fn softmax_rows_kernel(x: &[f32], y: &mut [f32], dim: usize) {
    for (x, y) in x.chunks_exact(dim).zip(y.chunks_exact_mut(dim)) {
        let max = max_lanes(x);
        for (y, x) in y.iter_mut().zip(x) {
            *y = fast_exp(x - max);
        }
        let inv = 1.0 / sum_lanes(y);
        y.iter_mut().for_each(|y| *y *= inv);
    }
}

/// dx = y * (g - sum(g * y)), per row.
#[inline(always)]
fn softmax_bwd_rows_kernel(y: &[f32], g: &[f32], dx: &mut [f32], dim: usize) {
    for ((y, g), dx) in y
        .chunks_exact(dim)
        .zip(g.chunks_exact(dim))
        .zip(dx.chunks_exact_mut(dim))
    {
        let dot = dot_lanes(y, g);
        for ((dx, y), g) in dx.iter_mut().zip(y).zip(g) {
            *dx = y * (g - dot);
        }
    }
}
multiversion!(softmax_rows, softmax_rows_kernel, (x: &[f32], y: &mut [f32], dim: usize));
multiversion!(softmax_bwd_rows, softmax_bwd_rows_kernel, (y: &[f32], g: &[f32], dx: &mut [f32], dim: usize));

struct SoftmaxLastDim;

impl CustomOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        let dim = layout.shape().dims().last().copied().unwrap_or(1);
        let rows = rows_per_task(dim) * dim;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(rows)
            .zip(x.par_chunks(rows))
            .for_each(|(y, x)| softmax_rows(x, y, dim));
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(res.apply_op2_no_bwd(
            &grad_res.contiguous()?,
            &SoftmaxBackward,
        )?))
    }
}

struct SoftmaxBackward;

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "softmax-last-dim-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = f32_slice(s1, l1, self.name())?;
        let g = f32_slice(s2, l2, self.name())?;
        let dim = l1.shape().dims().last().copied().unwrap_or(1);
        let rows = rows_per_task(dim) * dim;
        let mut dx = vec![0f32; y.len()];
        dx.par_chunks_mut(rows)
            .zip(y.par_chunks(rows).zip(g.par_chunks(rows)))
            .for_each(|(dx, (y, g))| softmax_bwd_rows(y, g, dx, dim));
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    fn input() -> Tensor {
        // Values over [-12, 12] reach both saturated ends of tanh.
        let v: Vec<f32> = (0..3 * 257)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 * 24.0 - 12.0)
            .collect();
        Tensor::from_vec(v, (3, 257), &Device::Cpu).unwrap()
    }

    /// Composed candle ops are the reference for each fused op, forward and backward.
    fn check(
        fused: impl Fn(&Tensor) -> Result<Tensor>,
        composed: impl Fn(&Tensor) -> Result<Tensor>,
        tol: f32,
    ) {
        let x = Var::from_tensor(&input()).unwrap();
        let w = Tensor::randn(0f32, 1., (3, 257), &Device::Cpu).unwrap();
        let (a, b) = (
            fused(x.as_tensor()).unwrap(),
            composed(x.as_tensor()).unwrap(),
        );
        assert!(
            max_abs_diff(&a, &b) < tol,
            "forward {}",
            max_abs_diff(&a, &b)
        );
        let ga = (a * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (b * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (ga, gb) = (ga.get(&x).unwrap(), gb.get(&x).unwrap());
        assert!(
            max_abs_diff(ga, gb) < tol,
            "backward {}",
            max_abs_diff(ga, gb)
        );
    }

    #[test]
    fn fast_exp_matches_libm_over_its_range() {
        let worst = (0..=17_500)
            .map(|i| -87.0 + i as f32 * 0.01)
            .map(|x| ((fast_exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs())
            .fold(0f64, f64::max);
        assert!(worst < 1e-6, "relative error {worst}");
        assert_eq!(fast_exp(0.0), 1.0);
        // A NaN must reach the sampler's finiteness check.
        assert!(fast_exp(f32::NAN).is_nan());
    }

    #[test]
    fn gelu_tanh_matches_composed_ops() {
        check(gelu_tanh, |x| x.gelu(), 1e-4);
    }

    #[test]
    fn layer_norm_matches_composed_ops() {
        let composed = |x: &Tensor| {
            let mean = x.mean_keepdim(D::Minus1)?;
            let xc = x.broadcast_sub(&mean)?;
            let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
            xc.broadcast_div(&(var + 1e-6)?.sqrt()?)
        };
        check(|x| layer_norm_no_affine(x, 1e-6), composed, 1e-4);
    }

    #[test]
    fn softmax_matches_composed_ops() {
        let composed = |x: &Tensor| {
            let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
            e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
        };
        check(softmax_last_dim, composed, 1e-5);
    }
}
