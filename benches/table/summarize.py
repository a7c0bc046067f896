"""Turns the cells of benches/table/run.sh into a Markdown table (stdout)."""
import glob, json, os, sys

PUBLISHED = {  # DESIGN.md §9, Fashion-MNIST, ConvNet-3, IPC 1 / 10 / 50
    "random real (published)": (51.4, 73.8, 82.5), "DC": (70.5, 82.3, 83.6), "DSA": (70.6, 84.6, 88.7),
    "DM": (71.5, 83.6, 88.2), "MTT": (75.1, 87.2, 88.3),
}
out = sys.argv[1] if len(sys.argv) > 1 else "runs/table"
cells = {}
for path in sorted(glob.glob(os.path.join(out, "eval", "*", "eval.json"))):
    name = os.path.basename(os.path.dirname(path))
    method, rest = name.rsplit("-ipc", 1)
    ipc, augment = rest.split("-", 1)
    r = json.load(open(path))
    s = r["details"]["summary"] if "details" in r else r["summary"]
    cells[(method, int(ipc), augment)] = (s, r.get("seconds", float("nan")))
ipcs = sorted({k[1] for k in cells})
for augment in ("none", "dsa"):
    rows = sorted({k[0] for k in cells if k[2] == augment})
    if not rows:
        continue
    print(f"\n### ConvNet-3, dc protocol, augmentation: {augment} (final-epoch accuracy %, mean ± std)\n")
    print("| method | " + " | ".join(f"IPC {i}" for i in ipcs) + " |")
    print("|---|" + "---|" * len(ipcs))
    for m in rows:
        vals = []
        for i in ipcs:
            c = cells.get((m, i, augment))
            vals.append(f"{c[0]['final_accuracy']['mean']:.1f} ± {c[0]['final_accuracy']['std']:.1f} ({c[0]['runs']} runs)" if c else "—")
        print(f"| {m} | " + " | ".join(vals) + " |")
print("\n### Published (DESIGN.md §9)\n")
print("| method | IPC 1 | IPC 10 | IPC 50 |\n|---|---|---|---|")
for m, v in PUBLISHED.items():
    print(f"| {m} | " + " | ".join(str(x) for x in v) + " |")
