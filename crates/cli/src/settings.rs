//! Settings files and named values: the two ways a setting reaches a spec besides its default.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// A TOML settings file, its keys the library type's (unknown keys are refused by the type).
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading settings file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in settings file {}", path.display()))
}

/// Parses a flag's value through the type's serde names, so that flags and TOML keys accept
/// the same words; the error names the flag and the accepted words.
pub fn parse_named<T: DeserializeOwned>(value: &str, flag: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|e| {
        // serde's message lists the variants: "unknown variant `x`, expected one of `a`, `b`".
        let expected = e.to_string();
        let expected = expected
            .split_once("expected")
            .map_or(expected.as_str(), |(_, rest)| rest.trim());
        anyhow::anyhow!("{flag} `{value}`: expected {expected}")
    })
}

/// Appends `[default: v]` to the help of every flag named like a key of `defaults` (a
/// serialised settings struct with kebab-case keys), so each default is written once, in
/// the library's `Default`.
pub fn show_defaults(mut cmd: clap::Command, defaults: &serde_json::Value) -> clap::Command {
    let Some(keys) = defaults.as_object() else {
        return cmd;
    };
    for (key, value) in keys {
        let shown = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        let id = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
            .map(|a| a.get_id().clone());
        if let Some(id) = id {
            cmd = cmd.mut_arg(id, |arg| {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                arg.help(format!("{help} [default: {shown}]"))
            });
        }
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_values_name_the_flag_and_the_choices() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(rename_all = "lowercase")]
        enum Law {
            Uniform,
            Gaussian,
        }
        assert!(matches!(
            parse_named::<Law>("gaussian", "--noise").unwrap(),
            Law::Gaussian
        ));
        let err = parse_named::<Law>("normal", "--noise")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--noise `normal`") && err.contains("uniform"),
            "{err}"
        );
        let _ = Law::Uniform;
    }
}
