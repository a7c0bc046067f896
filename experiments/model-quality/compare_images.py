"""How far apart two sample folders of the same run settings are, image by image: the check that
storing a model in f16 leaves its outputs alone (sample the f32 and the f16 file with the same
seed, then compare). Both are `dmgd sample` / `distill` outputs (OUT/images/<class>/<i>.png);
every image of A must exist in B. Prints the absolute pixel differences in 8-bit levels (mean,
99th percentile, max), the share of identical pixels and of images whose largest difference
exceeds 32 levels (a visibly different image).

    "${PYTHON:-python3}" experiments/model-quality/compare_images.py A B
"""
import pathlib
import sys

import numpy as np
from PIL import Image


def load(path):
    return np.asarray(Image.open(path), dtype=np.int16)


def main(a, b):
    a, b = pathlib.Path(a) / "images", pathlib.Path(b) / "images"
    names = sorted(p.relative_to(a) for p in a.glob("*/*.png"))
    if not names:
        sys.exit(f"{a}: no images/<class>/<index>.png")
    diffs, visibly_different = [], 0
    for name in names:
        other = b / name
        if not other.is_file():
            sys.exit(f"{other}: missing (it is in {a})")
        x, y = load(a / name), load(other)
        if x.shape != y.shape:
            sys.exit(f"{name}: shape {x.shape} in {a}, {y.shape} in {b}")
        d = np.abs(x - y).ravel()
        visibly_different += int(d.max() > 32)
        diffs.append(d)
    d = np.concatenate(diffs)
    print(f"{len(names)} images, {d.size} pixels")
    print(f"absolute difference (levels of 255): mean {d.mean():.3f}, "
          f"99th percentile {np.percentile(d, 99):.0f}, max {d.max()}")
    print(f"identical pixels: {100 * np.mean(d == 0):.2f} %")
    print(f"images with a pixel more than 32 levels apart: {visibly_different}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
