//! Groups of settings that are a command's flags and a TOML file's keys at once. Each key's
//! meaning is written once, beside its type (`Settings::described`), and its default once, in
//! the type's `Default`; the binary turns both into flags and their help.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A group of settings: serde names its keys (kebab-case), `Default` gives their defaults.
/// A field that is an `Option` has no single default (`None`: decided later, from other
/// settings or the data); its help says what decides it.
pub trait Settings: Serialize + DeserializeOwned + Default {
    /// Every key and what it means, in the order `--help` lists them.
    fn described() -> Vec<(&'static str, &'static str)>;

    /// Checks that serde's types cannot make; the message starts with the key in backquotes.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The keys of `S` that `described` leaves out, and the described keys `S` does not have:
/// both empty for a well-described group (each group's tests assert it).
pub fn undescribed_keys<S: Settings>() -> (Vec<String>, Vec<String>) {
    let value = serde_json::to_value(S::default()).expect("settings serialise");
    let fields: Vec<String> = value
        .as_object()
        .expect("settings are a map")
        .keys()
        .cloned()
        .collect();
    let described: Vec<&str> = S::described().into_iter().map(|(key, _)| key).collect();
    let missing = fields
        .iter()
        .filter(|f| !described.contains(&f.as_str()))
        .cloned()
        .collect();
    let unknown = described
        .iter()
        .filter(|d| !fields.iter().any(|f| f == *d))
        .map(|d| d.to_string())
        .collect();
    (missing, unknown)
}

/// Panics, naming them, unless every key of `S` is described and every description a key.
pub fn assert_described<S: Settings>() {
    let (missing, unknown) = undescribed_keys::<S>();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "keys without a description: {missing:?}; descriptions of no key: {unknown:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Default)]
    #[serde(rename_all = "kebab-case")]
    struct Two {
        first_key: usize,
        second: Option<bool>,
    }

    impl Settings for Two {
        fn described() -> Vec<(&'static str, &'static str)> {
            vec![("first-key", "one"), ("third", "not a key")]
        }
    }

    #[test]
    fn keys_without_help_and_help_without_keys_are_found() {
        let (missing, unknown) = undescribed_keys::<Two>();
        assert_eq!(missing, ["second"]);
        assert_eq!(unknown, ["third"]);
    }
}
