"""The hyper-parameter study of benches/table/hparams.sh as a Markdown table (stdout).

    python3 benches/table/summarize_hparams.py [RESULTS] [TABLE_RESULTS]

One table per augmentation (cells named <setting>-dsa ran with DSA). Each table's defaults row
is the study's own `defaults` cell if it has one (the validation study does), else the `dmgd`
IPC-10 cell of TABLE_RESULTS (default benches/results/table), tested on the same test split.
"""
import glob, json, os, sys

out = sys.argv[1] if len(sys.argv) > 1 else "benches/results/hparams"
table = sys.argv[2] if len(sys.argv) > 2 else "benches/results/table"


def details(path):
    r = json.load(open(path))
    return r["details"] if "details" in r else r


def row(name, path):
    d = details(path)
    a = d["summary"]["final_accuracy"]
    return f"| {name} | {a['mean']:.2f} ± {a['std']:.2f} | {d['summary']['runs']} |"


for augment in ("none", "dsa"):
    suffix = "" if augment == "none" else f"-{augment}"
    paths = [p for p in sorted(glob.glob(os.path.join(out, "eval", "*", "eval.json")))
             if os.path.basename(os.path.dirname(p)).endswith("-dsa") == (augment == "dsa")]
    if not paths:
        continue
    epochs = 300 if augment == "none" else 1000
    tests = sorted({details(p)["test"].split(" (")[0] for p in paths})  # drop the path
    print(f"\nAugmentation {augment} ({epochs} epochs), tested on {' and '.join(tests)}.\n")
    print("| setting (knobs moved from the DMGD defaults; `dit-` rows are plain DiT sampling) | final acc (%) | runs |")
    print("|---|---|---|")
    default = os.path.join(table, "eval", f"dmgd-ipc10-{augment}", "eval.json")
    if os.path.exists(default) and not any(p.endswith(f"/defaults{suffix}/eval.json") for p in paths):
        print(row("defaults: rho 0.5, K 10, beta_n 0.06, CFG 4, window [30, 45]", default))
    for path in sorted(paths, key=lambda p: "/defaults" not in p):  # defaults first
        name = os.path.basename(os.path.dirname(path))
        name = name[: len(name) - len(suffix)] if suffix else name
        if name == "defaults":
            name = "defaults: rho 0.5, K 10, beta_n 0.06, CFG 4, window [30, 45]"
        print(row(name, path))
