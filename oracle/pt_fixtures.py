"""Test oracle: PyTorch `.pt` fixtures for the checkpoint loader, for
crates/diffusion/tests/checkpoint.rs (written to crates/diffusion/tests/fixtures/).

    ${PYTHON:-python3} oracle/pt_fixtures.py

- dit_tiny.pt: the tiny oracle DiT (dit_tiny.safetensors) saved by torch.save as an OrderedDict
  with the `_metadata` attribute that `Module.state_dict()` gives it: the layout of the official
  DiT checkpoints (torch.save of a state dict).
- dit_tiny_train.pt: a training checkpoint as DiT's train.py (and MinimaxDiffusion's
  fine-tuning) save it: {"model", "ema", "opt", "args"}, `args` an argparse.Namespace. Its
  "ema" is dit_tiny; its "model" is dit_tiny with every weight + 1, to tell them apart.
- evil.pt: a torch.save archive whose pickle calls os.system when unpickled by Python. The Rust
  loader must refuse it, naming the global, without running anything.
- evil_train.pt: a training checkpoint whose `args` is that payload.
"""
import argparse
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
    state_dict = collections.OrderedDict(sorted(sd.items()))
    state_dict._metadata = collections.OrderedDict([("", {"version": 1})])
    torch.save(state_dict, OUT / "dit_tiny.pt")
    torch.save({"x_embedder.proj.weight": torch.zeros(1), "payload": Evil()}, OUT / "evil.pt")

    ema = collections.OrderedDict(sorted(sd.items()))
    model = collections.OrderedDict((k, v + 1.0) for k, v in ema.items())
    # The optimizer state of two small tensors keeps the fixture small; its layout is AdamW's.
    params = [torch.nn.Parameter(model[k].clone()) for k in ("t_embedder.mlp.0.bias", "y_embedder.embedding_table.weight")]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0)
    sum((p * p).sum() for p in params).backward()
    opt.step()
    args = argparse.Namespace(model="DiT-XL/2", image_size=256, global_batch_size=256, epochs=1400)
    checkpoint = {"model": model, "ema": ema, "opt": opt.state_dict(), "args": args}
    torch.save(checkpoint, OUT / "dit_tiny_train.pt")
    tiny = {"x_embedder.proj.weight": torch.zeros(1)}
    torch.save({"model": tiny, "ema": tiny, "opt": {}, "args": Evil()}, OUT / "evil_train.pt")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
