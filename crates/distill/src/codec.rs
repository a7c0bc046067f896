//! What the pipeline needs of an autoencoder: images in [-1, 1] to scaled latents and back.

use candle_core::Tensor;

pub trait LatentCodec {
    /// Images (N, C, H, W) in [-1, 1] -> latents (N, c, h, w) as the DiT sees them.
    fn encode(&self, images: &Tensor) -> candle_core::Result<Tensor>;
    /// Latents (N, c, h, w) -> images (N, C, H, W) in [-1, 1] (unclamped).
    fn decode(&self, latents: &Tensor) -> candle_core::Result<Tensor>;
    /// Names the autoencoder in cache keys and manifests (kind and weights hash).
    fn id(&self) -> String;
}

/// Pixel space: the latent is the image (scale 1), for small images such as Fashion-MNIST.
pub struct PixelSpace;

impl LatentCodec for PixelSpace {
    fn encode(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        Ok(images.clone())
    }

    fn decode(&self, latents: &Tensor) -> candle_core::Result<Tensor> {
        Ok(latents.clone())
    }

    fn id(&self) -> String {
        "pixel-space".into()
    }
}
