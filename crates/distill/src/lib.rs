//! The distillation methods of dmgd over one sampling loop, and the run directory they write.

pub mod config;
pub mod coreset;
pub mod run_dir;
pub mod shard;
pub mod soft_label;
