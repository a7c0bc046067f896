//! The distillation methods of dmgd over one sampling loop, and the run directory they write.

pub mod codec;
pub mod config;
pub mod coreset;
pub mod mode_guidance;
pub mod models;
pub mod pipeline;
pub mod random_subset;
pub mod run_dir;
pub mod sampler;
pub mod shard;
pub mod soft_label;
pub mod spec;
pub mod support_cache;
