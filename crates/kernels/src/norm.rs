//! Affine normalisation over (N, C, H, W) with its own backward, optionally fused with the
//! ReLU that follows it in every student net (one pass instead of three full-size tensors).
//!
//! Instance norm = torch `GroupNorm(C, C)`: statistics per (image, channel).
//! Batch norm (training mode) = torch `BatchNorm2d`: statistics per channel over (N, H, W).
//! Both use the biased variance for normalising, like torch.

use crate::cpu::{contiguous_f32, storage_f32};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Which elements share statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormStats {
    /// Per (image, channel): GroupNorm with one group per channel.
    Instance,
    /// Per channel over the batch (BatchNorm in training mode).
    Batch,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormParams {
    pub stats: NormStats,
    /// torch's default for GroupNorm and BatchNorm2d.
    pub eps: f64,
    /// Apply ReLU to the output (fused).
    pub relu: bool,
    /// Then average-pool with k x k windows, stride k (fused; 1 = no pooling). Like torch
    /// `avg_pool2d`, rows and columns past the last whole window are dropped.
    pub pool: usize,
}

/// y = [avg_pool_k]([relu]((x - mean) / sqrt(var + eps) * gamma + beta)).
/// x: (N, C, H, W), gamma, beta: (C); y: (N, C, H / k, W / k).
/// Fusing the three keeps the full-size normalised map out of memory in both passes.
pub fn norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, p: NormParams) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return crate::composed::norm(x, gamma, beta, p);
    }
    x.contiguous()?
        .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, NormOp { p })
}

struct NormOp {
    p: NormParams,
}

/// Σ f(a_i, b_i) over two equally long slices, in f64 overall. Blocks of 256 are summed in
/// 16 independent f32 lanes: an iterator `.sum()` of floats stays sequential (no reordering
/// allowed), which made these reductions the top item of a training step's profile.
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    const LANES: usize = 16;
    let mut total = 0f64;
    for (a, b) in a.chunks(256).zip(b.chunks(256)) {
        let mut acc = [0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(&x, &y)| f(x, y))
            .sum();
        for (x, y) in ca.zip(cb) {
            for i in 0..LANES {
                acc[i] += f(x[i], y[i]);
            }
        }
        total += (acc.iter().sum::<f32>() + tail) as f64;
    }
    total
}

fn sum_f64(v: &[f32]) -> f64 {
    lane_sum(v, v, |x, _| x)
}

/// Mean and 1/sqrt(var + eps) over the given planes (two passes: mean, then centred squares).
fn group_stats(planes: &[&[f32]], eps: f64) -> (f32, f32) {
    let count: usize = planes.iter().map(|v| v.len()).sum();
    let mean = planes.iter().map(|v| sum_f64(v)).sum::<f64>() / count as f64;
    let m = mean as f32;
    let var = planes
        .iter()
        .map(|v| lane_sum(v, v, |e, _| (e - m) * (e - m)))
        .sum::<f64>()
        / count as f64;
    (m, (1.0 / (var + eps).sqrt()) as f32)
}

/// Per-channel statistics over the batch (batch norm), or None for instance norm, whose
/// statistics are computed plane by plane where they are used.
fn batch_statistics(
    x: &[f32],
    n: usize,
    c: usize,
    plane: usize,
    p: NormParams,
) -> Option<Vec<(f32, f32)>> {
    match p.stats {
        NormStats::Instance => None,
        NormStats::Batch => Some(
            (0..c)
                .into_par_iter()
                .map(|ci| {
                    let planes: Vec<&[f32]> = (0..n)
                        .map(|ni| &x[(ni * c + ci) * plane..][..plane])
                        .collect();
                    group_stats(&planes, p.eps)
                })
                .collect(),
        ),
    }
}

/// Sizes of one call: planes of h x w, pooled to ho x wo with window k.
#[derive(Clone, Copy)]
struct Dims {
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    ho: usize,
    wo: usize,
}

impl NormOp {
    fn dims(&self, shape: &[usize]) -> Result<(usize, Dims)> {
        let &[n, c, h, w] = shape else {
            candle_core::bail!("norm: expected (N, C, H, W), got {shape:?}")
        };
        let k = self.p.pool.max(1);
        if h < k || w < k {
            candle_core::bail!("norm: {h}x{w} planes are smaller than the {k}x{k} pooling window");
        }
        Ok((
            n,
            Dims {
                c,
                h,
                w,
                k,
                ho: h / k,
                wo: w / k,
            },
        ))
    }

    /// Statistics of plane i: from the batch table, or computed from the plane itself.
    fn plane_stats(
        &self,
        batch: &Option<Vec<(f32, f32)>>,
        i: usize,
        d: Dims,
        x_plane: &[f32],
    ) -> (f32, f32) {
        match batch {
            Some(table) => table[i % d.c],
            None => group_stats(&[x_plane], self.p.eps),
        }
    }
}

impl CustomOp3 for NormOp {
    fn name(&self) -> &'static str {
        "norm"
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
        let x = contiguous_f32(self.name(), s1, l1)?;
        let gamma = contiguous_f32(self.name(), s2, l2)?;
        let beta = contiguous_f32(self.name(), s3, l3)?;
        let (n, d) = self.dims(l1.dims())?;
        if gamma.len() != d.c || beta.len() != d.c {
            candle_core::bail!(
                "norm: {} channels but affine parameters of {} and {}",
                d.c,
                gamma.len(),
                beta.len()
            );
        }
        let (plane, out_plane) = (d.h * d.w, d.ho * d.wo);
        let batch = batch_statistics(x, n, d.c, plane, self.p);
        let relu = self.p.relu;
        let mut y = vec![0f32; n * d.c * out_plane];
        y.par_chunks_mut(out_plane)
            .zip(x.par_chunks(plane))
            .enumerate()
            .for_each_init(Vec::new, |act, (i, (y, x))| {
                let (mean, rstd) = self.plane_stats(&batch, i, d, x);
                let scale = rstd * gamma[i % d.c];
                let shift = beta[i % d.c] - mean * scale;
                let f = |v: f32| {
                    if relu {
                        (v * scale + shift).max(0.0)
                    } else {
                        v * scale + shift
                    }
                };
                if d.k == 1 {
                    y.iter_mut().zip(x).for_each(|(y, &x)| *y = f(x));
                    return;
                }
                // Pool: sum k rows of activations into the output row, then scale.
                act.resize(d.w, 0.0);
                let inv = 1.0 / (d.k * d.k) as f32;
                for oh in 0..d.ho {
                    let out = &mut y[oh * d.wo..(oh + 1) * d.wo];
                    out.fill(0.0);
                    for r in 0..d.k {
                        let row = &x[(oh * d.k + r) * d.w..][..d.w];
                        act.iter_mut().zip(row).for_each(|(a, &v)| *a = f(v));
                        for (o, win) in out.iter_mut().zip(act.chunks_exact(d.k)) {
                            *o += win.iter().sum::<f32>();
                        }
                    }
                    out.iter_mut().for_each(|o| *o *= inv);
                }
            });
        Ok((CpuStorage::F32(y), Shape::from_dims(&[n, d.c, d.ho, d.wo])))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, d) = self.dims(x.dims())?;
        let c = d.c;
        let (plane, out_plane) = (d.h * d.w, d.ho * d.wo);
        let dy = dy.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let x_data = storage_f32("norm backward", &xs, xl)?;
        let (gs, gl) = gamma.storage_and_layout();
        let gamma_data = storage_f32("norm backward", &gs, gl)?;
        let (bs, bl) = beta.storage_and_layout();
        let beta_data = storage_f32("norm backward", &bs, bl)?;
        let (dys, dyl) = dy.storage_and_layout();
        let dy_data = storage_f32("norm backward", &dys, dyl)?;
        let batch = batch_statistics(x_data, n, c, plane, self.p);
        let (relu, k) = (self.p.relu, d.k);
        let inv = 1.0 / (k * k) as f32;
        // dz of plane i: the gradient reaching the affine output (un-pooled, ReLU mask applied).
        let dz_plane = |i: usize, (mean, rstd): (f32, f32), dz: &mut Vec<f32>| {
            let xp = &x_data[i * plane..(i + 1) * plane];
            let dyp = &dy_data[i * out_plane..(i + 1) * out_plane];
            dz.clear();
            if k == 1 {
                dz.extend_from_slice(dyp);
            } else {
                dz.resize(plane, 0.0);
                for ih in 0..d.h {
                    let row = &mut dz[ih * d.w..(ih + 1) * d.w];
                    if ih >= d.ho * k {
                        row.fill(0.0);
                        continue;
                    }
                    let src = &dyp[(ih / k) * d.wo..][..d.wo];
                    if k == 2 {
                        for (pair, &g) in row.chunks_exact_mut(2).zip(src) {
                            pair[0] = g * inv;
                            pair[1] = g * inv;
                        }
                    } else {
                        for (win, &g) in row.chunks_exact_mut(k).zip(src) {
                            win.fill(g * inv);
                        }
                    }
                    row[d.wo * k..].fill(0.0);
                }
            }
            if relu {
                let scale = rstd * gamma_data[i % c];
                let shift = beta_data[i % c] - mean * scale;
                dz.iter_mut()
                    .zip(xp)
                    .for_each(|(g, &x)| *g = if x * scale + shift > 0.0 { *g } else { 0.0 });
            }
        };
        // Per plane: statistics, s1 = Σ dz, s2 = Σ dz * xhat.
        let per_plane: Vec<((f32, f32), f64, f64)> = (0..n * c)
            .into_par_iter()
            .map_init(Vec::new, |dz, i| {
                let xp = &x_data[i * plane..(i + 1) * plane];
                let (m, r) = self.plane_stats(&batch, i, d, xp);
                dz_plane(i, (m, r), dz);
                let s1 = sum_f64(dz);
                let s2 = lane_sum(dz, xp, |g, x| g * (x - m)) * r as f64;
                ((m, r), s1, s2)
            })
            .collect();
        let stats: Vec<(f32, f32)> = per_plane.iter().map(|p| p.0).collect();
        let sums: Vec<(f64, f64)> = per_plane.iter().map(|p| (p.1, p.2)).collect();
        let mut dgamma = vec![0f64; c];
        let mut dbeta = vec![0f64; c];
        for (i, &(s1, s2)) in sums.iter().enumerate() {
            dbeta[i % c] += s1;
            dgamma[i % c] += s2;
        }
        // Sums over each statistics group, and its size.
        let (group_sums, count): (Vec<(f64, f64)>, usize) = match self.p.stats {
            NormStats::Instance => (sums, plane),
            NormStats::Batch => (
                (0..n * c).map(|i| (dbeta[i % c], dgamma[i % c])).collect(),
                n * plane,
            ),
        };
        let mut dx = vec![0f32; x_data.len()];
        dx.par_chunks_mut(plane)
            .enumerate()
            .for_each_init(Vec::new, |dz, (i, dx)| {
                let (s1, s2) = group_sums[i];
                let (mean1, mean2) = ((s1 / count as f64) as f32, (s2 / count as f64) as f32);
                let (m, r) = stats[i];
                dz_plane(i, (m, r), dz);
                let kk = r * gamma_data[i % c];
                let (a, b) = (r * mean2, mean1);
                let xp = &x_data[i * plane..(i + 1) * plane];
                for ((d, &g), &x) in dx.iter_mut().zip(dz.iter()).zip(xp) {
                    *d = kk * (g - b - (x - m) * a);
                }
            });
        let dev = &candle_core::Device::Cpu;
        let to_f32 = |v: Vec<f64>| v.into_iter().map(|e| e as f32).collect::<Vec<f32>>();
        Ok((
            Some(Tensor::from_vec(dx, xl.shape(), dev)?),
            Some(Tensor::from_vec(to_f32(dgamma), c, dev)?),
            Some(Tensor::from_vec(to_f32(dbeta), c, dev)?),
        ))
    }
}

/// Per-channel batch mean and unbiased variance of x (N, C, H, W): what BatchNorm2d folds into
/// its running statistics.
pub fn batch_mean_var(x: &Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
    let (n, c, h, w) = x.dims4()?;
    // Statistics of a batch elsewhere are brought here first (C values each way).
    let x = x.to_device(&candle_core::Device::Cpu)?.contiguous()?;
    let (xs, xl) = x.storage_and_layout();
    let data = storage_f32("batch statistics", &xs, xl)?;
    let plane = h * w;
    let count = (n * plane) as f64;
    Ok((0..c)
        .into_par_iter()
        .map(|ci| {
            let values = || {
                (0..n).flat_map(move |ni| {
                    data[(ni * c + ci) * plane..][..plane]
                        .iter()
                        .map(|&v| v as f64)
                })
            };
            let mean = values().sum::<f64>() / count;
            let var = values().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0).max(1.0);
            (mean as f32, var as f32)
        })
        .unzip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_abs_diff, probe_grads, randn};
    use candle_core::{Device, Var};

    fn composed(x: &Tensor, gamma: &Tensor, beta: &Tensor, p: NormParams) -> Tensor {
        crate::composed::norm(x, gamma, beta, p).unwrap()
    }

    #[test]
    fn matches_composed_ops_forward_and_backward() {
        for (i, stats) in [NormStats::Instance, NormStats::Batch]
            .into_iter()
            .enumerate()
        {
            for (relu, pool) in [(false, 1), (true, 1), (true, 2), (false, 2)] {
                let p = NormParams {
                    stats,
                    eps: 1e-5,
                    relu,
                    pool,
                };
                let seed = 100 + 10 * i as u64 + relu as u64 + 2 * pool as u64;
                // An offset mean checks the statistics are not computed naively around 0.
                let x = Var::from_tensor(&randn(&[3, 4, 6, 8], seed).affine(2.0, 3.0).unwrap())
                    .unwrap();
                let gamma = Var::from_tensor(&randn(&[4], seed + 1)).unwrap();
                let beta = Var::from_tensor(&randn(&[4], seed + 2)).unwrap();
                let ours = norm(&x, &gamma, &beta, p).unwrap();
                let theirs = composed(&x, &gamma, &beta, p);
                assert!(
                    max_abs_diff(&ours, &theirs) < 1e-4,
                    "{stats:?} relu={relu} pool={pool} forward"
                );
                let probe = randn(ours.dims(), seed + 3);
                let g1 = probe_grads(&ours, &probe);
                let g2 = probe_grads(&theirs, &probe);
                for (name, v) in [("x", &x), ("gamma", &gamma), ("beta", &beta)] {
                    let d = max_abs_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
                    assert!(
                        d < 1e-3,
                        "{stats:?} relu={relu} pool={pool} grad {name}: {d}"
                    );
                }
            }
        }
    }

    #[test]
    fn batch_statistics_are_unbiased_per_channel() {
        let x = Tensor::from_vec(
            vec![1f32, 3., 10., 10., 5., 7., 20., 40.],
            (2, 2, 2, 1),
            &Device::Cpu,
        )
        .unwrap();
        let (mean, var) = batch_mean_var(&x).unwrap();
        // channel 0: 1, 3, 5, 7 -> mean 4, unbiased var 20/3; channel 1: 10, 10, 20, 40 -> 20, 200.
        assert_eq!(mean, vec![4.0, 20.0]);
        assert!(
            (var[0] - 20.0 / 3.0).abs() < 1e-5 && (var[1] - 200.0).abs() < 1e-3,
            "{var:?}"
        );
    }
}
