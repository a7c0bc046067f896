"""The hyper-parameter study of benches/table/hparams.sh as a Markdown table (stdout).

    python3 benches/table/summarize_hparams.py [RESULTS] [TABLE_RESULTS]

One table per augmentation (cells named <setting>-dsa ran with DSA). TABLE_RESULTS (default
benches/results/table) supplies each table's defaults row: its `dmgd` IPC-10 cell.
"""
import glob, json, os, sys

out = sys.argv[1] if len(sys.argv) > 1 else "benches/results/hparams"
table = sys.argv[2] if len(sys.argv) > 2 else "benches/results/table"


def row(name, path):
    r = json.load(open(path))
    d = r["details"] if "details" in r else r
    a = d["summary"]["final_accuracy"]
    return f"| {name} | {a['mean']:.2f} ± {a['std']:.2f} | {d['summary']['runs']} |"


for augment in ("none", "dsa"):
    suffix = "" if augment == "none" else f"-{augment}"
    paths = [p for p in sorted(glob.glob(os.path.join(out, "eval", "*", "eval.json")))
             if os.path.basename(os.path.dirname(p)).endswith("-dsa") == (augment == "dsa")]
    if not paths:
        continue
    epochs = 300 if augment == "none" else 1000
    print(f"\nAugmentation {augment} ({epochs} epochs).\n")
    print("| setting (knobs moved from the DMGD defaults; `dit-` rows are plain DiT sampling) | final acc (%) | runs |")
    print("|---|---|---|")
    default = os.path.join(table, "eval", f"dmgd-ipc10-{augment}", "eval.json")
    if os.path.exists(default):
        print(row("defaults: rho 0.5, K 10, beta_n 0.06, CFG 4, window [30, 45]", default))
    for path in paths:
        name = os.path.basename(os.path.dirname(path))
        print(row(name[: len(name) - len(suffix)] if suffix else name, path))
