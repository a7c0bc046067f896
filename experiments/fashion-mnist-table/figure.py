"""Accuracy against IPC per method, from the cells of run.sh beside this file (needs matplotlib).

    ${PYTHON:-python3} experiments/fashion-mnist-table/figure.py [OUT_DIR] [PNG] [AUGMENT]
    (defaults: experiments/fashion-mnist-table/results/table, docs/img/table-accuracy-vs-ipc.png,
    none)

Error bars are one sample standard deviation; the published DSA and random-real rows of
docs/METHOD.md §9 are drawn dashed for reference.
"""
import glob, json, os, sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

out = sys.argv[1] if len(sys.argv) > 1 else "experiments/fashion-mnist-table/results/table"
png = sys.argv[2] if len(sys.argv) > 2 else "docs/img/table-accuracy-vs-ipc.png"
augment = sys.argv[3] if len(sys.argv) > 3 else "none"
ORDER = ["random", "dit", "mgd3", "dmgd-no-distribution", "dmgd-no-semantic", "dmgd", "dmgd-tuned"]
PUBLISHED = {"DSA (published)": (70.6, 84.6, 88.7), "random real (published)": (51.4, 73.8, 82.5)}

points = {}  # method -> [(ipc, mean, std)]
for path in sorted(glob.glob(os.path.join(out, "eval", f"*-{augment}", "eval.json"))):
    method, rest = os.path.basename(os.path.dirname(path)).rsplit("-ipc", 1)
    r = json.load(open(path))
    a = (r["details"] if "details" in r else r)["summary"]["final_accuracy"]
    points.setdefault(method, []).append((int(rest.split("-")[0]), a["mean"], a["std"]))

fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
for method in sorted(points, key=lambda m: ORDER.index(m) if m in ORDER else 99):
    ipc, mean, std = zip(*sorted(points[method]))
    ax.errorbar(ipc, mean, yerr=std, marker="o", capsize=3, label=method)
for name, values in PUBLISHED.items():
    ax.plot((1, 10, 50), values, linestyle="--", color="grey" if "random" in name else "black",
            linewidth=1, label=name)
ax.set_xscale("log")
ax.set_xticks([1, 10, 50], ["1", "10", "50"])
ax.set_xlabel("images per class (IPC)")
ax.set_ylabel("test accuracy (%), final epoch")
ax.set_title(f"Fashion-MNIST, ConvNet-3, dc protocol, augmentation {augment}")
ax.grid(alpha=0.3)
ax.legend(fontsize=7)
fig.tight_layout()
tmp = png + ".tmp.png"
fig.savefig(tmp)
os.replace(tmp, png)
print(png)
