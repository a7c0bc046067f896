//! Distribution Approximate Matching inputs, computed once and cached on disk: the latents of
//! a class's real images, clustered by k-means into weighted support points (DMGD, K = 10) or
//! modes (mgd3, K = IPC). The cache key covers everything the result depends on.

use crate::codec::Codec;
use candle_core::{DType, Device, Tensor};
use dmgd_data::pixels::u8_to_model;
use dmgd_data::{ClassSource, ImageSet};
use dmgd_ot::kmeans::{kmeans, KMeansParams};
use dmgd_ot::support::Support;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Pixels per autoencoder call: 64 images of 28 or 32 px, 4 of 256 px. The SD VAE's encoder
/// holds about a third of a gigabyte of activations per 256-px image (10 GB peak for a batch
/// of 20, measured), so the batch shrinks with the image size.
const ENCODE_PIXELS: usize = 64 * 64 * 64;
const MAX_ENCODE_BATCH: usize = 64;

/// Images encoded per autoencoder call for images of `height` x `width`.
fn encode_batch(height: usize, width: usize) -> usize {
    (ENCODE_PIXELS / (height * width).max(1)).clamp(1, MAX_ENCODE_BATCH)
}

/// Where and how supports are cached.
pub struct SupportCache {
    /// None: no caching (always recompute).
    pub dir: Option<PathBuf>,
    /// Seed of the random flips of latent extraction and of k-means++.
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    #[error("class `{class}`: {source}")]
    Ot {
        class: String,
        #[source]
        source: dmgd_ot::OtError,
    },
    #[error("class `{class}`: encoding its images failed")]
    Encode {
        class: String,
        #[source]
        source: dmgd_diffusion::DiffusionError,
    },
    #[error("class `{class}`: reading its images failed")]
    Read {
        class: String,
        #[source]
        source: dmgd_data::DataError,
    },
    #[error("cannot create the support cache directory {path}")]
    CacheDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SupportCache {
    /// Keyed by the class's own images (not the whole set's), so that sharded and unsharded
    /// runs share entries.
    fn key(&self, images: &ImageSet, codec: &Codec, class: usize, params: &KMeansParams) -> String {
        let text = format!(
            "class-images={}|codec={}|class={class}|k={}|max-iter={}|tol={}|seed={}|flip-seed={}|encode-batch={}|v2",
            images.fingerprint(),
            codec.id,
            params.k,
            params.max_iter,
            params.tol,
            params.seed,
            self.seed,
            // The batch orders the random draws (flips, then the encoder's noise, per batch).
            encode_batch(images.shape.height, images.shape.width)
        );
        format!("{:x}", Sha256::digest(text.as_bytes()))
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("support-{key}.safetensors")))
    }

    /// The k-means support of class `class` of `real`, from the cache or computed (and cached).
    /// Only this class's images are read.
    pub fn support(
        &self,
        real: &dyn ClassSource,
        class: usize,
        codec: &Codec,
        params: &KMeansParams,
        device: &Device,
    ) -> Result<Support, SupportError> {
        let class_name = real.class_names()[class].clone();
        let ot_err = |source| SupportError::Ot {
            class: class_name.clone(),
            source,
        };
        let images = real
            .class_images(class)
            .map_err(|source| SupportError::Read {
                class: class_name.clone(),
                source,
            })?;
        let key = self.key(&images, codec, class, params);
        if let Some(path) = self.path(&key).filter(|p| p.exists()) {
            if let Ok(support) = Support::load(&path, device) {
                return Ok(support);
            }
            // An unreadable cache entry is recomputed and replaced.
        }
        let latents = self
            .class_latents(&images, class, codec, device)
            .map_err(|source| SupportError::Encode {
                class: class_name.clone(),
                source,
            })?;
        let clustering = kmeans(&latents, params).map_err(ot_err)?;
        if let (Some(dir), Some(path)) = (&self.dir, self.path(&key)) {
            std::fs::create_dir_all(dir).map_err(|source| SupportError::CacheDir {
                path: dir.clone(),
                source,
            })?;
            let tmp = dmgd_data::atomic::temp_sibling(&path);
            clustering.support.save(&tmp).map_err(ot_err)?;
            let _ = dmgd_data::atomic::publish(&tmp, &path);
        }
        Ok(clustering.support)
    }

    /// Encodes the images of `class` (mapped to [-1, 1], randomly flipped as in the
    /// reference's latent extraction), flattened: (N_c, D).
    fn class_latents(
        &self,
        images: &ImageSet,
        class: usize,
        codec: &Codec,
        device: &Device,
    ) -> Result<Tensor, dmgd_diffusion::DiffusionError> {
        let members: Vec<usize> = (0..images.len()).collect();
        let s = images.shape;
        let mut rng = ChaCha8Rng::seed_from_u64(crate::coreset::class_seed(self.seed, class));
        let mut rows = Vec::new();
        for chunk in members.chunks(encode_batch(s.height, s.width)) {
            let mut values = Vec::with_capacity(chunk.len() * s.numel());
            for &i in chunk {
                let flip = rng.gen_bool(0.5);
                let image = images.image(i);
                for plane in image.chunks(s.height * s.width) {
                    for row in plane.chunks(s.width) {
                        if flip {
                            values.extend(row.iter().rev().map(|&p| u8_to_model(p)));
                        } else {
                            values.extend(row.iter().map(|&p| u8_to_model(p)));
                        }
                    }
                }
            }
            let images =
                Tensor::from_vec(values, (chunk.len(), s.channels, s.height, s.width), device)?;
            rows.push(
                codec
                    .encode(&images, &mut rng)?
                    .to_dtype(DType::F32)?
                    .flatten_from(1)?,
            );
        }
        Ok(Tensor::cat(&rows, 0)?)
    }
}

/// The cache directory used when none is given (`dmgd_run::cache_dir`).
pub fn default_cache_dir() -> Option<PathBuf> {
    dmgd_run::cache_dir()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_encode_batch_shrinks_with_the_image_size() {
        let batches: Vec<usize> = [28, 32, 64, 128, 256, 512, 1024]
            .iter()
            .map(|&side| super::encode_batch(side, side))
            .collect();
        assert_eq!(batches, [64, 64, 64, 16, 4, 1, 1]);
    }
}
