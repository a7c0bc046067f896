//! DiT, Gaussian diffusion, autoencoders, checkpoint loading and pretraining (DESIGN.md §2–4).

pub mod autoencoder;
pub mod checkpoint;
pub mod dit;
pub mod error;
pub mod gaussian;
pub mod ops;
pub mod optim;
pub mod sampler;
pub mod train;

pub use error::DiffusionError;
