//! SD-VAE parity with diffusers' AutoencoderKL (oracle: oracle/vae_oracle.py), tiny
//! random config, loaded under the new (`to_q`...) and the old (`query`...) attention names.

use candle_core::{Device, Tensor};
use dmgd_diffusion::autoencoder::{Autoencoder, EncodeMode, SdVae, VaeConfig, SD_VAE_LATENT_SCALE};
use dmgd_kernels::testing::max_abs_diff;
use rand::SeedableRng;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn tiny_config() -> VaeConfig {
    VaeConfig {
        block_out_channels: vec![32, 32],
        layers_per_block: 1,
        latent_channels: 4,
        norm_num_groups: 32,
        in_channels: 3,
    }
}

#[test]
fn both_attention_namings_match_diffusers() {
    let io =
        candle_core::safetensors::load(fixture("vae_tiny_io.safetensors"), &Device::Cpu).unwrap();
    for file in ["vae_tiny_new.safetensors", "vae_tiny_old.safetensors"] {
        let vae = SdVae::load(&fixture(file), &tiny_config(), &Device::Cpu).unwrap();
        let (mean, logvar) = vae.moments(&io["x"]).unwrap();
        let (e1, e2) = (
            max_abs_diff(&mean, &io["mean"]),
            max_abs_diff(&logvar, &io["logvar"]),
        );
        assert!(
            e1 <= 1e-4 && e2 <= 1e-4,
            "{file}: mean err {e1}, logvar err {e2}"
        );
        let ae = Autoencoder::SdVae(Box::new(vae));
        let decoded = ae
            .decode(&(&io["z"] * SD_VAE_LATENT_SCALE).unwrap())
            .unwrap();
        let e3 = max_abs_diff(&decoded, &io["decoded"]);
        assert!(e3 <= 1e-4, "{file}: decode err {e3}");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let latent = ae.encode(&io["x"], EncodeMode::Mean, &mut rng).unwrap();
        assert!(max_abs_diff(&latent, &(&io["mean"] * SD_VAE_LATENT_SCALE).unwrap()) <= 1e-5);
    }
}

#[test]
fn pixel_space_is_the_identity() {
    let x = Tensor::randn(0f32, 1., (2, 1, 4, 4), &Device::Cpu).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let ae = Autoencoder::Pixel;
    assert_eq!(ae.scale(), 1.0);
    let z = ae.encode(&x, EncodeMode::Sample, &mut rng).unwrap();
    assert_eq!(max_abs_diff(&ae.decode(&z).unwrap(), &x), 0.0);
}
