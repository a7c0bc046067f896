"""Reading the records the table's scripts keep (shared by summarize.py and summarize_hparams.py)."""
import json


def details(path):
    """A command's record: a manifest.json's `spec` (`details` before 2026-12-02), or the
    file itself (eval.json)."""
    r = json.load(open(path))
    for key in ("spec", "details"):
        if key in r:
            return r[key]
    return r
