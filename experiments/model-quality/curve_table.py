"""The checkpoint curve as a Markdown table: the step*.json that checkpoint_curve.sh wrote, and
real-train.json (real_subset.py's real images, judged the same way) where it is there.

    python3 experiments/model-quality/curve_table.py RESULTS_DIR

With --step, one checkpoint across guidance scales instead: one row per RESULTS_DIR (each a
checkpoint_curve.sh run with another CFG), the scale read from the folder's name as that script
names it (`-cfg<scale>`, none for its default 4).

    python3 experiments/model-quality/curve_table.py --step 32500 RESULTS_DIR...
"""

import json
import pathlib
import re
import sys


def judged(path):
    outcome = json.loads(path.read_text())["outcome"]
    (one,) = outcome["sets"]
    return outcome, one


def print_real(results):
    real = pathlib.Path(results) / "real-train.json"
    if real.exists():  # real_subset.py's images: the floor at this sample size
        _, one = judged(real)
        print(f"| real training images | {one['count']} | {one['frechet_distance']:.2f} "
              f"| {one['agreement']:.1f} % |")


def curve(results):
    rows = []
    for path in sorted(pathlib.Path(results).glob("step*.json")):
        outcome, one = judged(path)
        step = int(path.stem.removeprefix("step"))
        rows.append((step, one["count"], one["frechet_distance"], one["agreement"]))
    print(f"Reference: {outcome['reference']} ({outcome['reference_count']} images)\n")
    print("| step | samples | Fréchet distance | agreement |")
    print("|---:|---:|---:|---:|")
    for step, count, distance, agreement in rows:
        print(f"| {step} | {count} | {distance:.2f} | {agreement:.1f} % |")
    print_real(results)


def sweep(step, folders):
    rows = []
    for folder in folders:
        found = re.search(r"-cfg([0-9.]+)$", pathlib.Path(folder).name)
        scale = float(found.group(1)) if found else 4.0
        outcome, one = judged(pathlib.Path(folder) / f"step{step:07d}.json")
        rows.append((scale, one["count"], one["frechet_distance"], one["agreement"]))
    print(f"Step {step}; reference: {outcome['reference']} ({outcome['reference_count']} images)\n")
    print("| CFG | samples | Fréchet distance | agreement |")
    print("|---:|---:|---:|---:|")
    for scale, count, distance, agreement in sorted(rows):
        print(f"| {scale:g} | {count} | {distance:.2f} | {agreement:.1f} % |")
    for folder in folders:  # the floor, from whichever folder holds it
        if (pathlib.Path(folder) / "real-train.json").exists():
            print_real(folder)
            break


if __name__ == "__main__":
    if sys.argv[1] == "--step":
        sweep(int(sys.argv[2]), sys.argv[3:])
    else:
        curve(sys.argv[1])
