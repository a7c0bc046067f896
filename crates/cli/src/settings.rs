//! Value parsers shared by the commands' flags (the settings' flags parse through serde, in
//! `knobs`).

/// A clap value parser of counts that must be at least 1.
pub fn positive(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number of at least 1".into()),
    }
}
