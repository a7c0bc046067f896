//! The autoencoder of a run, with the name it has in caches and manifests and how latents are
//! drawn from its encoder.

use candle_core::Tensor;
use dmgd_diffusion::autoencoder::{Autoencoder, EncodeMode};
use dmgd_diffusion::DiffusionError;

pub struct Codec {
    pub autoencoder: Autoencoder,
    /// Names the weights in support-cache keys: `pixel-space` or `sd-vae:<sha256>`.
    pub id: String,
    pub encode_mode: EncodeMode,
}

impl Codec {
    /// Pixel space: the latent is the image (scale 1), for small images such as Fashion-MNIST.
    pub fn pixel() -> Self {
        Codec {
            autoencoder: Autoencoder::Pixel,
            id: "pixel-space".into(),
            encode_mode: EncodeMode::Mean,
        }
    }

    /// Images (N, C, H, W) in [-1, 1] -> latents as the DiT sees them.
    pub fn encode(
        &self,
        images: &Tensor,
        rng: &mut impl rand::Rng,
    ) -> Result<Tensor, DiffusionError> {
        self.autoencoder.encode(images, self.encode_mode, rng)
    }

    /// Latents -> images in [-1, 1] (unclamped).
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor, DiffusionError> {
        self.autoencoder.decode(latents)
    }
}
