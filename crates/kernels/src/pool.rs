//! Average pooling (kernel = stride, like torch `AvgPool2d(k)`, flooring odd sizes) and max
//! pooling with padding (ResNet-18's 3x3/2 stem), both with their own backward.

use crate::cpu::{contiguous_f32, storage_f32};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// torch `F.avg_pool2d(x, k)`: k x k windows with stride k; rows/columns past the last whole
/// window are dropped. x: (N, C, H, W) -> (N, C, H / k, W / k).
pub fn avg_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return x.avg_pool2d(k);
    }
    x.contiguous()?.apply_op1(AvgPoolOp { k })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPoolParams {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// torch `MaxPool2d(kernel, stride, padding)` (padding never wins the max).
pub fn max_pool2d(x: &Tensor, p: MaxPoolParams) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return crate::composed::max_pool2d(x, p);
    }
    x.contiguous()?.apply_op1(MaxPoolOp { p })
}

struct AvgPoolOp {
    k: usize,
}

fn dims4(op: &str, layout: &Layout) -> Result<(usize, usize, usize, usize)> {
    match layout.dims() {
        &[n, c, h, w] => Ok((n, c, h, w)),
        d => candle_core::bail!("{op}: expected (N, C, H, W), got {d:?}"),
    }
}

impl CustomOp1 for AvgPoolOp {
    fn name(&self) -> &'static str {
        "avg-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(self.name(), s, l)?;
        let (n, c, h, w) = dims4(self.name(), l)?;
        let k = self.k;
        let (ho, wo) = (h / k, w / k);
        if ho == 0 || wo == 0 {
            candle_core::bail!("avg-pool2d: {h}x{w} input is smaller than the {k}x{k} window");
        }
        let scale = 1.0 / (k * k) as f32;
        let mut y = vec![0f32; n * c * ho * wo];
        y.par_chunks_mut(ho * wo)
            .zip(x.par_chunks(h * w))
            .for_each(|(y, x)| {
                for oh in 0..ho {
                    let out = &mut y[oh * wo..(oh + 1) * wo];
                    for ki in 0..k {
                        let row = &x[(oh * k + ki) * w..][..wo * k];
                        for (ow, o) in out.iter_mut().enumerate() {
                            *o += row[ow * k..(ow + 1) * k].iter().sum::<f32>();
                        }
                    }
                    out.iter_mut().for_each(|o| *o *= scale);
                }
            });
        Ok((CpuStorage::F32(y), Shape::from_dims(&[n, c, ho, wo])))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = x.dims4()?;
        let k = self.k;
        let (ho, wo) = (h / k, w / k);
        let dy = dy.contiguous()?;
        let (dys, dyl) = dy.storage_and_layout();
        let dy_data = storage_f32("avg-pool2d backward", &dys, dyl)?;
        let scale = 1.0 / (k * k) as f32;
        let mut dx = vec![0f32; n * c * h * w];
        dx.par_chunks_mut(h * w)
            .zip(dy_data.par_chunks(ho * wo))
            .for_each(|(dx, dy)| {
                for ih in 0..ho * k {
                    let src = &dy[(ih / k) * wo..][..wo];
                    let dst = &mut dx[ih * w..][..wo * k];
                    for (iw, d) in dst.iter_mut().enumerate() {
                        *d = src[iw / k] * scale;
                    }
                }
            });
        Ok(Some(Tensor::from_vec(
            dx,
            (n, c, h, w),
            &candle_core::Device::Cpu,
        )?))
    }
}

struct MaxPoolOp {
    p: MaxPoolParams,
}

impl MaxPoolOp {
    fn out_size(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let p = self.p;
        if h + 2 * p.padding < p.kernel || w + 2 * p.padding < p.kernel || p.stride == 0 {
            candle_core::bail!("max-pool2d: window {} larger than padded {h}x{w}", p.kernel);
        }
        Ok((
            (h + 2 * p.padding - p.kernel) / p.stride + 1,
            (w + 2 * p.padding - p.kernel) / p.stride + 1,
        ))
    }

    /// Index within the plane of the first maximum of output pixel (oh, ow) (torch's choice).
    fn argmax(&self, x: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> usize {
        let p = self.p;
        let (mut best, mut best_i) = (f32::NEG_INFINITY, usize::MAX);
        for ki in 0..p.kernel {
            let ih = (oh * p.stride + ki) as isize - p.padding as isize;
            if ih < 0 || ih as usize >= h {
                continue;
            }
            for kj in 0..p.kernel {
                let iw = (ow * p.stride + kj) as isize - p.padding as isize;
                if iw < 0 || iw as usize >= w {
                    continue;
                }
                let i = ih as usize * w + iw as usize;
                if x[i] > best || best_i == usize::MAX || x[i].is_nan() {
                    best = x[i];
                    best_i = i;
                }
            }
        }
        best_i
    }
}

impl CustomOp1 for MaxPoolOp {
    fn name(&self) -> &'static str {
        "max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(self.name(), s, l)?;
        let (n, c, h, w) = dims4(self.name(), l)?;
        let (ho, wo) = self.out_size(h, w)?;
        let mut y = vec![0f32; n * c * ho * wo];
        y.par_chunks_mut(ho * wo)
            .zip(x.par_chunks(h * w))
            .for_each(|(y, x)| {
                for oh in 0..ho {
                    for ow in 0..wo {
                        y[oh * wo + ow] = x[self.argmax(x, h, w, oh, ow)];
                    }
                }
            });
        Ok((CpuStorage::F32(y), Shape::from_dims(&[n, c, ho, wo])))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = x.dims4()?;
        let (ho, wo) = self.out_size(h, w)?;
        let dy = dy.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let x_data = storage_f32("max-pool2d backward", &xs, xl)?;
        let (dys, dyl) = dy.storage_and_layout();
        let dy_data = storage_f32("max-pool2d backward", &dys, dyl)?;
        let mut dx = vec![0f32; n * c * h * w];
        dx.par_chunks_mut(h * w)
            .zip(x_data.par_chunks(h * w).zip(dy_data.par_chunks(ho * wo)))
            .for_each(|(dx, (x, dy))| {
                for oh in 0..ho {
                    for ow in 0..wo {
                        dx[self.argmax(x, h, w, oh, ow)] += dy[oh * wo + ow];
                    }
                }
            });
        Ok(Some(Tensor::from_vec(
            dx,
            (n, c, h, w),
            &candle_core::Device::Cpu,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::probe_grads;
    use candle_core::{Device, Var};

    fn ramp(shape: &[usize]) -> Tensor {
        // Distinct values in a scrambled order, so maxima are unique and not always top-left.
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn avg_pool_matches_candle_including_backward() {
        for k in [2, 4] {
            let x = Var::from_tensor(&ramp(&[2, 3, 8, 8])).unwrap();
            let ours = avg_pool2d(&x, k).unwrap();
            let theirs = x.avg_pool2d(k).unwrap();
            let d = (&ours - &theirs)
                .unwrap()
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(d < 1e-4);
            let probe = ramp(ours.dims());
            let g1 = probe_grads(&ours, &probe);
            let g2 = probe_grads(&theirs, &probe);
            let d = (g1.get(&x).unwrap() - g2.get(&x).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .sum_all()
                .unwrap();
            assert!(d.to_scalar::<f32>().unwrap() < 1e-4);
        }
    }

    #[test]
    fn avg_pool_floors_odd_sizes_like_torch() {
        // torch: F.avg_pool2d(torch.arange(25.).view(1,1,5,5), 2) = [[3, 5], [13, 15]]
        let x = Tensor::arange(0f32, 25., &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 5, 5))
            .unwrap();
        let y = avg_pool2d(&x, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(y, vec![3.0, 5.0, 13.0, 15.0]);
    }

    #[test]
    fn max_pool_with_padding_matches_a_direct_computation() {
        // torch: F.max_pool2d(torch.arange(25.).view(1,1,5,5), 3, 2, 1)
        //   = [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
        let x = Var::from_tensor(
            &Tensor::arange(0f32, 25., &Device::Cpu)
                .unwrap()
                .reshape((1, 1, 5, 5))
                .unwrap(),
        )
        .unwrap();
        let p = MaxPoolParams {
            kernel: 3,
            stride: 2,
            padding: 1,
        };
        let y = max_pool2d(&x, p).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![6., 8., 9., 16., 18., 19., 21., 23., 24.]
        );
        // Each output's gradient lands on its maximum; 24 is the max of one window only.
        let g = y.sum_all().unwrap().backward().unwrap();
        let dx = g
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut expected = vec![0f32; 25];
        for i in [6, 8, 9, 16, 18, 19, 21, 23, 24] {
            expected[i] += 1.0;
        }
        assert_eq!(dx, expected);
    }
}
