"""Writes the Fashion-MNIST test split mirrored left-right as an ImageFolder, to measure what a
classifier of real images makes of mirrored ones (models/fashion-mnist-dit/README.md).

    ${PYTHON:-python3} experiments/model-quality/mirrored_test.py runs/real-test-flipped
    dmgd quality --images runs/real-test-flipped \
      --classifier runs/eval-full-e10/net-set0-run0.safetensors --out runs/quality-flipped-test.json

Needs numpy and Pillow (oracle/requirements.txt; the product never runs Python).
FASHION_MNIST_DIR overrides where the IDX files are read from.
"""
import gzip, os, sys
import numpy as np
from PIL import Image

NAMES = ["0-tshirt-top", "1-trouser", "2-pullover", "3-dress", "4-coat", "5-sandal", "6-shirt",
         "7-sneaker", "8-bag", "9-ankle-boot"]
# The Debian package dataset-fashion-mnist installs here (dmgd's --fashion-mnist-dir default).
DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
out = sys.argv[1] if len(sys.argv) > 1 else "runs/real-test-flipped"
with gzip.open(f"{DIR}/t10k-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28)
with gzip.open(f"{DIR}/t10k-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read()[8:], np.uint8)
for name in NAMES:
    os.makedirs(f"{out}/{name}", exist_ok=True)
for i, (image, label) in enumerate(zip(images, labels)):
    Image.fromarray(image[:, ::-1].copy()).save(f"{out}/{NAMES[label]}/{i:05d}.png")
print(f"{len(images)} mirrored test images in {out}")
