"""Reading the records the table's scripts keep (shared by summarize.py and summarize_hparams.py)."""
import json


def details(path):
    """A command's record: a manifest.json's `details`, or the file itself (eval.json)."""
    r = json.load(open(path))
    return r["details"] if "details" in r else r
