//! DiT, Gaussian diffusion, autoencoders, checkpoint loading and pretraining (DESIGN.md §2–4).
