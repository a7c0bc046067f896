//! Affine normalisation over (N, C, H, W) with its own backward, optionally fused with the
//! ReLU that follows it in every student net (one pass instead of three full-size tensors).
//!
//! Instance norm = torch `GroupNorm(C, C)`: statistics per (image, channel).
//! Batch norm (training mode) = torch `BatchNorm2d`: statistics per channel over (N, H, W).
//! Both use the biased variance for normalising, like torch.

use super::{contiguous_f32, storage_f32};
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
}

/// y = [relu]((x - mean) / sqrt(var + eps) * gamma + beta). x: (N, C, H, W), gamma, beta: (C).
pub fn norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, p: NormParams) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, NormOp { p })
}

struct NormOp {
    p: NormParams,
}

/// A sum in f32 lanes of 8, accumulated in f64 per lane block: fast and accurate enough for planes.
fn sum_f64(v: &[f32]) -> f64 {
    v.chunks(256).map(|c| c.iter().sum::<f32>() as f64).sum()
}

/// Mean and 1/sqrt(var + eps) for every (image, channel) plane, (N * C) each; for batch
/// statistics every image carries its channel's values.
fn statistics(x: &[f32], n: usize, c: usize, plane: usize, p: NormParams) -> (Vec<f32>, Vec<f32>) {
    // Two passes per group: mean, then centred sum of squares.
    let group_stats = |planes: &[&[f32]]| -> (f32, f32) {
        let count: usize = planes.iter().map(|v| v.len()).sum();
        let mean = planes.iter().map(|v| sum_f64(v)).sum::<f64>() / count as f64;
        let m = mean as f32;
        let var = planes.iter().map(|v| v.iter().map(|&e| ((e - m) as f64).powi(2)).sum::<f64>()).sum::<f64>() / count as f64;
        (m, (1.0 / (var + p.eps).sqrt()) as f32)
    };
    let image = c * plane;
    match p.stats {
        NormStats::Instance => (0..n * c)
            .into_par_iter()
            .map(|i| group_stats(&[&x[i * plane..(i + 1) * plane]]))
            .unzip(),
        NormStats::Batch => {
            let per_channel: Vec<(f32, f32)> = (0..c)
                .into_par_iter()
                .map(|ci| {
                    let planes: Vec<&[f32]> = (0..n).map(|ni| &x[ni * image + ci * plane..][..plane]).collect();
                    group_stats(&planes)
                })
                .collect();
            (0..n * c).map(|i| per_channel[i % c]).unzip()
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
        let &[n, c, h, w] = l1.dims() else { candle_core::bail!("norm: expected (N, C, H, W), got {:?}", l1.dims()) };
        if gamma.len() != c || beta.len() != c {
            candle_core::bail!("norm: {c} channels but affine parameters of {} and {}", gamma.len(), beta.len());
        }
        let plane = h * w;
        let (mean, rstd) = statistics(x, n, c, plane, self.p);
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(plane).zip(x.par_chunks(plane)).enumerate().for_each(|(i, (y, x))| {
            let scale = rstd[i] * gamma[i % c];
            let shift = beta[i % c] - mean[i] * scale;
            if self.p.relu {
                y.iter_mut().zip(x).for_each(|(y, &x)| *y = (x * scale + shift).max(0.0));
            } else {
                y.iter_mut().zip(x).for_each(|(y, &x)| *y = x * scale + shift);
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c, h, w) = x.dims4()?;
        let plane = h * w;
        let dy = dy.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let x_data = storage_f32("norm backward", &xs, xl)?;
        let (gs, gl) = gamma.storage_and_layout();
        let gamma_data = storage_f32("norm backward", &gs, gl)?;
        let (ys, yl) = y.storage_and_layout();
        let y_data = storage_f32("norm backward", &ys, yl)?;
        let (dys, dyl) = dy.storage_and_layout();
        let dy_data = storage_f32("norm backward", &dys, dyl)?;
        let (mean, rstd) = statistics(x_data, n, c, plane, self.p);
        let relu = self.p.relu;
        // dz: the gradient reaching the affine output (ReLU mask applied), per plane.
        let dz_plane = |i: usize, out: &mut Vec<f32>| {
            let dy = &dy_data[i * plane..(i + 1) * plane];
            out.clear();
            if relu {
                let y = &y_data[i * plane..(i + 1) * plane];
                out.extend(dy.iter().zip(y).map(|(&g, &y)| if y > 0.0 { g } else { 0.0 }));
            } else {
                out.extend_from_slice(dy);
            }
        };
        // Per plane: s1 = Σ dz, s2 = Σ dz * xhat.
        let sums: Vec<(f64, f64)> = (0..n * c)
            .into_par_iter()
            .map_init(Vec::new, |dz, i| {
                dz_plane(i, dz);
                let xp = &x_data[i * plane..(i + 1) * plane];
                let (m, r) = (mean[i], rstd[i]);
                let s1 = sum_f64(dz);
                let s2: f64 = dz.chunks(256).zip(xp.chunks(256)).map(|(g, x)| g.iter().zip(x).map(|(&g, &x)| g * (x - m) * r).sum::<f32>() as f64).sum();
                (s1, s2)
            })
            .collect();
        let mut dgamma = vec![0f64; c];
        let mut dbeta = vec![0f64; c];
        for (i, &(s1, s2)) in sums.iter().enumerate() {
            dbeta[i % c] += s1;
            dgamma[i % c] += s2;
        }
        // Sums over each statistics group, and its size.
        let (group_sums, count): (Vec<(f64, f64)>, usize) = match self.p.stats {
            NormStats::Instance => (sums, plane),
            NormStats::Batch => ((0..n * c).map(|i| (dbeta[i % c], dgamma[i % c])).collect(), n * plane),
        };
        let mut dx = vec![0f32; x_data.len()];
        dx.par_chunks_mut(plane).enumerate().for_each_init(Vec::new, |dz, (i, dx)| {
            let (s1, s2) = group_sums[i];
            let (mean1, mean2) = ((s1 / count as f64) as f32, (s2 / count as f64) as f32);
            let k = rstd[i] * gamma_data[i % c];
            let (m, r) = (mean[i], rstd[i]);
            dz_plane(i, dz);
            let xp = &x_data[i * plane..(i + 1) * plane];
            for ((d, &g), &x) in dx.iter_mut().zip(dz.iter()).zip(xp) {
                *d = k * (g - mean1 - (x - m) * r * mean2);
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
    let x = x.contiguous()?;
    let (xs, xl) = x.storage_and_layout();
    let data = storage_f32("batch statistics", &xs, xl)?;
    let plane = h * w;
    let count = (n * plane) as f64;
    Ok((0..c)
        .into_par_iter()
        .map(|ci| {
            let values = || (0..n).flat_map(move |ni| data[(ni * c + ci) * plane..][..plane].iter().map(|&v| v as f64));
            let mean = values().sum::<f64>() / count;
            let var = values().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0).max(1.0);
            (mean as f32, var as f32)
        })
        .unzip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn randn(shape: &[usize], seed: u64) -> Tensor {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let v: Vec<f32> = (0..shape.iter().product()).map(|_| StandardNormal.sample(&mut rng)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(D::Minus1).unwrap().to_scalar().unwrap()
    }

    /// The same normalisation written with candle's composed (differentiable) ops.
    fn composed(x: &Tensor, gamma: &Tensor, beta: &Tensor, p: NormParams) -> Tensor {
        let c = x.dim(1).unwrap();
        let dims: &[usize] = match p.stats {
            NormStats::Instance => &[2, 3],
            NormStats::Batch => &[0, 2, 3],
        };
        let mean = x.mean_keepdim(dims).unwrap();
        let centred = x.broadcast_sub(&mean).unwrap();
        let var = centred.sqr().unwrap().mean_keepdim(dims).unwrap();
        let xhat = centred.broadcast_div(&(var + p.eps).unwrap().sqrt().unwrap()).unwrap();
        let y = xhat
            .broadcast_mul(&gamma.reshape((1, c, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&beta.reshape((1, c, 1, 1)).unwrap())
            .unwrap();
        if p.relu {
            y.relu().unwrap()
        } else {
            y
        }
    }

    #[test]
    fn matches_composed_ops_forward_and_backward() {
        for (i, stats) in [NormStats::Instance, NormStats::Batch].into_iter().enumerate() {
            for relu in [false, true] {
                let p = NormParams { stats, eps: 1e-5, relu };
                let seed = 100 + 10 * i as u64 + relu as u64;
                // An offset mean checks the statistics are not computed naively around 0.
                let x = Var::from_tensor(&randn(&[3, 4, 5, 6], seed).affine(2.0, 3.0).unwrap()).unwrap();
                let gamma = Var::from_tensor(&randn(&[4], seed + 1)).unwrap();
                let beta = Var::from_tensor(&randn(&[4], seed + 2)).unwrap();
                let ours = norm(&x, &gamma, &beta, p).unwrap();
                let theirs = composed(&x, &gamma, &beta, p);
                assert!(max_abs_diff(&ours, &theirs) < 1e-4, "{stats:?} relu={relu} forward");
                let probe = randn(ours.dims(), seed + 3);
                let g1 = (&ours * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                let g2 = (&theirs * &probe).unwrap().sum_all().unwrap().backward().unwrap();
                for (name, v) in [("x", &x), ("gamma", &gamma), ("beta", &beta)] {
                    let d = max_abs_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
                    assert!(d < 1e-3, "{stats:?} relu={relu} grad {name}: {d}");
                }
            }
        }
    }

    #[test]
    fn batch_statistics_are_unbiased_per_channel() {
        let x = Tensor::from_vec(vec![1f32, 3., 10., 10., 5., 7., 20., 40.], (2, 2, 2, 1), &Device::Cpu).unwrap();
        let (mean, var) = batch_mean_var(&x).unwrap();
        // channel 0: 1, 3, 5, 7 -> mean 4, unbiased var 20/3; channel 1: 10, 10, 20, 40 -> 20, 200.
        assert_eq!(mean, vec![4.0, 20.0]);
        assert!((var[0] - 20.0 / 3.0).abs() < 1e-5 && (var[1] - 200.0).abs() < 1e-3, "{var:?}");
    }
}
