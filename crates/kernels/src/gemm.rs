//! A safe row-major view over the `gemm` crate: dst = (accumulate ? dst : 0) + lhs · rhs.

/// A read-only strided matrix: element (i, j) lives at `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A dense row-major (rows, cols) matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn last_index(&self) -> usize {
        (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
    }
}

/// dst (m, n), row-major with row stride `dst_row_stride`, gets lhs (m, k) · rhs (k, n),
/// added to its old values when `accumulate`. Runs on the calling thread only: callers
/// parallelise over images, which keeps both cores busy without nested thread pools.
pub(crate) fn matmul(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: MatRef,
    rhs: MatRef,
    accumulate: bool,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "matmul: inner dimensions differ");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * dst_row_stride + n <= dst.len(),
        "matmul: destination too small"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                dst[i * dst_row_stride..i * dst_row_stride + n].fill(0.0);
            }
        }
        return;
    }
    assert!(
        lhs.last_index() < lhs.data.len() && rhs.last_index() < rhs.data.len(),
        "matmul: operand too small"
    );
    // SAFETY: the asserts above keep every index the kernel touches inside the three slices;
    // `dst` is borrowed mutably, so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_naive_product_with_transposes_and_accumulation() {
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect(); // (2, 3)
        let b: Vec<f32> = (0..12).map(|v| (v as f32) * 0.5 - 2.0).collect(); // (3, 4)
        let mut dst = vec![1.0f32; 8];
        matmul(
            &mut dst,
            4,
            MatRef::row_major(&a, 2, 3),
            MatRef::row_major(&b, 3, 4),
            true,
        );
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|k| a[i * 3 + k] * b[k * 4 + j]).sum::<f32>();
                assert!((dst[i * 4 + j] - want).abs() < 1e-5);
            }
        }
        // (bᵀ)(4, 3) · (aᵀ)(3, 2) = (a b)ᵀ
        let mut dst_t = vec![7.0f32; 8];
        matmul(
            &mut dst_t,
            2,
            MatRef::row_major(&b, 3, 4).t(),
            MatRef::row_major(&a, 2, 3).t(),
            false,
        );
        for i in 0..2 {
            for j in 0..4 {
                assert!((dst_t[j * 2 + i] - (dst[i * 4 + j] - 1.0)).abs() < 1e-5);
            }
        }
    }
}
