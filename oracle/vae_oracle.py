"""Test oracle: a tiny random diffusers AutoencoderKL, saved in both attention namings, with its
encoder moments and decoder output for fixed inputs, for crates/diffusion/tests/vae.rs
(crates/diffusion/tests/fixtures/vae_tiny_*.safetensors).

    ${PYTHON:-python3} oracle/vae_oracle.py
"""
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[1] / "crates" / "diffusion" / "tests" / "fixtures"
OLD_NAMES = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}


def main():
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(32, 32), layers_per_block=1, latent_channels=4, norm_num_groups=32,
    ).eval()
    sd = {k: v.contiguous() for k, v in vae.state_dict().items()}
    save_file(sd, OUT / "vae_tiny_new.safetensors")
    old = {}
    for k, v in sd.items():
        for new, legacy in OLD_NAMES.items():
            k = k.replace(new, legacy)
        old[k] = v
    save_file(old, OUT / "vae_tiny_old.safetensors")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        dist = vae.encode(x).latent_dist
        z = torch.randn(2, 4, 4, 4)
        dec = vae.decode(z).sample
    save_file({"x": x, "mean": dist.mean.contiguous(), "logvar": dist.logvar.contiguous(), "z": z, "decoded": dec.contiguous()},
              OUT / "vae_tiny_io.safetensors")
    print("wrote", OUT, "attention keys:", [k for k in sd if "attentions" in k][:4])


if __name__ == "__main__":
    main()
