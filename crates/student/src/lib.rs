//! Student networks, fast CPU ops, training protocols and evaluation reports (DESIGN.md §8).

pub mod ops;
