"""PyTorch side of the student benchmark: the same ConvNet-3 step (batch 256, 28 x 28
Fashion-MNIST, forward + backward + SGD 0.01/0.9/5e-4) and the 10,000-image test pass. The net is
the oracle's (oracle/param_counts.py); packages: oracle/requirements.txt.

    OMP_WAIT_POLICY=PASSIVE "${PYTHON:-python3}" benches/student/train_step.py

FASHION_MNIST_DIR overrides where the four IDX files are read from.
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
# The Debian package dataset-fashion-mnist installs here (dmgd's --fashion-mnist-dir default).
DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2861, 0.3530
BATCH, STEPS, TEST_PASSES = 256, 7, 3


def load(prefix):
    with gzip.open(f"{DIR}/{prefix}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{DIR}/{prefix}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (torch.from_numpy(x.astype(np.float32)) / 255.0 - MEAN) / STD
    return x, torch.from_numpy(y.astype(np.int64))


x_train, y_train = load("train")
x_test, y_test = load("t10k")
x, y = x_train[:BATCH].contiguous(), y_train[:BATCH]
torch.manual_seed(0)
net = ConvNet(1, 10, 3, 28)
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


def step():
    opt.zero_grad()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss.item()


step()  # warm-up
times = []
for _ in range(STEPS):
    t = time.perf_counter()
    loss = step()
    times.append(time.perf_counter() - t)
print(f"torch train_step convnet3 batch {BATCH}: median {statistics.median(times):.3f} s over {STEPS} "
      f"(min {min(times):.3f}, max {max(times):.3f}), loss {loss:.3f}")

net.eval()
times = []
for _ in range(TEST_PASSES):
    t = time.perf_counter()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x_test), 500):
            correct += (net(x_test[i:i + 500]).argmax(1) == y_test[i:i + 500]).sum().item()
    times.append(time.perf_counter() - t)
med = statistics.median(times)
print(f"torch test_pass {len(x_test)} images: median {med:.2f} s over {TEST_PASSES} ({len(x_test) / med:.0f} img/s), "
      f"accuracy {100 * correct / len(x_test):.2f} %")
