//! 2-D convolution as im2col + GEMM, with its own backward pass (weight gradient = GEMM over
//! the im2col matrix, input gradient = GEMM + col2im). Work is split over groups of images
//! with rayon; each GEMM runs on one thread.

use crate::cpu::{contiguous_f32, storage_f32};
use crate::gemm::{matmul, MatRef};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Stride and zero padding, equal in both spatial directions (all the nets need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: usize,
    pub padding: usize,
}

/// y = conv2d(x, w) + b. x: (N, C_in, H, W), w: (C_out, C_in, kh, kw), b: (C_out).
/// Gradients flow to all three arguments.
pub fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, p: ConvParams) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return crate::composed::conv2d(x, w, b, p);
    }
    let op = Conv2dOp { p };
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    match b {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, op),
        None => x.apply_op2(&w, op),
    }
}

#[derive(Debug, Clone, Copy)]
struct Conv2dOp {
    p: ConvParams,
}

/// Sizes of one convolution; `k` is the im2col row count C_in * kh * kw.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

/// im2col matrices are kept near this many columns: wide enough for an efficient GEMM,
/// small enough (k x 1024 floats) to stay in cache-friendly sizes.
const TARGET_COLS: usize = 1024;

impl Geometry {
    fn new(x: &[usize], w: &[usize], p: ConvParams) -> Result<Self> {
        let (&[n, c_in, h, wd], &[c_out, c_in_w, kh, kw]) = (x, w) else {
            candle_core::bail!("conv2d: expected 4-D input and weight, got {x:?} and {w:?}")
        };
        if c_in != c_in_w {
            candle_core::bail!("conv2d: input has {c_in} channels, weight expects {c_in_w}");
        }
        if h + 2 * p.padding < kh || wd + 2 * p.padding < kw || p.stride == 0 {
            candle_core::bail!("conv2d: kernel {kh}x{kw} larger than padded input {h}x{wd}");
        }
        let ho = (h + 2 * p.padding - kh) / p.stride + 1;
        let wo = (wd + 2 * p.padding - kw) / p.stride + 1;
        Ok(Geometry {
            n,
            c_in,
            h,
            w: wd,
            c_out,
            kh,
            kw,
            stride: p.stride,
            pad: p.padding,
            ho,
            wo,
        })
    }

    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    fn out_plane(&self) -> usize {
        self.ho * self.wo
    }

    /// Images per parallel work group: small outputs are batched into one wider GEMM.
    fn images_per_group(&self) -> usize {
        (TARGET_COLS / self.out_plane()).clamp(1, self.n.max(1))
    }

    /// The tiles of a group of `images` images: (first pixel, pixel count) ranges over the
    /// output plane. A group of several images is one tile covering whole planes; a single
    /// large image is cut into tiles of whole output rows.
    fn tiles(&self, images: usize) -> Vec<(usize, usize)> {
        let plane = self.out_plane();
        if images > 1 || plane <= 2 * TARGET_COLS {
            return vec![(0, plane)];
        }
        let rows = (TARGET_COLS / self.wo).max(1);
        (0..self.ho)
            .step_by(rows)
            .map(|r0| (r0 * self.wo, rows.min(self.ho - r0) * self.wo))
            .collect()
    }

    /// For kernel column `kj`: the output columns [lo, hi) whose input column
    /// ow * stride + kj - pad lies inside the image.
    fn valid_columns(&self, kj: usize) -> (usize, usize) {
        let (s, pad) = (self.stride, self.pad);
        let lo = if kj >= pad { 0 } else { (pad - kj).div_ceil(s) };
        // ow * s + kj - pad <= w - 1  <=>  ow <= (w - 1 + pad - kj) / s
        let hi = if self.w + pad > kj {
            ((self.w - 1 + pad - kj) / s + 1).min(self.wo)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Fills `col` (k, images * len) with the receptive fields of output pixels
    /// p0..p0+len of each image in `x_group`; column index = image * len + (p - p0).
    /// Tiles always cover whole output rows, so the work goes row by row.
    fn im2col(&self, x_group: &[f32], images: usize, p0: usize, len: usize, col: &mut [f32]) {
        let cols = images * len;
        let in_plane = self.h * self.w;
        let (row0, rows) = (p0 / self.wo, len / self.wo);
        for ci in 0..self.c_in {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let r = (ci * self.kh + ki) * self.kw + kj;
                    let (lo, hi) = self.valid_columns(kj);
                    let dst_row = &mut col[r * cols..(r + 1) * cols];
                    for b in 0..images {
                        let src = &x_group[(b * self.c_in + ci) * in_plane..][..in_plane];
                        for oh in row0..row0 + rows {
                            let dst = &mut dst_row[b * len + (oh - row0) * self.wo..][..self.wo];
                            let ih = (oh * self.stride + ki) as isize - self.pad as isize;
                            if ih < 0 || ih as usize >= self.h {
                                dst.fill(0.0);
                                continue;
                            }
                            let src_row = &src[ih as usize * self.w..][..self.w];
                            dst[..lo].fill(0.0);
                            dst[hi..].fill(0.0);
                            if lo >= hi {
                                continue;
                            }
                            let first = lo * self.stride + kj - self.pad;
                            if self.stride == 1 {
                                dst[lo..hi].copy_from_slice(&src_row[first..first + (hi - lo)]);
                            } else {
                                for (i, d) in dst[lo..hi].iter_mut().enumerate() {
                                    *d = src_row[first + i * self.stride];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `im2col`: adds each column entry back onto the input pixel it came from.
    fn col2im(&self, col: &[f32], images: usize, p0: usize, len: usize, dx_group: &mut [f32]) {
        let cols = images * len;
        let in_plane = self.h * self.w;
        let (row0, rows) = (p0 / self.wo, len / self.wo);
        for ci in 0..self.c_in {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let r = (ci * self.kh + ki) * self.kw + kj;
                    let (lo, hi) = self.valid_columns(kj);
                    let src_row = &col[r * cols..(r + 1) * cols];
                    for b in 0..images {
                        let dst = &mut dx_group[(b * self.c_in + ci) * in_plane..][..in_plane];
                        for oh in row0..row0 + rows {
                            let ih = (oh * self.stride + ki) as isize - self.pad as isize;
                            if ih < 0 || ih as usize >= self.h || lo >= hi {
                                continue;
                            }
                            let src = &src_row[b * len + (oh - row0) * self.wo..][..self.wo];
                            let dst_row = &mut dst[ih as usize * self.w..][..self.w];
                            let first = lo * self.stride + kj - self.pad;
                            if self.stride == 1 {
                                for (d, &v) in dst_row[first..first + (hi - lo)]
                                    .iter_mut()
                                    .zip(&src[lo..hi])
                                {
                                    *d += v;
                                }
                            } else {
                                for (i, &v) in src[lo..hi].iter().enumerate() {
                                    dst_row[first + i * self.stride] += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Conv2dOp {
    fn forward(
        &self,
        x: &[f32],
        xl: &Layout,
        w: &[f32],
        wl: &Layout,
        b: Option<&[f32]>,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(xl.dims(), wl.dims(), self.p)?;
        let (k, plane) = (g.k(), g.out_plane());
        let per_group = g.images_per_group();
        let mut y = vec![0f32; g.n * g.c_out * plane]; // (N, C_out, Ho, Wo)
        let in_image = g.c_in * g.h * g.w;
        let weight = MatRef::row_major(w, g.c_out, k);
        y.par_chunks_mut(per_group * g.c_out * plane)
            .enumerate()
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(col, tmp), (group, y_group)| {
                    let images = y_group.len() / (g.c_out * plane);
                    let x_group = &x[group * per_group * in_image..][..images * in_image];
                    for (p0, len) in g.tiles(images) {
                        let cols = images * len;
                        col.resize(k * cols, 0.0);
                        g.im2col(x_group, images, p0, len, col);
                        let col = MatRef::row_major(col, k, cols);
                        if images == 1 {
                            matmul(&mut y_group[p0..], plane, weight, col, false);
                        } else {
                            tmp.resize(g.c_out * cols, 0.0);
                            matmul(tmp, cols, weight, col, false);
                            for bi in 0..images {
                                for co in 0..g.c_out {
                                    y_group[(bi * g.c_out + co) * plane..][..len]
                                        .copy_from_slice(&tmp[co * cols + bi * len..][..len]);
                                }
                            }
                        }
                    }
                    if let Some(b) = b {
                        for (i, y_plane) in y_group.chunks_mut(plane).enumerate() {
                            let bias = b[i % g.c_out];
                            y_plane.iter_mut().for_each(|v| *v += bias);
                        }
                    }
                },
            );
        Ok((
            CpuStorage::F32(y),
            Shape::from_dims(&[g.n, g.c_out, g.ho, g.wo]),
        ))
    }

    /// Gradients for x (when `need_dx`), w and b from the output gradient dy.
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        dy: &Tensor,
        need_dx: bool,
    ) -> Result<(Option<Tensor>, Tensor, Tensor)> {
        let g = Geometry::new(x.dims(), w.dims(), self.p)?;
        let (k, plane) = (g.k(), g.out_plane());
        let per_group = g.images_per_group();
        let in_image = g.c_in * g.h * g.w;
        let out_image = g.c_out * plane;
        let n_groups = g.n.div_ceil(per_group);
        let dy = dy.contiguous()?;
        let mut dx = if need_dx {
            vec![0f32; g.n * in_image]
        } else {
            Vec::new()
        };
        let (x_storage, x_layout) = x.storage_and_layout();
        let x = storage_f32("conv2d backward", &x_storage, x_layout)?;
        let (w_storage, w_layout) = w.storage_and_layout();
        let w_data = storage_f32("conv2d backward", &w_storage, w_layout)?;
        let (dy_storage, dy_layout) = dy.storage_and_layout();
        let dy = storage_f32("conv2d backward", &dy_storage, dy_layout)?;
        let weight = MatRef::row_major(w_data, g.c_out, k);
        // One group: dW += dY · colᵀ, db += row sums of dY, and (if wanted) dX += col2im(Wᵀ · dY).
        let group_step = |acc: &mut BackwardAcc, group: usize, mut dx_group: Option<&mut [f32]>| {
            let images = (g.n - group * per_group).min(per_group);
            let x_group = &x[group * per_group * in_image..][..images * in_image];
            let dy_group = &dy[group * per_group * out_image..][..images * out_image];
            for (p0, len) in g.tiles(images) {
                let cols = images * len;
                acc.col.resize(k * cols, 0.0);
                g.im2col(x_group, images, p0, len, &mut acc.col);
                // dY of the tile as a (C_out, cols) matrix.
                let dy_tile = if images == 1 {
                    MatRef {
                        data: &dy_group[p0..],
                        rows: g.c_out,
                        cols,
                        row_stride: plane,
                        col_stride: 1,
                    }
                } else {
                    acc.dy_tile.resize(g.c_out * cols, 0.0);
                    for bi in 0..images {
                        for co in 0..g.c_out {
                            acc.dy_tile[co * cols + bi * len..][..len]
                                .copy_from_slice(&dy_group[(bi * g.c_out + co) * plane..][..len]);
                        }
                    }
                    MatRef::row_major(&acc.dy_tile, g.c_out, cols)
                };
                matmul(
                    &mut acc.dw,
                    k,
                    dy_tile,
                    MatRef::row_major(&acc.col, k, cols).t(),
                    true,
                );
                for co in 0..g.c_out {
                    let row = &dy_tile.data[co * dy_tile.row_stride..][..cols];
                    acc.db[co] += row.iter().map(|&v| v as f64).sum::<f64>();
                }
                if let Some(dx_group) = dx_group.as_deref_mut() {
                    acc.dcol.resize(k * cols, 0.0);
                    matmul(&mut acc.dcol, cols, weight.t(), dy_tile, false);
                    g.col2im(&acc.dcol, images, p0, len, dx_group);
                }
            }
        };
        let new_acc = || BackwardAcc::new(g.c_out * k, g.c_out);
        let acc = if need_dx {
            dx.par_chunks_mut(per_group * in_image)
                .enumerate()
                .fold(new_acc, |mut acc, (group, dx_group)| {
                    group_step(&mut acc, group, Some(dx_group));
                    acc
                })
                .reduce(new_acc, BackwardAcc::merge)
        } else {
            (0..n_groups)
                .into_par_iter()
                .fold(new_acc, |mut acc, group| {
                    group_step(&mut acc, group, None);
                    acc
                })
                .reduce(new_acc, BackwardAcc::merge)
        };
        let (dw, db) = (
            acc.dw,
            acc.db.into_iter().map(|v| v as f32).collect::<Vec<f32>>(),
        );
        let dev = &candle_core::Device::Cpu;
        let dx = if need_dx {
            Some(Tensor::from_vec(dx, x_layout.shape(), dev)?)
        } else {
            None
        };
        Ok((
            dx,
            Tensor::from_vec(dw, w_layout.shape(), dev)?,
            Tensor::from_vec(db, g.c_out, dev)?,
        ))
    }
}

/// Per-worker partial sums of the weight and bias gradients, plus reusable scratch buffers.
struct BackwardAcc {
    dw: Vec<f32>,
    db: Vec<f64>,
    col: Vec<f32>,
    dcol: Vec<f32>,
    dy_tile: Vec<f32>,
}

impl BackwardAcc {
    fn new(dw_len: usize, c_out: usize) -> Self {
        BackwardAcc {
            dw: vec![0.0; dw_len],
            db: vec![0.0; c_out],
            col: Vec::new(),
            dcol: Vec::new(),
            dy_tile: Vec::new(),
        }
    }

    fn merge(mut self, other: Self) -> Self {
        self.dw.iter_mut().zip(&other.dw).for_each(|(a, b)| *a += b);
        self.db.iter_mut().zip(&other.db).for_each(|(a, b)| *a += b);
        self
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d-im2col"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("conv2d", s1, l1)?;
        let w = contiguous_f32("conv2d", s2, l2)?;
        self.forward(x, l1, w, l2, None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _db) = self.backward(x, w, dy, x.track_op())?;
        Ok((dx, Some(dw)))
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d-im2col-bias"
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
        let x = contiguous_f32("conv2d", s1, l1)?;
        let w = contiguous_f32("conv2d", s2, l2)?;
        let b = contiguous_f32("conv2d", s3, l3)?;
        if l3.dims() != [l2.dims()[0]] {
            candle_core::bail!(
                "conv2d: bias shape {:?} does not match {} output channels",
                l3.dims(),
                l2.dims()[0]
            );
        }
        self.forward(x, l1, w, l2, Some(b))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.backward(x, w, dy, x.track_op())?;
        Ok((dx, Some(dw), Some(db)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{max_abs_diff, randn};
    use candle_core::{Var, D};

    /// Forward and all three gradients against candle's own (slow) conv2d, for the
    /// kernel/stride/padding combinations the nets use, with a loss that weights every output.
    #[test]
    fn matches_candle_conv2d_forward_and_backward() {
        let cases = [
            // (n, c_in, h, w, c_out, k, stride, pad)
            (3, 2, 7, 6, 4, 3, 1, 1),
            (2, 1, 5, 5, 3, 3, 1, 3), // ConvNet's first layer on 1-channel input
            (2, 3, 9, 9, 4, 7, 2, 3), // ResNet-18 stem
            (2, 4, 6, 6, 5, 1, 2, 0), // ResNet-18 shortcut
            (1, 3, 40, 40, 2, 3, 1, 1), // one image cut into several tiles
            (70, 2, 4, 4, 3, 3, 1, 1), // many images per group, a ragged last group
            (2, 3, 12, 12, 4, 7, 1, 3), // ResNetAP stem: 7x7, stride 1
            (2, 4, 6, 5, 3, 1, 1, 0), // ResNetAP shortcut: 1x1, stride 1
            (2, 3, 6, 6, 4, 3, 1, 0), // no padding
        ];
        for (i, &(n, c_in, h, w, c_out, k, stride, pad)) in cases.iter().enumerate() {
            let seed = 10 * i as u64;
            let x = Var::from_tensor(&randn(&[n, c_in, h, w], seed)).unwrap();
            let wt =
                Var::from_tensor(&(randn(&[c_out, c_in, k, k], seed + 1) * 0.3).unwrap()).unwrap();
            let b = Var::from_tensor(&randn(&[c_out], seed + 2)).unwrap();
            let p = ConvParams {
                stride,
                padding: pad,
            };

            let ours = conv2d(&x, &wt, Some(&b), p).unwrap();
            let theirs = x
                .conv2d(&wt, pad, stride, 1, 1)
                .unwrap()
                .broadcast_add(&b.reshape((1, c_out, 1, 1)).unwrap())
                .unwrap();
            assert_eq!(ours.dims(), theirs.dims(), "case {i}");
            assert!(max_abs_diff(&ours, &theirs) < 1e-4, "case {i} forward");

            let probe = randn(ours.dims(), seed + 3);
            let g_ours = (&ours * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g_theirs = (&theirs * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (name, v) in [("x", &x), ("w", &wt), ("b", &b)] {
                let (a, e) = (g_ours.get(v).unwrap(), g_theirs.get(v).unwrap());
                let scale = e
                    .abs()
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .max(D::Minus1)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(
                    max_abs_diff(a, e) <= 1e-4 * scale.max(1.0),
                    "case {i} grad {name}"
                );
            }
        }
    }

    #[test]
    fn no_bias_and_constant_input_skip_input_gradient() {
        let x = randn(&[2, 3, 5, 5], 1); // a plain tensor: not part of any graph
        let w = Var::from_tensor(&randn(&[4, 3, 3, 3], 2)).unwrap();
        let y = conv2d(
            &x,
            &w,
            None,
            ConvParams {
                stride: 1,
                padding: 1,
            },
        )
        .unwrap();
        let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        let expected = x.conv2d(&w, 1, 1, 1, 1).unwrap();
        assert!(max_abs_diff(&y, &expected) < 1e-4);
        assert_eq!(grads.get(&w).unwrap().dims(), &[4, 3, 3, 3]);
    }
}
