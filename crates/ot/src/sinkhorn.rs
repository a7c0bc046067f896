//! Entropic OT by the reference's unrolled Sinkhorn iterations, in the plain and the log domain (docs/METHOD.md §6).
//!
//! Reference (plain domain), for a cost C (N x K), source masses a (N) and target masses b (K):
//!
//! ```text
//! G = exp(-C / eps)
//! repeat n_iter times:
//!     G = G * (a / rowsum(G))      // rows now sum to a
//!     G = G * (b / colsum(G))      // columns now sum to b (exactly, after the last iteration)
//! P = G;  loss = sum(P * C)
//! ```
//!
//! The log-domain variant runs the same fixed-point updates on log G
//! (log G += log a - logsumexp_row(log G); log G += log b - logsumexp_col(log G)), so it gives
//! the same plan up to rounding but does not underflow when eps is small (exp(-C/eps) is 0 in
//! f32 once C/eps > ~87). Everything is built from differentiable candle ops: gradients flow
//! through the unrolled iterations.

use candle_core::{Result as CandleResult, Tensor};
use serde::{Deserialize, Serialize};

use crate::OtError;

/// Which arithmetic the Sinkhorn iterations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SinkhornDomain {
    /// The reference: scaling of G = exp(-C / eps). Fine for eps around 0.1 with costs in [0, 2].
    #[default]
    Plain,
    /// The same iterations on log G with log-sum-exp; for small eps.
    Log,
}

/// Parameters of the Sinkhorn iterations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SinkhornParams {
    /// Entropic regularisation eps_ot (reference 0.1).
    pub eps: f64,
    /// Number of (row, column) scaling rounds (reference 5).
    pub n_iter: usize,
    /// Plain (reference) or log-domain arithmetic.
    pub domain: SinkhornDomain,
}

impl Default for SinkhornParams {
    fn default() -> Self {
        Self {
            eps: 0.1,
            n_iter: 5,
            domain: SinkhornDomain::Plain,
        }
    }
}

impl SinkhornParams {
    /// Checks eps > 0 (finite) and n_iter >= 1.
    pub fn validate(&self) -> Result<(), OtError> {
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(OtError::InvalidParam {
                name: "sinkhorn eps",
                value: self.eps.to_string(),
                reason: "must be a positive finite number",
            });
        }
        if self.n_iter == 0 {
            return Err(OtError::InvalidParam {
                name: "sinkhorn n_iter",
                value: "0".into(),
                reason:
                    "at least one scaling round is needed for the plan to have the target marginal",
            });
        }
        Ok(())
    }
}

/// The result of [`sinkhorn`]: the plan and the transport cost sum(P * C).
#[derive(Debug, Clone)]
pub struct Transport {
    /// The plan P, same shape as the cost: `(N, K)` or `(B, N, K)`.
    pub plan: Tensor,
    /// sum(P * C): a scalar for one problem, `(B)` for a batch.
    pub loss: Tensor,
}

/// Runs Sinkhorn on one problem or a batch of independent problems.
///
/// Shapes: `cost` `(N, K)` with `a` `(N)` and `b` `(K)`, or `cost` `(B, N, K)` with `a` `(B, N)`
/// and `b` `(B, K)`. All three share dtype and device. `a` and `b` are taken as given (the
/// reference passes masses that each sum to 1); entries must be positive, since a zero mass
/// makes a row or column of G zero and the next division 0/0.
///
/// After the call, the column sums of `plan` equal `b` up to rounding (the last operation is
/// the column scaling) and the row sums approach `a` as `n_iter` grows.
pub fn sinkhorn(
    cost: &Tensor,
    a: &Tensor,
    b: &Tensor,
    params: &SinkhornParams,
) -> Result<Transport, OtError> {
    params.validate()?;
    check_shapes(cost, a, b)?;
    let rank = cost.rank();
    let (row_dim, col_dim) = (rank - 2, rank - 1);
    let a_col = a.unsqueeze(col_dim)?; // (.., N, 1)
    let b_row = b.unsqueeze(row_dim)?; // (.., 1, K)
    let plan = match params.domain {
        SinkhornDomain::Plain => plain_plan(cost, &a_col, &b_row, params)?,
        SinkhornDomain::Log => log_plan(cost, &a_col, &b_row, params)?,
    };
    let loss = plan.mul(cost)?.sum((row_dim, col_dim))?; // () or (B)
    Ok(Transport { plan, loss })
}

fn plain_plan(
    cost: &Tensor,
    a_col: &Tensor,
    b_row: &Tensor,
    params: &SinkhornParams,
) -> CandleResult<Tensor> {
    let (row_dim, col_dim) = (cost.rank() - 2, cost.rank() - 1);
    let mut g = cost.affine(-1.0 / params.eps, 0.0)?.exp()?; // (.., N, K)
    for _ in 0..params.n_iter {
        let row_sum = g.sum_keepdim(col_dim)?; // (.., N, 1)
        g = g.broadcast_mul(&a_col.div(&row_sum)?)?;
        let col_sum = g.sum_keepdim(row_dim)?; // (.., 1, K)
        g = g.broadcast_mul(&b_row.div(&col_sum)?)?;
    }
    Ok(g)
}

fn log_plan(
    cost: &Tensor,
    a_col: &Tensor,
    b_row: &Tensor,
    params: &SinkhornParams,
) -> CandleResult<Tensor> {
    let (row_dim, col_dim) = (cost.rank() - 2, cost.rank() - 1);
    let (log_a, log_b) = (a_col.log()?, b_row.log()?);
    let mut log_g = cost.affine(-1.0 / params.eps, 0.0)?; // (.., N, K)
    for _ in 0..params.n_iter {
        let log_row_sum = log_g.log_sum_exp(col_dim)?.unsqueeze(col_dim)?; // (.., N, 1)
        log_g = log_g.broadcast_add(&log_a.sub(&log_row_sum)?)?;
        let log_col_sum = log_g.log_sum_exp(row_dim)?.unsqueeze(row_dim)?; // (.., 1, K)
        log_g = log_g.broadcast_add(&log_b.sub(&log_col_sum)?)?;
    }
    log_g.exp()
}

fn check_shapes(cost: &Tensor, a: &Tensor, b: &Tensor) -> Result<(), OtError> {
    let dims = cost.dims();
    let (batch, n, k) = match *dims {
        [n, k] => (None, n, k),
        [batch, n, k] => (Some(batch), n, k),
        _ => {
            return Err(OtError::Shape {
                what: "sinkhorn cost",
                expected: "(N, K) or (B, N, K)".into(),
                got: dims.to_vec(),
            })
        }
    };
    let (want_a, want_b) = match batch {
        None => (vec![n], vec![k]),
        Some(batch) => (vec![batch, n], vec![batch, k]),
    };
    if a.dims() != want_a.as_slice() {
        return Err(OtError::Shape {
            what: "sinkhorn source masses a",
            expected: format!("{want_a:?}"),
            got: a.dims().to_vec(),
        });
    }
    if b.dims() != want_b.as_slice() {
        return Err(OtError::Shape {
            what: "sinkhorn target masses b",
            expected: format!("{want_b:?}"),
            got: b.dims().to_vec(),
        });
    }
    Ok(())
}
