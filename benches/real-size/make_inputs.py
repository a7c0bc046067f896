"""Inputs of the real-size benchmark (benches/real-size/run.sh): the paper's models at their
real sizes with random weights, in the formats their owners publish, and an ImageWoof-shaped
ImageFolder.

- dit-xl-2-256-random.pt: DiT-XL/2 (256 px: 32x32x4 latents, 1000 classes, learned sigma) as
  `torch.save(model.state_dict())` writes the official DiT-XL-2-256x256.pt: an OrderedDict
  with `_metadata`, official key names; weights N(0, 0.02), pos_embed the fixed sin-cos table
  is replaced by N(0, 0.02) too (random weights: only shapes and the format matter here).
- sd-vae-ft-mse-random.safetensors: a diffusers AutoencoderKL with sd-vae-ft-mse's config
  (block_out_channels 128/256/512/512, 2 layers per block, 4 latent channels, 32 groups),
  diffusers' own random initialisation, its state dict as diffusers saves it.
- woof/<wnid>/<k>.png: IMAGES per class of ImageWoof's 10 wnids, 256 x 256 RGB, smooth
  random colour fields (decodable, compressible, not noise).

    "${PYTHON:-python3}" benches/real-size/make_inputs.py OUT_DIR [IMAGES]
"""
import collections
import pathlib
import sys

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "oracle"))
import dit_oracle  # noqa: E402


def dit_xl2_state_dict(gen):
    shapes = dit_oracle.xl2_shapes()
    state_dict = collections.OrderedDict(
        (k, torch.randn(s, generator=gen) * 0.02) for k, s in shapes.items())
    state_dict._metadata = collections.OrderedDict([("", {"version": 1})])
    return state_dict


def sd_vae():
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=32, sample_size=256,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[128, 256, 512, 512], layers_per_block=2, act_fn="silu")


def colour_field(rng, size=256):
    """Bilinear upsampling of a random 4x4x3 grid: a smooth image."""
    grid = rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)
    return Image.fromarray(grid).resize((size, size), Image.BILINEAR)


def main(out, images):
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    dit = dit_xl2_state_dict(gen)
    torch.save(dit, out / "dit-xl-2-256-random.pt")
    torch.manual_seed(0)
    vae = sd_vae()
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()},
              out / "sd-vae-ft-mse-random.safetensors")
    rng = np.random.default_rng(0)
    wnids = (ROOT / "crates/data/classes/imagewoof_wnids.txt").read_text().split()
    for wnid in wnids:
        folder = out / "woof" / wnid
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(images):
            colour_field(rng).save(folder / f"{k:03d}.png")
    print(f"{out}: DiT-XL/2 {sum(v.numel() for v in dit.values()):,} params, "
          f"VAE {sum(v.numel() for v in vae.state_dict().values()):,}, {len(wnids)} x {images} images")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 20)
