"""Rewrites the generated parts of docs/RESULTS.md from the committed cells.

    ${PYTHON:-python3} experiments/fashion-mnist-table/refresh.py [RESULTS_MD]
    (default docs/RESULTS.md)

Replaces what lies between `<!-- table begin -->` and `<!-- table end -->` with the output of
summarize.py, between `<!-- hparams begin -->` and `<!-- hparams end -->` with that of
summarize_hparams.py, and between the `hparams-validation` markers with that of
summarize_hparams.py on results/hparams-validation (the test-split study beside it); for the
model shipped 2026-12-03, between the `table-2026-12` markers with summarize.py on
results/table-2026-12 and between the `hparams-holdout500` markers with summarize_hparams.py on
results/hparams-holdout500. The prose around them is left as it is. Written to a temporary
name and renamed, so an error leaves the file untouched.
"""
import os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
results = os.path.join("experiments", "fashion-mnist-table", "results")  # from the repository root
path = sys.argv[1] if len(sys.argv) > 1 else "docs/RESULTS.md"


def splice(text, marker, body):
    begin, end = f"<!-- {marker} begin -->\n", f"<!-- {marker} end -->"
    if text.count(begin) != 1 or text.count(end) != 1:
        sys.exit(f"{path}: expected one '{begin.strip()}' and one '{end}'")
    a, b = text.index(begin) + len(begin), text.index(end)
    return text[:a] + body.strip("\n") + "\n" + text[b:]


def run(script, *args):
    return subprocess.run([sys.executable, os.path.join(here, script), *args], check=True,
                          capture_output=True, text=True).stdout


text = open(path).read()
text = splice(text, "table", run("summarize.py"))
text = splice(text, "hparams", run("summarize_hparams.py"))
text = splice(text, "hparams-validation",
              run("summarize_hparams.py", os.path.join(results, "hparams-validation"),
                  os.path.join(results, "table"), os.path.join(results, "hparams")))
text = splice(text, "table-2026-12", run("summarize.py", os.path.join(results, "table-2026-12")))
text = splice(text, "hparams-holdout500",
              run("summarize_hparams.py", os.path.join(results, "hparams-holdout500")))
tmp = path + ".tmp"
with open(tmp, "w") as f:
    f.write(text)
os.replace(tmp, path)
