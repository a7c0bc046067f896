"""PyTorch oracle for dmgd-ot: the OT guidance loss and its autograd gradient w.r.t. x0_hat.

Written from docs/METHOD.md §6 in the style of the authors' (PyTorch) release: unit-sphere
projection, torch.cdist for the plain Euclidean cost, the unrolled Sinkhorn loop, backward().
Inputs are closed-form (sin/cos of indices) so the Rust test rebuilds them without a file.

Run: ${PYTHON:-python3} oracle/ot_guidance.py
and paste the printed constants into crates/ot/tests/ot_reference.rs (`torch_oracle_*`).
"""
import math

import torch

torch.set_default_dtype(torch.float64)

M, K, D = 3, 4, 6  # memory rows, support points, dimension


def inputs():
    memory = torch.tensor([[math.sin(1.3 * i + 0.7 * j + 0.1) for j in range(D)] for i in range(M)])
    points = torch.tensor([[math.cos(0.9 * k - 0.4 * j + 0.3) for j in range(D)] for k in range(K)])
    raw = torch.tensor([1.0 + 0.5 * math.sin(k + 1.0) for k in range(K)])
    masses = raw / raw.sum()
    x0 = torch.tensor([math.sin(2.1 * j - 0.5) + 0.3 for j in range(D)])
    return memory, points, masses, x0


def ot_loss(x0, memory, points, masses, eps=0.1, n_iter=5):
    source = torch.cat([memory, x0[None]], 0)
    source = source / source.norm(dim=1, keepdim=True)
    target = points / points.norm(dim=1, keepdim=True)
    cost = torch.cdist(source, target, p=2)
    a = torch.full((source.shape[0],), 1.0 / source.shape[0])
    g = torch.exp(-cost / eps)
    for _ in range(n_iter):
        g = g * (a / g.sum(1))[:, None]
        g = g * (masses / g.sum(0))[None, :]
    return (g * cost).sum()


memory, points, masses, x0 = inputs()
for name, mem in [("with_memory", memory), ("empty_memory", memory[:0])]:
    x = x0.clone().requires_grad_(True)
    loss = ot_loss(x, mem, points, masses)
    loss.backward()
    print(f"// {name}")
    print(f"const TORCH_LOSS_{name.upper()}: f64 = {loss.item()!r};")
    print(f"const TORCH_GRAD_{name.upper()}: [f64; {D}] = [{', '.join(repr(v) for v in x.grad.tolist())}];")
