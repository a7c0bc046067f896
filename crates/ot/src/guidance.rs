//! The OT guidance of DMGD (docs/METHOD.md §6): the entropic OT cost between the class's source measure
//! (frozen earlier samples plus the current x0_hat) and its support, and the gradient w.r.t. x0_hat.
//!
//! Source measure (Greedy Progressive Matching): the M final latents already generated for the
//! class, frozen, and the current prediction x0_hat, each with mass 1/(M+1). Target: the class
//! [`Support`]. Cost: [`sphere_cost`]. Loss: [`sinkhorn`]'s sum(P * C). The gradient is taken by
//! candle's autodiff through the projection, the distances and the unrolled Sinkhorn iterations;
//! the memory and the support are constants.

use std::collections::BTreeMap;

use candle_core::{Tensor, Var};

use crate::cost::sphere_cost;
use crate::sinkhorn::{sinkhorn, SinkhornParams};
use crate::support::Support;
use crate::OtError;

/// The final latents generated so far for one class: the frozen part of the source measure.
///
/// Stored flattened as `(M, D)`, detached from any autodiff graph.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    latents: Option<Tensor>,
}

impl Memory {
    /// An empty memory (the first image of a class).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one final latent (any shape; flattened, detached).
    pub fn push(&mut self, x0: &Tensor) -> Result<(), OtError> {
        let row = x0.detach().flatten_all()?.unsqueeze(0)?; // (1, D)
        self.latents = Some(match self.latents.take() {
            None => row,
            Some(rows) => {
                if rows.dims()[1] != row.dims()[1] {
                    return Err(OtError::Shape {
                        what: "memory latent",
                        expected: format!("{} elements like the earlier ones", rows.dims()[1]),
                        got: x0.dims().to_vec(),
                    });
                }
                Tensor::cat(
                    &[
                        &rows,
                        &row.to_dtype(rows.dtype())?.to_device(rows.device())?,
                    ],
                    0,
                )?
            }
        });
        Ok(())
    }

    /// Number of stored latents M.
    pub fn len(&self) -> usize {
        self.latents.as_ref().map_or(0, |rows| rows.dims()[0])
    }

    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.latents.is_none()
    }

    /// The stored latents, `(M, D)`, or `None` when empty.
    pub fn latents(&self) -> Option<&Tensor> {
        self.latents.as_ref()
    }
}

/// Loss and gradient of the OT guidance.
#[derive(Debug, Clone)]
pub struct OtGuidance {
    /// sum(P * C): a scalar from [`ot_guidance`], `(B)` from [`ot_guidance_batch`].
    pub loss: Tensor,
    /// d loss / d x0_hat, same shape as the `x0_hat` passed in.
    pub grad: Tensor,
}

/// The OT loss of one class and its gradient w.r.t. `x0_hat` (any shape with D elements).
///
/// `memory` holds the class's earlier final latents (may be empty, receives no gradient),
/// `support` its K support points and masses. Computation runs in `x0_hat`'s dtype and device
/// (memory and support are converted if needed).
pub fn ot_guidance(
    x0_hat: &Tensor,
    memory: &Memory,
    support: &Support,
    params: &SinkhornParams,
) -> Result<OtGuidance, OtError> {
    let batched = ot_guidance_batch(&x0_hat.unsqueeze(0)?, &[memory], &[support], params)?;
    Ok(OtGuidance {
        loss: batched.loss.squeeze(0)?,
        grad: batched.grad.squeeze(0)?,
    })
}

/// B independent OT problems at once (one per class of a batch-across-classes sampler).
///
/// `x0_hat` is `(B, ...)` with D elements per row; `memories[b]` and `supports[b]` belong to row b.
/// Row b's loss and gradient are exactly those of [`ot_guidance`] on row b alone: the problems
/// share nothing. Problems with the same memory size M and support size K are stacked and run
/// as one batched computation; a batch whose classes all have the same M and K (the usual
/// case: all classes at the same image index, K = 10) is a single computation.
pub fn ot_guidance_batch(
    x0_hat: &Tensor,
    memories: &[&Memory],
    supports: &[&Support],
    params: &SinkhornParams,
) -> Result<OtGuidance, OtError> {
    params.validate()?;
    let b = x0_hat.dims().first().copied().unwrap_or(0);
    if x0_hat.rank() < 2 || b == 0 || memories.len() != b || supports.len() != b {
        return Err(OtError::Shape {
            what: "batched x0_hat (with one memory and one support per row)",
            expected: format!(
                "(B, ...) with B >= 1 rows, one per memory ({} given) and per support ({} given)",
                memories.len(),
                supports.len()
            ),
            got: x0_hat.dims().to_vec(),
        });
    }
    let x = x0_hat.detach().flatten_from(1)?; // (B, D)
    let d = x.dims()[1];
    for (memory, support) in memories.iter().zip(supports) {
        if support.dim() != d {
            return Err(OtError::Shape {
                what: "support points",
                expected: format!("(K, {d})"),
                got: support.points().dims().to_vec(),
            });
        }
        if let Some(rows) = memory.latents() {
            if rows.dims()[1] != d {
                return Err(OtError::Shape {
                    what: "memory latents",
                    expected: format!("(M, {d})"),
                    got: rows.dims().to_vec(),
                });
            }
        }
    }

    // Group the rows by (M, K) so that each group is one stacked computation.
    let mut groups: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (row, (memory, support)) in memories.iter().zip(supports).enumerate() {
        groups
            .entry((memory.len(), support.len()))
            .or_default()
            .push(row);
    }
    let mut losses: Vec<Option<Tensor>> = vec![None; b];
    let mut grads: Vec<Option<Tensor>> = vec![None; b];
    for rows in groups.values() {
        let (loss, grad) = solve_group(&x, rows, memories, supports, params)?; // (G), (G, D)
        for (j, &row) in rows.iter().enumerate() {
            losses[row] = Some(loss.get(j)?);
            grads[row] = Some(grad.get(j)?);
        }
    }
    let losses: Vec<Tensor> = losses
        .into_iter()
        .map(|t| t.expect("every row is in a group"))
        .collect();
    let grads: Vec<Tensor> = grads
        .into_iter()
        .map(|t| t.expect("every row is in a group"))
        .collect();
    Ok(OtGuidance {
        loss: Tensor::stack(&losses, 0)?,
        grad: Tensor::stack(&grads, 0)?.reshape(x0_hat.shape())?,
    })
}

/// One stacked computation over rows sharing (M, K): returns the losses `(G)` and gradients `(G, D)`.
fn solve_group(
    x: &Tensor,
    rows: &[usize],
    memories: &[&Memory],
    supports: &[&Support],
    params: &SinkhornParams,
) -> Result<(Tensor, Tensor), OtError> {
    let (dtype, device) = (x.dtype(), x.device());
    let index = Tensor::new(rows.iter().map(|&r| r as u32).collect::<Vec<_>>(), device)?;
    let x0 = Var::from_tensor(&x.index_select(&index, 0)?)?; // (G, D)
    let m = memories[rows[0]].len();
    let here = |t: &Tensor| t.to_dtype(dtype)?.to_device(device);
    let stack = |pick: &dyn Fn(usize) -> candle_core::Result<Tensor>| -> Result<Tensor, OtError> {
        let parts: Vec<Tensor> = rows.iter().map(|&r| pick(r)).collect::<Result<_, _>>()?;
        Ok(Tensor::stack(&parts, 0)?)
    };

    let points = stack(&|r| here(supports[r].points()))?; // (G, K, D)
    let masses = stack(&|r| here(supports[r].masses()))?; // (G, K)
    let x0_cost = sphere_cost(&x0.as_tensor().unsqueeze(1)?, &points)?; // (G, 1, K)
    let cost = match m {
        0 => x0_cost,
        _ => {
            // The memory's cost rows are constants: computed class by class outside the autodiff
            // graph (stacking the (M, D) memories and differentiating through them took ~10x longer).
            let memory_cost = stack(&|r| {
                let latents = here(memories[r].latents().expect("M > 0 in this group"))?;
                sphere_cost(&latents, &here(supports[r].points())?)
            })?; // (G, M, K)
            Tensor::cat(&[&memory_cost, &x0_cost], 1)? // (G, M+1, K)
        }
    };
    let source_masses =
        Tensor::full(1.0 / (m + 1) as f64, (rows.len(), m + 1), device)?.to_dtype(dtype)?; // (G, M+1)

    let transport = sinkhorn(&cost, &source_masses, &masses, params)?;
    let grads = transport.loss.sum_all()?.backward()?;
    let grad = match grads.get(x0.as_tensor()) {
        Some(grad) => grad.clone(),
        None => x0.zeros_like()?,
    }; // (G, D)
    Ok((transport.loss.detach(), grad))
}
