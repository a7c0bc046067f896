"""The hyper-parameter study of hparams.sh (beside this file) as a Markdown table (stdout).

    ${PYTHON:-python3} experiments/fashion-mnist-table/summarize_hparams.py [RESULTS] [TABLE_RESULTS] [BESIDE]

One table per augmentation (cells named <setting>-dsa ran with DSA). Each table's defaults row
is the study's own `defaults` cell if it has one (the validation study does), else the `dmgd`
IPC-10 cell of TABLE_RESULTS (default experiments/fashion-mnist-table/results/table), tested on
the same test split. RESULTS defaults to experiments/fashion-mnist-table/results/hparams.
BESIDE, another RESULTS of the same study tested elsewhere (the validation study puts the
test-split study there), adds its accuracy for each setting as a second column.
"""
import glob, os, sys

from records import details

out = sys.argv[1] if len(sys.argv) > 1 else "experiments/fashion-mnist-table/results/hparams"
table = sys.argv[2] if len(sys.argv) > 2 else "experiments/fashion-mnist-table/results/table"
beside = sys.argv[3] if len(sys.argv) > 3 else None
DEFAULTS = "defaults: rho 0.5, K 10, beta_n 0.06, CFG 4, window [30, 45]"


def accuracy(path):
    if not path or not os.path.exists(path):
        return "—"
    d = details(path)
    a = d["summary"]["final_accuracy"]
    return f"{a['mean']:.2f} ± {a['std']:.2f} ({d['summary']['runs']})"


def cells(results, augment):
    """setting name -> eval.json; the defaults from TABLE_RESULTS unless the study ran its own."""
    suffix = "" if augment == "none" else f"-{augment}"
    found = {}
    for path in sorted(glob.glob(os.path.join(results, "eval", "*", "eval.json"))):
        name = os.path.basename(os.path.dirname(path))
        if name.endswith("-dsa") == (augment == "dsa"):
            found[name[: len(name) - len(suffix)]] = path
    default = os.path.join(table, "eval", f"dmgd-ipc10-{augment}", "eval.json")
    if found and "defaults" not in found and os.path.exists(default):
        found["defaults"] = default
    return found


def test_name(path):
    test = details(path)["test"]
    test = test["source"] if isinstance(test, dict) else test  # a set record since 2026-12-02
    return test.split(" (")[0]  # drop the machine's path


for augment in ("none", "dsa"):
    ours = cells(out, augment)
    if not ours:
        continue
    theirs = cells(beside, augment) if beside else {}
    epochs = 300 if augment == "none" else 1000
    tests = sorted({test_name(p) for p in ours.values()})
    print(f"\nAugmentation {augment} ({epochs} epochs), tested on {' and '.join(tests)}.\n")
    header = "| setting (knobs moved from the DMGD defaults; `dit-` rows are plain DiT sampling) "
    if beside:
        other = " and ".join(sorted({test_name(p) for p in theirs.values()}))
        print(header + f"| final acc (%) (runs) | on {other} (runs) |\n|---|---|---|")
    else:
        print(header + "| final acc (%) (runs) |\n|---|---|")
    for name in sorted(ours, key=lambda n: (n != "defaults", n)):  # defaults first
        cols = [accuracy(ours[name])] + ([accuracy(theirs.get(name))] if beside else [])
        print(f"| {DEFAULTS if name == 'defaults' else name} | " + " | ".join(cols) + " |")
