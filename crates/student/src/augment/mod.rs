//! Training-time augmentation of the two protocols.

pub mod dsa;
pub mod minimax;
pub mod shuffle_patches;
