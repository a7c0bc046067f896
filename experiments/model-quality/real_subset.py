"""The real-image reference of the checkpoint curve: N/10 training images per class, the first
of each class, none of them among the images `pretrain --holdout-per-class H` held out (the
last H of each class), written as an ImageFolder that `dmgd quality` reads; judged against
the held-out images, they give the distance real images reach with the curve's sample size.

    "${PYTHON:-python3}" experiments/model-quality/real_subset.py OUT_DIR [N] [H]
    (Fashion-MNIST from FASHION_MNIST_DIR, default /usr/share/datasets/fashion-mnist)
"""
import gzip
import os
import pathlib
import sys

import numpy as np
from PIL import Image

CLASSES = ["0-tshirt-top", "1-trouser", "2-pullover", "3-dress", "4-coat", "5-sandal", "6-shirt",
           "7-sneaker", "8-bag", "9-ankle-boot"]


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main(out, n, holdout):
    root = pathlib.Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    images = idx(root / "train-images-idx3-ubyte.gz")
    labels = idx(root / "train-labels-idx1-ubyte.gz")
    for k, name in enumerate(CLASSES):
        members = np.flatnonzero(labels == k)
        kept = members[: len(members) - holdout]  # the held-out ones are the last
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for j, i in enumerate(kept[: n // 10]):
            Image.fromarray(images[i]).save(folder / f"{j:05d}.png")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(pathlib.Path(args[0]), int(args[1]) if len(args) > 1 else 1000,
         int(args[2]) if len(args) > 2 else 500)
