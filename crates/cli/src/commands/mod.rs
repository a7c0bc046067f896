//! One module per subcommand: its clap arguments and its `run`.

pub mod device_check;
pub mod distill;
pub mod eval;
pub mod pretrain;
pub mod quality;
pub mod sample;
pub mod score;
pub mod select;
