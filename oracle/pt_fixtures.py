"""Test oracle: PyTorch `.pt` fixtures for the checkpoint loader, for
crates/diffusion/tests/checkpoint.rs (written to crates/diffusion/tests/fixtures/).

    ${PYTHON:-python3} oracle/pt_fixtures.py

- dit_tiny.pt: the tiny oracle DiT (dit_tiny.safetensors) saved by torch.save as an OrderedDict,
  the layout of the official DiT checkpoints.
- evil.pt: a torch.save archive whose pickle calls os.system when unpickled by Python. The Rust
  loader must refuse it, naming the global, without running anything.
"""
import collections
import os
from pathlib import Path

import torch
from safetensors.torch import load_file

OUT = Path(__file__).resolve().parents[1] / "crates" / "diffusion" / "tests" / "fixtures"


class Evil:
    def __reduce__(self):
        return (os.system, ("echo dmgd-test-would-have-run-this > /tmp/dmgd-evil-ran",))


def main():
    sd = load_file(OUT / "dit_tiny.safetensors")
    torch.save(collections.OrderedDict(sorted(sd.items())), OUT / "dit_tiny.pt")
    torch.save({"x_embedder.proj.weight": torch.zeros(1), "payload": Evil()}, OUT / "evil.pt")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
