"""Test oracle: teacher files as PyTorch writes them, for crates/eval/tests/teacher.rs
(written to crates/eval/tests/fixtures/).

    ${PYTHON:-python3} oracle/teacher_fixtures.py

- convnet1_bn.pt: torch.save of the state dict of a DC ConvNet-1 with batch norm (the DC
  code's layout: features.0 conv, features.1 BatchNorm2d, classifier) for 1 x 8 x 8 inputs
  and 3 classes, after three training-mode passes, so its running statistics are not the
  initial ones and its num_batches_tracked counters (int64) are 3.
- convnet1_bn.json: an input batch (2, 1, 8, 8) and the net's logits in eval mode.
- resnet18_torchvision_keys.txt: `key shape` of every entry of torchvision's resnet18()
  state dict (1000 classes), the layout of its ImageNet checkpoints.
"""
import json
from pathlib import Path

import torch
import torch.nn as nn
import torchvision

OUT = Path(__file__).resolve().parents[1] / "crates" / "eval" / "tests" / "fixtures"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = nn.Module()
    net.features = nn.Sequential(nn.Conv2d(1, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.AvgPool2d(2, 2))
    net.classifier = nn.Linear(128 * 4 * 4, 3)
    forward = lambda x: net.classifier(net.features(x).flatten(1))
    net.train()
    with torch.no_grad():
        for _ in range(3):
            forward(torch.randn(4, 1, 8, 8) * 2 + 0.5)
    net.eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        logits = forward(x)
    torch.save(net.state_dict(), OUT / "convnet1_bn.pt")
    (OUT / "convnet1_bn.json").write_text(json.dumps({
        "input": x.flatten().tolist(),
        "logits": logits.flatten().tolist(),
    }))
    sd = torchvision.models.resnet18(num_classes=1000).state_dict()
    lines = [f"{k} {'x'.join(map(str, v.shape)) or 'scalar'}" for k, v in sd.items()]
    (OUT / "resnet18_torchvision_keys.txt").write_text("\n".join(lines) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
