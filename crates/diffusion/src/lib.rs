//! DiT, Gaussian diffusion, autoencoders, checkpoint loading and pretraining (docs/METHOD.md §2–4).

pub mod autoencoder;
pub mod checkpoint;
pub mod dit;
pub mod error;
pub mod gaussian;
pub mod pretrain;
pub mod shipped;
pub mod train;

pub use error::DiffusionError;
