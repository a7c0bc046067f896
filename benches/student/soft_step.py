"""PyTorch side of the soft-label step benchmark (benches/student/soft_step.rs): ConvNet-3
teacher (eval, no grad) + ConvNet-3 student on 28 x 28 Fashion-MNIST, KL(batchmean) at T = 20
without the T^2 factor, AdamW 1e-3 with weight decay 0.01 on the >1-D `weight`s only (RDED's
grouping), batches 50 and 100. Packages: oracle/requirements.txt.

    OMP_WAIT_POLICY=PASSIVE "${PYTHON:-python3}" benches/student/soft_step.py
"""
import gzip
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "oracle"))
from param_counts import ConvNet  # noqa: E402

torch.set_num_threads(2)
DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
MEAN, STD, T, STEPS = 0.2861, 0.3530, 20.0, 15

with gzip.open(f"{DIR}/train-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:100]
images = (torch.from_numpy(images.astype(np.float32)) / 255.0 - MEAN) / STD
torch.manual_seed(1)
teacher = ConvNet(1, 10, 3, 28).eval()


def timed(f):
    """Seconds of each of STEPS calls of f."""
    times = []
    for _ in range(STEPS):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return times


for batch in (50, 100):
    x = images[:batch].contiguous()
    torch.manual_seed(0)
    net = ConvNet(1, 10, 3, 28)
    decay = [p for n, p in net.named_parameters() if n.endswith("weight") and p.dim() > 1]
    rest = [p for n, p in net.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=1e-3)

    def step():
        with torch.no_grad():
            soft = F.softmax(teacher(x) / T, dim=1)
        opt.zero_grad()
        loss = F.kl_div(F.log_softmax(net(x) / T, dim=1), soft, reduction="batchmean")
        loss.backward()
        opt.step()
        return loss.item()

    step()  # warm-up
    times = timed(step)
    print(f"torch soft_step convnet3 batch {batch}: median {statistics.median(times):.4f} s over {STEPS} "
          f"(min {min(times):.4f}), loss {step():.5f}")

    def teacher_forward():
        with torch.no_grad():
            teacher(x)

    def hard_step():
        opt.zero_grad()
        F.cross_entropy(net(x), torch.zeros(batch, dtype=torch.long)).backward()
        opt.step()

    parts = [statistics.median(timed(f)) for f in (teacher_forward, hard_step)]
    print(f"torch   of which: teacher forward {parts[0]:.4f} s; a hard-label step {parts[1]:.4f} s")
