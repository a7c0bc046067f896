"""Tables of docs/RESULTS.md from the run directories the scripts beside this file write.

    ${PYTHON:-python3} experiments/random-real/summarize.py
"""
import glob, json, os, statistics

PUBLISHED = {1: 51.4, 10: 73.8, 50: 82.5}
TOLERANCE = {1: 4.0, 10: 2.0, 50: 2.0}


def mean_std(xs):
    if not xs:
        return "–"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.2f} ± {sd:.2f} (n={len(xs)})"


def ours(ipc):
    """(per-set final accuracies keyed by set dir, seconds per network) from dmgd eval outputs."""
    acc, secs = {}, []
    paths = [f"runs/eval-random-ipc{ipc}/eval.json"] + sorted(glob.glob(f"runs/eval-random-ipc{ipc}-s*/eval.json"))
    for path in paths:
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        for record, run in zip(r["train_sets"], r["runs"]):
            name = record["source"].split()[-1]
            acc[name] = run["final_accuracy"]
            secs.append(run["seconds"])
    return acc, secs


def oracle(ipc):
    acc, secs = {}, []
    if os.path.exists("runs/oracle-random.jsonl"):
        for line in open("runs/oracle-random.jsonl"):
            r = json.loads(line)
            if r["ipc"] == ipc:
                acc[r["set"]] = 100 * r["oracle"]["mean"]
                secs.append(r["oracle"]["seconds"])
    return acc, secs


print("| IPC | published | dmgd (Rust), final acc % | PyTorch oracle, final acc % | within ± of published? |")
print("|---|---|---|---|---|")
for ipc in (1, 10, 50):
    a, _ = ours(ipc)
    o, _ = oracle(ipc)
    ok = "–"
    if a:
        m = statistics.mean(a.values())
        ok = f"{'yes' if abs(m - PUBLISHED[ipc]) <= TOLERANCE[ipc] else 'NO'} (±{TOLERANCE[ipc]:g})"
    print(f"| {ipc} | {PUBLISHED[ipc]} | {mean_std(list(a.values()))} | {mean_std(list(o.values()))} | {ok} |")

print("\nPer set (one fresh network each; Rust network seed 1000 i for the i-th set, oracle seed 0):\n")
print("| set | dmgd (Rust) | s | PyTorch oracle | s |")
print("|---|---|---|---|---|")
for ipc in (1, 10, 50):
    a, _ = ours(ipc)
    o, _ = oracle(ipc)
    secs = {}
    for path in [f"runs/eval-random-ipc{ipc}/eval.json"] + sorted(glob.glob(f"runs/eval-random-ipc{ipc}-s*/eval.json")):
        if os.path.exists(path):
            r = json.load(open(path))
            for record, run in zip(r["train_sets"], r["runs"]):
                secs[record["source"].split()[-1]] = run["seconds"]
    osecs = {}
    if os.path.exists("runs/oracle-random.jsonl"):
        for line in open("runs/oracle-random.jsonl"):
            r = json.loads(line)
            osecs[r["set"]] = r["oracle"]["seconds"]
    for name in sorted(set(a) | set(o)):
        fa = f"{a[name]:.2f}" if name in a else "–"
        fo = f"{o[name]:.2f}" if name in o else "–"
        sa = f"{secs[name]:.0f}" if name in secs else "–"
        so = f"{osecs[name]:.0f}" if name in osecs else "–"
        print(f"| {name} | {fa} | {sa} | {fo} | {so} |")

for method in ("herding", "kcenter"):
    path = f"runs/{method}-ipc10/manifest.json"
    if os.path.exists(path):
        e = json.load(open(path))["details"]["embedding"]
        t = e.get("training") or {}
        print(f"\n{method}: embedding {e['origin']} {e['net']} ({e['feature_dim']}-d), "
              f"{t.get('config', {}).get('epochs')} epochs on {t.get('train_images')} images: "
              f"{t.get('accuracy')}% on {t.get('checked_on')}, {t.get('seconds', 0):.0f} s")
