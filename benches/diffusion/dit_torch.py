"""PyTorch side of the DiT benchmark (docs/BENCH-diffusion.md): the same workloads as
benches/diffusion/dit.rs, with the oracle DiT of oracle/dit_oracle.py (packages:
oracle/requirements.txt).

    OMP_WAIT_POLICY=PASSIVE "${PYTHON:-python3}" benches/diffusion/dit_torch.py forward-ti4
"""
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "oracle"))
import dit_oracle as o  # noqa: E402

torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
MODELS = {
    "ti4": dict(input_size=28, patch=4, in_ch=1, hidden=256, depth=6, heads=4, classes=10, batch=32),
    "s2": dict(input_size=32, patch=2, in_ch=4, hidden=384, depth=12, heads=6, classes=1000, batch=8),
}


def weights(m):
    d, p, c = m["hidden"], m["patch"], m["in_ch"]
    shapes = o.dit_shapes(d, p, c, m["classes"], m["depth"])
    w = {k: (torch.randn(s) * 0.02).requires_grad_() for k, s in shapes.items()}
    w["pos_embed"] = torch.from_numpy(o.pos_table(d, m["input_size"] // p)).unsqueeze(0)
    return w


def setup(name):
    m = MODELS[name]
    o.CFG.update(patch=m["patch"], in_ch=m["in_ch"], hidden=m["hidden"], depth=m["depth"], heads=m["heads"], classes=m["classes"])
    return m, weights(m)


def forward(name, repeats):
    m, w = setup(name)
    n = m["batch"]
    x = torch.randn(n, m["in_ch"], m["input_size"], m["input_size"])
    t = torch.full((n,), 500.0)
    y = torch.arange(n) % m["classes"]
    times = []
    with torch.no_grad():
        o.dit_forward(w, x, t, w["y_embedder.embedding_table.weight"][y])
        for _ in range(repeats):
            s = time.perf_counter()
            o.dit_forward(w, x, t, w["y_embedder.embedding_table.weight"][y])
            times.append(time.perf_counter() - s)
    return statistics.median(times)


def hybrid_loss(out, x0, x_t, noise, t, diff):
    """MSE(eps) + L_vlb with the mean detached (KL term only: t = 0 is rare in a batch)."""
    c = x0.shape[1]
    eps, v = out[:, :c], out[:, c:]
    mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))

    def g(a):
        return torch.tensor(a[t.numpy()], dtype=torch.float32).view(-1, 1, 1, 1)

    true_mean = g(diff["coef1"]) * x0 + g(diff["coef2"]) * x_t
    true_lv = g(diff["lv"])
    x0_hat = g(diff["sr"]) * x_t - g(diff["srm1"]) * eps.detach()
    model_mean = g(diff["coef1"]) * x0_hat + g(diff["coef2"]) * x_t
    frac = (v + 1) / 2
    model_lv = frac * g(np.log(diff["betas"])) + (1 - frac) * true_lv
    kl = 0.5 * (-1.0 + model_lv - true_lv + torch.exp(true_lv - model_lv) + (true_mean - model_mean) ** 2 * torch.exp(-model_lv))
    return (mse + kl.mean(dim=(1, 2, 3)) / math.log(2.0)).mean()


def train(name, repeats):
    m, w = setup(name)
    n = m["batch"]
    params = [v for k, v in w.items() if k != "pos_embed"]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    ema = [p.detach().clone() for p in params]
    betas = np.linspace(1e-4, 0.02, 1000)
    ac = np.cumprod(1 - betas)
    acp = np.append(1.0, ac[:-1])
    var = betas * (1 - acp) / (1 - ac)
    diff = dict(betas=betas, sr=np.sqrt(1 / ac), srm1=np.sqrt(1 / ac - 1), lv=np.log(np.append(var[1], var[1:])),
                coef1=betas * np.sqrt(acp) / (1 - ac), coef2=(1 - acp) * np.sqrt(1 - betas) / (1 - ac), ac=ac)
    x0 = torch.rand(n, m["in_ch"], m["input_size"], m["input_size"]) * 2 - 1
    y = torch.arange(n) % m["classes"]

    def step():
        t = torch.randint(0, 1000, (n,))
        noise = torch.randn_like(x0)
        a = torch.tensor(ac[t.numpy()], dtype=torch.float32).view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        out = o.dit_forward(w, x_t, t.float(), w["y_embedder.embedding_table.weight"][y])
        loss = hybrid_loss(out, x0, x_t, noise, t, diff)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema, params):
                e.mul_(0.9999).add_(p, alpha=1e-4)

    step()
    times = []
    for _ in range(repeats):
        s = time.perf_counter()
        step()
        times.append(time.perf_counter() - s)
    return statistics.median(times)


def main():
    workload = sys.argv[1]
    repeats = int(os.environ.get("REPEATS", "5"))
    kind, name = workload.split("-")
    seconds = (forward if kind == "forward" else train)(name, repeats)
    print(json.dumps({"impl": "pytorch", "workload": workload, "threads": torch.get_num_threads(), "median_s": round(seconds, 4)}))


if __name__ == "__main__":
    main()
