"""Independent PyTorch implementation of the `dc` Fashion-MNIST protocol (test oracle only).

ConvNet-3 (width 128, instance norm = GroupNorm(128, 128), ReLU, AvgPool 2; padding 3 on the
first conv so 28x28 is seen as 32x32), normalisation mean 0.2861 std 0.3530, SGD lr 0.01
momentum 0.9 wd 5e-4, batch 256, E epochs with lr x0.1 after E/2 (DC's `lr_schedule =
[Epoch // 2 + 1]`), no augmentation, test on the 10,000 test images at the end.

It trains on exactly the images `dmgd select` chose (the `source_indices` of its manifest.json),
or on the full training set, so Rust and PyTorch numbers compare like for like:

    OMP_WAIT_POLICY=PASSIVE ${PYTHON:-python3} oracle/dc_convnet.py --manifest runs/random-ipc10-s0/manifest.json --repeats 2
    OMP_WAIT_POLICY=PASSIVE ${PYTHON:-python3} oracle/dc_convnet.py --full --epochs 5

Fashion-MNIST is read from --fashion-mnist-dir (as for dmgd; FASHION_MNIST_DIR sets the default).
"""
import argparse, gzip, json, os, time
import numpy as np
import torch
import torch.nn as nn

# The Debian package dataset-fashion-mnist installs here (dmgd's --fashion-mnist-dir default).
FMNIST = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2861, 0.3530


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n_dims = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(n_dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims).reshape(dims)


def load(directory, split):
    x = idx(f"{directory}/{split}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = idx(f"{directory}/{split}-labels-idx1-ubyte.gz").astype(np.int64)
    x = (x - MEAN) / STD
    return torch.from_numpy(x[:, None]), torch.from_numpy(y)


def convnet3():
    layers, c = [], 1
    for d in range(3):
        layers += [nn.Conv2d(c, 128, 3, padding=3 if d == 0 else 1), nn.GroupNorm(128, 128, affine=True),
                   nn.ReLU(inplace=True), nn.AvgPool2d(2, 2)]
        c = 128
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(128 * 4 * 4, 10))


def train_and_test(x, y, xt, yt, epochs, seed):
    torch.manual_seed(seed)
    net = convnet3()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    for ep in range(epochs):
        if ep == epochs // 2 + 1:  # DC: lr_schedule = [Epoch // 2 + 1]
            for g in opt.param_groups:
                g["lr"] *= 0.1
        net.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 256):
            b = perm[i:i + 256]
            opt.zero_grad()
            loss_fn(net(x[b]), y[b]).backward()
            opt.step()
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(xt), 1000):
            correct += (net(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item()
    return correct / len(xt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", help="manifest.json of `dmgd select`")
    ap.add_argument("--full", action="store_true", help="train on all 60,000 images")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fashion-mnist-dir", default=FMNIST, help="directory of the four *-ubyte.gz files")
    args = ap.parse_args()
    torch.set_num_threads(2)
    x, y = load(args.fashion_mnist_dir, "train")
    xt, yt = load(args.fashion_mnist_dir, "t10k")
    if args.manifest:
        picks = json.load(open(args.manifest))["details"]["source_indices"]
        sel = torch.tensor([i for cls in picks for i in cls])
        x, y = x[sel], y[sel]
    elif not args.full:
        ap.error("pass --manifest or --full")
    accs, t0 = [], time.time()
    for r in range(args.repeats):
        accs.append(train_and_test(x, y, xt, yt, args.epochs, args.seed + r))
    print(json.dumps({"images": len(x), "epochs": args.epochs, "accuracies": accs,
                      "mean": float(np.mean(accs)), "seconds": time.time() - t0}))


if __name__ == "__main__":
    main()
