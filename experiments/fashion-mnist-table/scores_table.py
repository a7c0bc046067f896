"""The soft-label tables of docs/RESULTS.md, one per IPC, from the JSONs scores.sh wrote.

    python3 experiments/fashion-mnist-table/scores_table.py [SCORES_DIR]

Accuracies in %, scores as fractions, mean ± sample std over the (set, network) pairs;
final epoch (the cells test once, after the last epoch, so best = final).
"""
import json
import os
import re
import sys

from records import details

METHODS = ["random", "dit", "mgd3", "dmgd", "dmgd-tuned"]
LABELS = {
    "random": "random real",
    "dit": "DiT (no guidance)",
    "mgd3": "MGD³ (mode guidance)",
    "dmgd": "DMGD (defaults)",
    "dmgd-tuned": "DMGD tuned",
}


def pm(summary, scale=1.0, digits=2):
    return f"{summary['mean'] * scale:.{digits}f} ± {summary['std'] * scale:.{digits}f}"


def soft_noaug(scores):
    """The set's no-augmentation soft accuracy, read from its cell (scores keep only the
    difference), or None where the cell was not run."""
    for role, path in scores["cells"]:
        if role == "set, soft labels, no augmentation":
            return details(os.path.join(path, "eval.json"))["summary"]["final_accuracy"]
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "results", "scores")
    found = {}
    for name in os.listdir(folder):
        m = re.fullmatch(r"(.+)-ipc(\d+)\.json", name)
        if m:
            found.setdefault(int(m.group(2)), {})[m.group(1)] = json.load(
                open(os.path.join(folder, name)))
    for ipc in sorted(found):
        print(f"### IPC {ipc}\n")
        print("| method | hard (dc, no aug.) | soft (rded) | soft, no aug. | HLR | IOR | LRS | ARS |")
        print("|---|---|---|---|---|---|---|---|")
        for method in [m for m in METHODS if m in found[ipc]]:
            s = found[ipc][method]["final_epoch"]
            noaug = soft_noaug(found[ipc][method])
            ars = s.get("ars")
            print(f"| {LABELS[method]} | {pm(s['set_hard'], 100)} | {pm(s['set_soft'], 100)} | "
                  f"{pm(noaug) if noaug else '–'} | {pm(s['hlr']['summary'], digits=3)} | "
                  f"{pm(s['ior']['summary'], digits=4)} | {pm(s['lrs']['summary'], digits=4)} | "
                  f"{pm(ars['summary'], digits=4) if ars else '–'} |")
        print()


if __name__ == "__main__":
    main()
