"""PyTorch side of the GPU check (scripts/gpu-check.sh): the workloads `dmgd device-check`
times, on the same GPU, as Markdown rows. ResNetAP-10 and ResNet-18 (instance norm, the
oracle's nets of oracle/param_counts.py) training steps at 224 px, batch 64, AdamW 1e-3 /
0.01; DiT-XL/2 (random weights, oracle/dit_oracle.py's forward) CFG forwards at batch 1 and
10 in f32, with TF32 matmuls, and in bf16 (weights and activations). Median of REPEATS after
one warm-up.

    "${PYTHON:-python3}" benches/gpu/torch_timings.py [REPEATS]
"""
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "oracle"))
import dit_oracle  # noqa: E402
from param_counts import ResNet18, ResNetAP10  # noqa: E402

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
dev = torch.device("cuda")


def median_seconds(f):
    f()
    torch.cuda.synchronize()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        f()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def students():
    for name, net in [("resnetap10", ResNetAP10(3, 10)), ("resnet18", ResNet18(3, 10))]:
        net = net.to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
        x = torch.randn(64, 3, 224, 224, device=dev)
        y = torch.arange(64, device=dev) % 10

        def step():
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()

        yield f"{name} 224px training step, batch 64, AdamW", median_seconds(step)


def dit_xl2():
    d, depth, heads, p, c, classes = 1152, 28, 16, 2, 4, 1000
    dit_oracle.CFG.update(input_size=32, patch=p, in_ch=c, hidden=d, depth=depth, heads=heads, classes=classes)
    shapes = dit_oracle.xl2_shapes()
    torch.manual_seed(0)
    w32 = {k: torch.randn(s, device=dev) * 0.02 for k, s in shapes.items()}
    for precision in ("f32", "tf32", "bf16"):
        tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        w = {k: v.to(dtype) for k, v in w32.items()}
        for n in (1, 10):
            x = torch.randn(2 * n, c, 32, 32, device=dev, dtype=dtype)
            t = torch.full((2 * n,), 500, device=dev)
            y = torch.cat([torch.arange(n, device=dev) % classes, torch.full((n,), classes, device=dev)])
            with torch.no_grad():
                seconds = median_seconds(lambda: dit_oracle.forward_with_cfg(w, x, t, y, 4.0))
            yield f"DiT-XL/2 256px CFG forward ({precision}), {n} image(s)", seconds


print(f"### PyTorch {torch.__version__} on {torch.cuda.get_device_name()} (median of {REPEATS})\n")
print("| workload | seconds | 50 steps per image |\n|---|---|---|")
for what, seconds in list(students()) + list(dit_xl2()):
    n = int(what.rsplit(", ", 1)[1].split(" ")[0]) if what.startswith("DiT") else None
    per_image = f"{50 * seconds / n:.3f} s" if n else "-"
    print(f"| {what} | {seconds:.4f} | {per_image} |", flush=True)
