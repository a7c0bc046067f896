"""The checkpoint curve as a Markdown table: the step*.json that checkpoint_curve.sh wrote, and
real-train.json (real_subset.py's real images, judged the same way) where it is there.

    python3 experiments/model-quality/curve_table.py RESULTS_DIR
"""

import json
import pathlib
import sys


def main(results):
    rows = []
    for path in sorted(pathlib.Path(results).glob("step*.json")):
        outcome = json.loads(path.read_text())["outcome"]
        (judged,) = outcome["sets"]
        step = int(path.stem.removeprefix("step"))
        rows.append((step, judged["count"], judged["frechet_distance"], judged["agreement"]))
    print(f"Reference: {outcome['reference']} ({outcome['reference_count']} images)\n")
    print("| step | samples | Fréchet distance | agreement |")
    print("|---:|---:|---:|---:|")
    for step, count, distance, agreement in rows:
        print(f"| {step} | {count} | {distance:.2f} | {agreement:.1f} % |")
    real = pathlib.Path(results) / "real-train.json"
    if real.exists():  # real_subset.py's images: the floor at this sample size
        (judged,) = json.loads(real.read_text())["outcome"]["sets"]
        print(f"| real training images | {judged['count']} | {judged['frechet_distance']:.2f} "
              f"| {judged['agreement']:.1f} % |")


if __name__ == "__main__":
    main(sys.argv[1])
