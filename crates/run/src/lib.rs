//! What a run is. Every command resolves its arguments into a spec (a serde value of the
//! library's types: settings, input fingerprints, checkpoint hashes); the spec heads the
//! manifest written into the output directory before work starts, `--resume` compares the
//! stored spec with the new one and refuses any difference, and default output folders are
//! derived from it, so two different runs never share a folder.

pub mod manifest;
pub mod spec;

pub use manifest::{sha256_file, Manifest, ManifestError};
pub use spec::{differing_keys, spec_hash, SpecMismatch};
