//! Fused CPU ops with their own backward: tanh-GELU, LayerNorm without affine, softmax over
//! the last dimension. candle's fused `layer_norm` / `softmax_last_dim` have no backward and its
//! tanh-GELU runs as scalar libm calls (docs/BENCH-diffusion.md); these keep training on one fast path.
//!
//! Also the per-sample broadcasts of adaLN (modulate, gated residual) and the bias add. Their
//! backward sums over tokens (or rows) in one contiguous pass; candle's reduction over a
//! broadcast dimension was 11 % of a training step (docs/BENCH-diffusion.md).
//!
//! On devices other than the CPU every op falls back to composed candle ops (same maths).

use crate::cpu::f32_slice;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, D,
};
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
    x.contiguous()?.apply_op1(RowOp {
        name: "gelu-tanh",
        backward_name: "gelu-tanh-backward",
        saves_output: false,
        forward: |x: &[f32], y: &mut [f32], _| gelu_fwd(x, y),
        backward: |x: &[f32], g: &[f32], dx: &mut [f32], _| gelu_bwd(x, g, dx),
    })
}

/// LayerNorm over the last dimension without affine parameters, differentiable.
pub fn layer_norm_no_affine(x: &Tensor, eps: f32) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        return xc.broadcast_div(&(var + eps as f64)?.sqrt()?);
    }
    x.contiguous()?.apply_op1(RowOp {
        name: "layer-norm-no-affine",
        backward_name: "layer-norm-no-affine-backward",
        saves_output: false,
        forward: move |x: &[f32], y: &mut [f32], dim| layer_norm_rows(x, y, dim, eps),
        backward: move |x: &[f32], g: &[f32], dx: &mut [f32], dim| {
            layer_norm_bwd_rows(x, g, dx, dim, eps)
        },
    })
}

/// Softmax over the last dimension, differentiable.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return candle_nn::ops::softmax_last_dim(x);
    }
    x.contiguous()?.apply_op1(RowOp {
        name: "softmax-last-dim",
        backward_name: SOFTMAX_BACKWARD,
        saves_output: true,
        forward: |x: &[f32], y: &mut [f32], dim| softmax_rows(x, y, dim),
        backward: softmax_bwd_rows,
    })
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

/// An op on the rows of the last dimension (`forward(x rows, y rows, row length)`) whose
/// gradient needs one saved tensor: `backward(saved rows, grad rows, dx rows, row length)`,
/// saved being the op's input, or its output where `saves_output`. Each rayon task takes
/// whole rows, about CHUNK elements.
struct RowOp<F, B> {
    name: &'static str,
    backward_name: &'static str,
    saves_output: bool,
    forward: F,
    backward: B,
}

impl<F, B> CustomOp1 for RowOp<F, B>
where
    F: Fn(&[f32], &mut [f32], usize) + Send + Sync,
    B: Fn(&[f32], &[f32], &mut [f32], usize) + Send + Sync + Copy + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name)?;
        let dim = layout.shape().dims().last().copied().unwrap_or(1);
        let rows = rows_per_task(dim) * dim;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(rows)
            .zip(x.par_chunks(rows))
            .for_each(|(y, x)| (self.forward)(x, y, dim));
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let saved = if self.saves_output { res } else { arg };
        let op = RowBackward {
            name: self.backward_name,
            backward: self.backward,
        };
        Ok(Some(saved.apply_op2_no_bwd(&grad_res.contiguous()?, &op)?))
    }
}

/// The backward of a [`RowOp`] as an op of its own: (saved, grad) -> dx.
struct RowBackward<B> {
    name: &'static str,
    backward: B,
}

impl<B> CustomOp2 for RowBackward<B>
where
    B: Fn(&[f32], &[f32], &mut [f32], usize) + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let saved = f32_slice(s1, l1, self.name)?;
        let g = f32_slice(s2, l2, self.name)?;
        let dim = l1.shape().dims().last().copied().unwrap_or(1);
        let rows = rows_per_task(dim) * dim;
        let mut dx = vec![0f32; saved.len()];
        dx.par_chunks_mut(rows)
            .zip(saved.par_chunks(rows).zip(g.par_chunks(rows)))
            .for_each(|(dx, (saved, g))| (self.backward)(saved, g, dx, dim));
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

/// The gradient of softmax's input from its output `probs` and the gradient `grad` of that
/// output (a plain computation: it records no backward itself).
pub(crate) fn softmax_last_dim_backward(probs: &Tensor, grad: &Tensor) -> Result<Tensor> {
    if !probs.device().is_cpu() || probs.dtype() != DType::F32 {
        let dot = (grad * probs)?.sum_keepdim(D::Minus1)?;
        return probs * grad.broadcast_sub(&dot)?;
    }
    probs.contiguous()?.apply_op2_no_bwd(
        &grad.contiguous()?,
        &RowBackward {
            name: SOFTMAX_BACKWARD,
            backward: softmax_bwd_rows,
        },
    )
}

const SOFTMAX_BACKWARD: &str = "softmax-last-dim-backward";

// ---------------------------------------------------------------------------------------------
// Per-sample broadcasts over tokens: x (N, T, D) with a (N, D) operand.

/// x * (1 + scale) + shift for x (N, T, D) and shift, scale (N, D) (adaLN), differentiable.
pub fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Result<Tensor> {
    if !fused_f32(&[x, shift, scale]) {
        return x
            .broadcast_mul(&(scale.unsqueeze(1)? + 1.0)?)?
            .broadcast_add(&shift.unsqueeze(1)?);
    }
    x.contiguous()?
        .apply_op3(&shift.contiguous()?, &scale.contiguous()?, Modulate)
}

/// x + y * gate for x, y (N, T, D) and gate (N, D) (adaLN-Zero's gated residual),
/// differentiable.
pub fn gated_add(x: &Tensor, y: &Tensor, gate: &Tensor) -> Result<Tensor> {
    if !fused_f32(&[x, y, gate]) {
        return x + y.broadcast_mul(&gate.unsqueeze(1)?)?;
    }
    x.contiguous()?
        .apply_op3(&y.contiguous()?, &gate.contiguous()?, GatedAdd)
}

/// y + bias for y (R, D) and bias (D), differentiable.
pub fn add_bias(y: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if !fused_f32(&[y, bias]) {
        return y.broadcast_add(bias);
    }
    y.contiguous()?.apply_op2(&bias.contiguous()?, AddBias)
}

/// The fused broadcast ops pay off in training only: their backward replaces candle's strided
/// reductions (a training step 1.24x faster), but without gradients candle's own broadcast ops
/// were faster (DiT-Ti/4 forward 0.244 s composed vs 0.266 s fused, docs/BENCH-diffusion.md).
fn fused_f32(tensors: &[&Tensor]) -> bool {
    tensors.iter().any(|t| t.track_op())
        && tensors
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// (N, T, D) of x's layout; a (R, D) matrix counts as N = 1, T = R.
fn ntd(layout: &Layout) -> Result<(usize, usize, usize)> {
    match *layout.shape().dims() {
        [n, t, d] => Ok((n, t, d)),
        [r, d] => Ok((1, r, d)),
        ref dims => candle_core::bail!("expected (N, T, D) or (R, D), got {dims:?}"),
    }
}

/// Sum over tokens of `a` (or of a * b): (N, T, D) -> (N, D), one pass per sample.
fn sum_over_tokens(a: &[f32], b: Option<&[f32]>, (n, t, d): (usize, usize, usize)) -> Vec<f32> {
    let mut out = vec![0f32; n * d];
    out.par_chunks_mut(d.max(1))
        .enumerate()
        .for_each(|(i, acc)| {
            let rows = i * t * d..(i + 1) * t * d;
            match b {
                None => a[rows].chunks_exact(d).for_each(|row| add_row(acc, row)),
                Some(b) => a[rows.clone()]
                    .chunks_exact(d)
                    .zip(b[rows].chunks_exact(d))
                    .for_each(|(a, b)| add_product_row(acc, a, b)),
            }
        });
    out
}

#[inline(always)]
fn add_row_kernel(acc: &mut [f32], row: &[f32]) {
    acc.iter_mut().zip(row).for_each(|(s, v)| *s += v);
}

#[inline(always)]
fn add_product_row_kernel(acc: &mut [f32], a: &[f32], b: &[f32]) {
    for ((s, a), b) in acc.iter_mut().zip(a).zip(b) {
        *s += a * b;
    }
}
multiversion!(add_row, add_row_kernel, (acc: &mut [f32], row: &[f32]));
multiversion!(add_product_row, add_product_row_kernel, (acc: &mut [f32], a: &[f32], b: &[f32]));

/// Sum over tokens, (N, T, D) -> (N, D) (or (R, D) -> (D)): the shift and bias gradients.
struct SumOverTokens;

impl CustomOp1 for SumOverTokens {
    fn name(&self) -> &'static str {
        "sum-over-tokens"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, t, d) = ntd(l)?;
        let out = sum_over_tokens(f32_slice(s, l, self.name())?, None, (n, t, d));
        let shape = if l.dims().len() == 3 {
            Shape::from((n, d))
        } else {
            Shape::from(d)
        };
        Ok((CpuStorage::F32(out), shape))
    }
}

/// Sum over tokens of a * b, (N, T, D) x2 -> (N, D): the scale and gate gradients.
struct SumOfProductsOverTokens;

impl CustomOp2 for SumOfProductsOverTokens {
    fn name(&self) -> &'static str {
        "sum-of-products-over-tokens"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, t, d) = ntd(l1)?;
        let (a, b) = (
            f32_slice(s1, l1, self.name())?,
            f32_slice(s2, l2, self.name())?,
        );
        Ok((
            CpuStorage::F32(sum_over_tokens(a, Some(b), (n, t, d))),
            Shape::from((n, d)),
        ))
    }
}

fn check_per_sample(op: &str, operands: &[&[f32]], len: usize) -> Result<()> {
    if operands.iter().any(|o| o.len() != len) {
        candle_core::bail!("{op}: per-sample operands must be (N, D) with {len} elements");
    }
    Ok(())
}

/// A new (rows, d) buffer filled in parallel: `f(row, sample, out_row)` gets each row's index
/// and its sample (row / tokens).
fn fill_rows(
    len: usize,
    d: usize,
    tokens: usize,
    f: impl Fn(usize, usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut out = vec![0f32; len];
    let per_task = rows_per_task(d);
    out.par_chunks_mut(per_task * d)
        .enumerate()
        .for_each(|(task, rows)| {
            for (r, out_row) in rows.chunks_exact_mut(d).enumerate() {
                let row = task * per_task + r;
                f(row, row / tokens, out_row);
            }
        });
    out
}

#[inline(always)]
fn modulate_row_kernel(x: &[f32], shift: &[f32], scale: &[f32], y: &mut [f32]) {
    for (((y, x), sh), sc) in y.iter_mut().zip(x).zip(shift).zip(scale) {
        *y = x * (sc + 1.0) + sh;
    }
}

#[inline(always)]
fn gated_add_row_kernel(x: &[f32], y: &[f32], gate: &[f32], out: &mut [f32]) {
    for (((o, x), y), g) in out.iter_mut().zip(x).zip(y).zip(gate) {
        *o = x + y * g;
    }
}

#[inline(always)]
fn add_row_to_kernel(y: &[f32], bias: &[f32], out: &mut [f32]) {
    for ((o, y), b) in out.iter_mut().zip(y).zip(bias) {
        *o = y + b;
    }
}
multiversion!(modulate_row, modulate_row_kernel, (x: &[f32], shift: &[f32], scale: &[f32], y: &mut [f32]));
multiversion!(gated_add_row, gated_add_row_kernel, (x: &[f32], y: &[f32], gate: &[f32], out: &mut [f32]));
multiversion!(add_row_to, add_row_to_kernel, (y: &[f32], bias: &[f32], out: &mut [f32]));

struct Modulate;

impl CustomOp3 for Modulate {
    fn name(&self) -> &'static str {
        "modulate"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let (shift, scale) = (
            f32_slice(s2, l2, self.name())?,
            f32_slice(s3, l3, self.name())?,
        );
        let (n, t, d) = ntd(l1)?;
        check_per_sample(self.name(), &[shift, scale], n * d)?;
        let y = fill_rows(x.len(), d, t, |row, sample, y| {
            let x = &x[row * d..(row + 1) * d];
            let (sh, sc) = (
                &shift[sample * d..(sample + 1) * d],
                &scale[sample * d..(sample + 1) * d],
            );
            modulate_row(x, sh, sc, y);
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _shift: &Tensor,
        scale: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = grad.broadcast_mul(&(scale.unsqueeze(1)? + 1.0)?)?;
        let dshift = grad.apply_op1_no_bwd(&SumOverTokens)?;
        let dscale = grad.apply_op2_no_bwd(x, &SumOfProductsOverTokens)?;
        Ok((Some(dx), Some(dshift), Some(dscale)))
    }
}

struct GatedAdd;

impl CustomOp3 for GatedAdd {
    fn name(&self) -> &'static str {
        "gated-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, y) = (
            f32_slice(s1, l1, self.name())?,
            f32_slice(s2, l2, self.name())?,
        );
        let gate = f32_slice(s3, l3, self.name())?;
        let (n, t, d) = ntd(l1)?;
        check_per_sample(self.name(), &[gate], n * d)?;
        if y.len() != x.len() {
            candle_core::bail!("{}: x and y differ in size", self.name());
        }
        let out = fill_rows(x.len(), d, t, |row, sample, out| {
            let (x, y) = (&x[row * d..(row + 1) * d], &y[row * d..(row + 1) * d]);
            let g = &gate[sample * d..(sample + 1) * d];
            gated_add_row(x, y, g, out);
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        y: &Tensor,
        gate: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dy = grad.broadcast_mul(&gate.unsqueeze(1)?)?;
        let dgate = grad.apply_op2_no_bwd(y, &SumOfProductsOverTokens)?;
        Ok((Some(grad), Some(dy), Some(dgate)))
    }
}

struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (y, bias) = (
            f32_slice(s1, l1, self.name())?,
            f32_slice(s2, l2, self.name())?,
        );
        let d = bias.len();
        if l1.dims().last() != Some(&d) {
            candle_core::bail!("{}: bias of {d} for rows of {:?}", self.name(), l1.dims());
        }
        let out = fill_rows(y.len(), d, 1, |row, _, out| {
            let y = &y[row * d..(row + 1) * d];
            add_row_to(y, bias, out);
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _y: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dbias = grad.apply_op1_no_bwd(&SumOverTokens)?;
        Ok((Some(grad), Some(dbias)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_abs_diff;
    use candle_core::{Device, Var};

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

    /// Each broadcast op against its composed form: forward and the gradient of every input.
    fn check_broadcast(
        dims: &[&[usize]],
        fused: impl Fn(&[Tensor]) -> Result<Tensor>,
        composed: impl Fn(&[Tensor]) -> Result<Tensor>,
    ) {
        let vars: Vec<Var> = dims
            .iter()
            .map(|d| Var::from_tensor(&Tensor::randn(0f32, 1., *d, &Device::Cpu).unwrap()).unwrap())
            .collect();
        let inputs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let (a, b) = (fused(&inputs).unwrap(), composed(&inputs).unwrap());
        assert!(
            max_abs_diff(&a, &b) < 1e-5,
            "forward {}",
            max_abs_diff(&a, &b)
        );
        let w = Tensor::randn(0f32, 1., a.dims(), &Device::Cpu).unwrap();
        let ga = (a * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (b * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for (i, v) in vars.iter().enumerate() {
            let (ga, gb) = (ga.get(v).unwrap(), gb.get(v).unwrap());
            assert_eq!(ga.dims(), gb.dims());
            assert!(
                max_abs_diff(ga, gb) < 1e-4,
                "input {i}: {}",
                max_abs_diff(ga, gb)
            );
        }
    }

    #[test]
    fn modulate_matches_composed_ops() {
        // 3 samples x 37 tokens x 40 channels: several rayon tasks, a sample split across them.
        check_broadcast(
            &[&[3, 37, 40], &[3, 40], &[3, 40]],
            |t| modulate(&t[0], &t[1], &t[2]),
            |t| {
                t[0].broadcast_mul(&(t[2].unsqueeze(1)? + 1.0)?)?
                    .broadcast_add(&t[1].unsqueeze(1)?)
            },
        );
    }

    #[test]
    fn gated_add_matches_composed_ops() {
        check_broadcast(
            &[&[3, 37, 40], &[3, 37, 40], &[3, 40]],
            |t| gated_add(&t[0], &t[1], &t[2]),
            |t| &t[0] + t[1].broadcast_mul(&t[2].unsqueeze(1)?)?,
        );
    }

    #[test]
    fn add_bias_matches_composed_ops() {
        check_broadcast(
            &[&[111, 40], &[40]],
            |t| add_bias(&t[0], &t[1]),
            |t| t[0].broadcast_add(&t[1]),
        );
    }

    #[test]
    fn broadcast_ops_name_a_shape_mismatch() {
        // Variables, so that the fused ops (training) run rather than candle's.
        let x = Var::zeros((2, 3, 4), DType::F32, &Device::Cpu).unwrap();
        let wrong = Tensor::zeros((2, 5), DType::F32, &Device::Cpu).unwrap();
        let err = modulate(&x, &wrong, &wrong).unwrap_err().to_string();
        assert!(err.contains("modulate") && err.contains("(N, D)"), "{err}");
        let rows = x.flatten_to(1).unwrap();
        let err = add_bias(&rows, &wrong.flatten_all().unwrap()).unwrap_err();
        assert!(err.to_string().contains("add-bias"), "{err}");
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
