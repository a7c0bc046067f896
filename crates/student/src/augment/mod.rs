//! Training-time augmentation of the protocols.

pub mod dsa;
pub mod minimax;
pub mod rded;
pub mod shuffle_patches;
