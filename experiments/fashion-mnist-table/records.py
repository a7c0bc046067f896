"""Reading the records the table's scripts keep (shared by summarize.py and summarize_hparams.py)."""
import json


def details(path):
    """A command's record: a manifest.json's `spec` with its `outcome` (timings, seconds) merged
    in, or its `details` (before 2026-12-02); or the file itself (eval.json)."""
    r = json.load(open(path))
    if "spec" in r:
        return {**r["spec"], **r.get("outcome", {})}
    return r.get("details", r)
