"""Test oracle: a PyTorch DiT + IDDPM diffusion written from docs/METHOD.md §2 and §4, used only
to regenerate the fixtures that crates/diffusion/tests/parity.rs reads
(crates/diffusion/tests/fixtures/dit_tiny*.safetensors).

    ${PYTHON:-python3} oracle/dit_oracle.py

Tiny random-weight model (input 8, patch 2, 4 channels, width 64, depth 2, 4 heads, 5 classes),
weights drawn with non-zero adaLN so every path contributes. Fixed seed: reruns give the same files.
"""
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[1] / "crates" / "diffusion" / "tests" / "fixtures"
torch.manual_seed(0)

CFG = dict(input_size=8, patch=2, in_ch=4, hidden=64, depth=2, heads=4, classes=5)


def dit_shapes(d, p, in_ch, classes, depth):
    """A DiT's parameters but the fixed position table: key -> shape, in the order the
    fixtures draw them (width d, patch p, learned sigma)."""
    shapes = {
        "x_embedder.proj.weight": (d, in_ch, p, p), "x_embedder.proj.bias": (d,),
        "t_embedder.mlp.0.weight": (d, 256), "t_embedder.mlp.0.bias": (d,),
        "t_embedder.mlp.2.weight": (d, d), "t_embedder.mlp.2.bias": (d,),
        "y_embedder.embedding_table.weight": (classes + 1, d),
        "final_layer.adaLN_modulation.1.weight": (2 * d, d), "final_layer.adaLN_modulation.1.bias": (2 * d,),
        "final_layer.linear.weight": (p * p * 2 * in_ch, d), "final_layer.linear.bias": (p * p * 2 * in_ch,),
    }
    for i in range(depth):
        b = f"blocks.{i}"
        shapes.update({
            b + ".attn.qkv.weight": (3 * d, d), b + ".attn.qkv.bias": (3 * d,),
            b + ".attn.proj.weight": (d, d), b + ".attn.proj.bias": (d,),
            b + ".mlp.fc1.weight": (4 * d, d), b + ".mlp.fc1.bias": (4 * d,),
            b + ".mlp.fc2.weight": (d, 4 * d), b + ".mlp.fc2.bias": (d,),
            b + ".adaLN_modulation.1.weight": (6 * d, d), b + ".adaLN_modulation.1.bias": (6 * d,),
        })
    return shapes


def xl2_shapes():
    """DiT-XL/2 at 256 px (32x32x4 latents, 1000 classes, learned sigma): key -> shape, in the
    order of the benchmarks' random state dicts."""
    d, depth, p, c, classes, tokens = 1152, 28, 2, 4, 1000, 256
    shapes = {
        "x_embedder.proj.weight": (d, c, p, p), "x_embedder.proj.bias": (d,),
        "pos_embed": (1, tokens, d),
        "t_embedder.mlp.0.weight": (d, 256), "t_embedder.mlp.0.bias": (d,),
        "t_embedder.mlp.2.weight": (d, d), "t_embedder.mlp.2.bias": (d,),
        "y_embedder.embedding_table.weight": (classes + 1, d),
    }
    for i in range(depth):
        for name, (o, n) in {"attn.qkv": (3 * d, d), "attn.proj": (d, d), "mlp.fc1": (4 * d, d),
                             "mlp.fc2": (d, 4 * d), "adaLN_modulation.1": (6 * d, d)}.items():
            shapes[f"blocks.{i}.{name}.weight"], shapes[f"blocks.{i}.{name}.bias"] = (o, n), (o,)
    shapes.update({
        "final_layer.linear.weight": (p * p * 2 * c, d), "final_layer.linear.bias": (p * p * 2 * c,),
        "final_layer.adaLN_modulation.1.weight": (2 * d, d), "final_layer.adaLN_modulation.1.bias": (2 * d,),
    })
    return shapes


def freq_embedding(t, dim=256, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # cos first


def pos_table(dim, grid):
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    rows, cols = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")
    # first half of the channels: column coordinate; second half: row coordinate.
    return np.concatenate([one_d(dim // 2, cols), one_d(dim // 2, rows)], axis=1).astype(np.float32)


def layer_norm(x):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], eps=1e-6)


def linear(w, x, prefix):
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def dit_forward(w, x, t, y_emb):
    n, c, h, _ = x.shape
    p, d, heads = CFG["patch"], CFG["hidden"], CFG["heads"]
    tok = torch.nn.functional.conv2d(x, w["x_embedder.proj.weight"], w["x_embedder.proj.bias"], stride=p)
    tok = tok.flatten(2).transpose(1, 2) + w["pos_embed"]  # (N, T, D)
    freq = freq_embedding(t).to(x.dtype)  # computed in f32, as DiT does; a no-op for f32 models
    temb = linear(w, torch.nn.functional.silu(linear(w, freq, "t_embedder.mlp.0")), "t_embedder.mlp.2")
    cond = temb + y_emb
    for i in range(CFG["depth"]):
        b = f"blocks.{i}"
        m = linear(w, torch.nn.functional.silu(cond), b + ".adaLN_modulation.1").chunk(6, dim=1)
        hx = modulate(layer_norm(tok), m[0], m[1])
        qkv = linear(w, hx, b + ".attn.qkv").reshape(n, -1, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q * (d // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        a = (attn @ v).transpose(1, 2).reshape(n, -1, d)
        tok = tok + m[2].unsqueeze(1) * linear(w, a, b + ".attn.proj")
        hx = modulate(layer_norm(tok), m[3], m[4])
        mlp = linear(w, torch.nn.functional.gelu(linear(w, hx, b + ".mlp.fc1"), approximate="tanh"), b + ".mlp.fc2")
        tok = tok + m[5].unsqueeze(1) * mlp
    m = linear(w, torch.nn.functional.silu(cond), "final_layer.adaLN_modulation.1").chunk(2, dim=1)
    out = linear(w, modulate(layer_norm(tok), m[0], m[1]), "final_layer.linear")
    g, oc = h // p, 2 * c
    out = out.reshape(n, g, g, p, p, oc)
    return torch.einsum("nhwpqc->nchpwq", out).reshape(n, oc, g * p, g * p)


def forward_with_cfg(w, x, t, y, scale):
    """DiT's forward_with_cfg: the model on (half, half); guidance on output channels 0..3."""
    half = x[: len(x) // 2]
    combined = torch.cat([half, half], 0)
    out = dit_forward(w, combined, t, w["y_embedder.embedding_table.weight"][y])
    eps, rest = out[:, :3], out[:, 3:]
    cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
    half_eps = uncond_eps + scale * (cond_eps - uncond_eps)
    return torch.cat([torch.cat([half_eps, half_eps], 0), rest], 1)


def space_timesteps(num, count):
    stride = (num - 1) / (count - 1)
    return sorted({round(i * stride) for i in range(count)})  # python round: half to even


class Diffusion:
    def __init__(self, respacing):
        betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
        abar = np.cumprod(1.0 - betas)
        self.timestep_map = space_timesteps(1000, respacing)
        last, new = 1.0, []
        for s in self.timestep_map:
            new.append(1 - abar[s] / last)
            last = abar[s]
        b = np.array(new)
        self.betas = b
        ac = np.cumprod(1.0 - b)
        acp = np.append(1.0, ac[:-1])
        self.sqrt_recip = np.sqrt(1.0 / ac)
        self.sqrt_recipm1 = np.sqrt(1.0 / ac - 1)
        var = b * (1.0 - acp) / (1.0 - ac)
        self.log_var_clipped = np.log(np.append(var[1], var[1:]))
        self.coef1 = b * np.sqrt(acp) / (1.0 - ac)
        self.coef2 = (1.0 - acp) * np.sqrt(1.0 - b) / (1.0 - ac)

    def p_mean_variance(self, out, x, i):
        c = x.shape[1]
        eps, v = out[:, :c], out[:, c:]
        frac = (v + 1) / 2
        log_var = frac * float(np.log(self.betas[i])) + (1 - frac) * float(self.log_var_clipped[i])
        x0 = float(self.sqrt_recip[i]) * x - float(self.sqrt_recipm1[i]) * eps
        mean = float(self.coef1[i]) * x0 + float(self.coef2[i]) * x
        return x0, mean, log_var


def approx_std_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def hybrid_losses(out, x0, noise, t):
    """IDDPM training_losses for learned-range sigma, loss type MSE: per-row (loss, mse, vb)."""
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    ac = np.cumprod(1 - betas)
    acp = np.append(1.0, ac[:-1])
    var = betas * (1 - acp) / (1 - ac)
    lvc = np.log(np.append(var[1], var[1:]))
    c1 = betas * np.sqrt(acp) / (1 - ac)
    c2 = (1 - acp) * np.sqrt(1 - betas) / (1 - ac)

    def g(a):
        return torch.tensor(a[t.numpy()], dtype=torch.float32).view(-1, 1, 1, 1)

    x_t = g(np.sqrt(ac)) * x0 + g(np.sqrt(1 - ac)) * noise
    c = x0.shape[1]
    eps, v = out[:, :c], out[:, c:]
    mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
    true_mean = g(c1) * x0 + g(c2) * x_t
    true_lv = g(lvc)
    x0_hat = g(np.sqrt(1 / ac)) * x_t - g(np.sqrt(1 / ac - 1)) * eps.detach()
    mean = g(c1) * x0_hat + g(c2) * x_t
    frac = (v + 1) / 2
    lv = frac * g(np.log(betas)) + (1 - frac) * true_lv
    kl = 0.5 * (-1.0 + lv - true_lv + torch.exp(true_lv - lv) + (true_mean - mean) ** 2 * torch.exp(-lv))
    kl = kl.mean(dim=(1, 2, 3)) / math.log(2.0)
    centered = x0 - mean
    inv = torch.exp(-0.5 * lv)
    cdf_plus = approx_std_normal_cdf(inv * (centered + 1 / 255.0))
    cdf_min = approx_std_normal_cdf(inv * (centered - 1 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_1m_cdf_min = torch.log((1 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    ll = torch.where(x0 < -0.999, log_cdf_plus, torch.where(x0 > 0.999, log_1m_cdf_min, log_delta))
    nll = -ll.mean(dim=(1, 2, 3)) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl)
    return mse + vb, mse, vb, x_t


def main():
    c = CFG
    d, p = c["hidden"], c["patch"]
    grid = c["input_size"] // p
    shapes = dit_shapes(d, p, c["in_ch"], c["classes"], c["depth"])
    w = {}
    for k, s in shapes.items():
        fan_in = s[1] * (s[2] * s[3] if len(s) == 4 else 1) if len(s) > 1 else 1
        std = 1.0 / math.sqrt(fan_in) if len(s) > 1 else 0.1
        w[k] = torch.randn(s) * std
    w["y_embedder.embedding_table.weight"] = torch.randn(shapes["y_embedder.embedding_table.weight"])
    # A small output layer keeps eps and v in a trained model's range, so the 50-step sample
    # stays O(1) instead of blowing up (v outside [-1, 1] extrapolates the variance).
    w["final_layer.linear.weight"] *= 0.05
    w["final_layer.linear.bias"] *= 0.05
    w["pos_embed"] = torch.from_numpy(pos_table(d, grid)).unsqueeze(0)
    save_file({k: v.contiguous() for k, v in w.items()}, OUT / "dit_tiny.safetensors")

    # Forward pass.
    n = 3
    x = torch.randn(n, c["in_ch"], c["input_size"], c["input_size"])
    t = torch.tensor([0.0, 500.0, 999.0])
    y = torch.tensor([0, 4, c["classes"]])
    out = dit_forward(w, x, t, w["y_embedder.embedding_table.weight"][y])
    tt = torch.tensor([0.0, 1.0, 20.0, 999.0])

    # CFG output: rows (cond of x[0..2], null of x[0..2]).
    xc = torch.cat([x[:2], x[:2]], 0)
    yc = torch.tensor([1, 3, c["classes"], c["classes"]])
    tc = torch.tensor([700.0, 700.0, 700.0, 700.0])
    cfg_out = forward_with_cfg(w, xc, tc, yc, 4.0)

    # One DDPM step of the 50-step process at index 30 from that output.
    diff = Diffusion(50)
    i = 30
    x0, mean, log_var = diff.p_mean_variance(cfg_out[:2], x[:2], i)
    z = torch.randn_like(x[:2])
    step = mean + torch.exp(0.5 * log_var) * z

    # A 50-step CFG sample, DiT's sample.py loop over the doubled batch (noise for all 2N rows);
    # the conditional half is the sample. Rust gets the noise of that half.
    ys = torch.tensor([2, 0])
    xt = torch.randn(2, c["in_ch"], c["input_size"], c["input_size"])
    state = torch.cat([xt, xt], 0)
    ycfg = torch.cat([ys, torch.tensor([c["classes"]] * 2)])
    noises = []
    for idx in reversed(range(50)):
        tcur = torch.full((4,), float(diff.timestep_map[idx]))
        o = forward_with_cfg(w, state, tcur, ycfg, 4.0)
        _, m, lv = diff.p_mean_variance(o, state, idx)
        zz = torch.randn_like(state)
        noises.append(zz[:2].clone())
        state = m + (torch.exp(0.5 * lv) * zz if idx > 0 else 0)
    sample = state[:2]

    # Hybrid training loss on a batch with t = 0 (decoder NLL) and t > 0 (KL) rows; x0 on the
    # 8-bit grid in [-1, 1] with both ends present.
    lx0 = (torch.randint(0, 256, (4, 1, 4, 4)).float() / 127.5 - 1)
    lx0[0, 0, 0, 0], lx0[0, 0, 0, 1] = -1.0, 1.0
    lnoise = torch.randn(4, 1, 4, 4)
    lt = torch.tensor([0, 1, 500, 999])
    lout = torch.cat([lnoise + 0.3 * torch.randn(4, 1, 4, 4), torch.rand(4, 1, 4, 4) * 2 - 1], 1)
    lloss, lmse, lvb, lxt = hybrid_losses(lout, lx0, lnoise, lt)

    save_file({k: v.clone().contiguous() for k, v in {
        "loss_x0": lx0, "loss_noise": lnoise, "loss_t": lt.to(torch.int64), "loss_out": lout, "loss_x_t": lxt,
        "loss": lloss, "loss_mse": lmse, "loss_vb": lvb,
        "x": x, "t": t, "y": y.to(torch.int64), "out": out,
        "t_freq_in": tt, "t_freq": freq_embedding(tt),
        "pos_table": torch.from_numpy(pos_table(d, grid)),
        "betas50": torch.from_numpy(diff.betas), "log_var_clipped50": torch.from_numpy(diff.log_var_clipped),
        "cfg_x": x[:2].clone(), "cfg_y": yc.to(torch.int64), "cfg_out": cfg_out[:2].clone(),
        "step_z": z, "step_x0": x0, "step_mean": mean, "step_log_var": log_var, "step_out": step,
        "sample_y": ys.to(torch.int64), "sample_xT": xt, "sample_noise": torch.stack(noises), "sample": sample,
    }.items()}, OUT / "dit_tiny_io.safetensors")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
