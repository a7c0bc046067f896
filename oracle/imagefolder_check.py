"""Checks that torchvision's ImageFolder loads a dmgd output unchanged (test oracle only).

    ${PYTHON:-python3} oracle/imagefolder_check.py runs/distill-dmgd-ipc10/images [IPC]

Loads the folder with torchvision.datasets.ImageFolder and checks: class folders in label order
(the sorted folder names equal the manifest's class order), IPC images per class, every image
decodes to the expected size, and pixel values equal what PIL reads from the PNG.
"""
import json, os, sys
import numpy as np
from PIL import Image
from torchvision.datasets import ImageFolder

root = sys.argv[1]
ipc = int(sys.argv[2]) if len(sys.argv) > 2 else None
ds = ImageFolder(root)
manifest = os.path.join(os.path.dirname(os.path.abspath(root)), "manifest.json")
if os.path.exists(manifest):
    classes = [c for c in json.load(open(manifest))["details"].get("classes", ds.classes)]
    assert ds.classes == classes, (ds.classes, classes)
counts = np.bincount([y for _, y in ds.samples], minlength=len(ds.classes))
if ipc is not None:
    assert (counts == ipc).all(), counts
for path, y in ds.samples:
    img, label = ds[ds.samples.index((path, y))]
    assert label == y and ds.classes[y] == os.path.basename(os.path.dirname(path))
    assert np.array_equal(np.asarray(img.convert("L" if img.mode == "L" else "RGB")),
                          np.asarray(Image.open(path).convert(img.mode)))
print(json.dumps({"root": root, "classes": ds.classes, "images": len(ds), "per_class": counts.tolist(),
                  "size": Image.open(ds.samples[0][0]).size, "mode": Image.open(ds.samples[0][0]).mode}))
