//! Value parsers shared by the commands' flags.

use serde::de::DeserializeOwned;

/// A clap value parser through the type's serde names (`value_parser = named::<T>`): flags
/// and TOML keys accept the same words.
pub fn named<T: DeserializeOwned>(value: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|e| {
        // serde's message lists the variants: "unknown variant `x`, expected one of `a`, `b`".
        let text = e.to_string();
        let expected = text
            .split_once("expected")
            .map_or(text.as_str(), |(_, rest)| rest.trim());
        format!("expected {expected}")
    })
}

/// A clap value parser of counts that must be at least 1.
pub fn positive(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number of at least 1".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_values_say_which_words_are_accepted() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Law {
            Uniform,
            Gaussian,
        }
        assert_eq!(named::<Law>("gaussian"), Ok(Law::Gaussian));
        let err = named::<Law>("normal").unwrap_err();
        assert!(
            err.contains("`uniform`") && err.contains("`gaussian`"),
            "{err}"
        );
        assert_eq!(named::<Law>("uniform"), Ok(Law::Uniform));
    }
}
