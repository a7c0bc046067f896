//! Comparing and naming specs: the keys in which two specs differ, and a short stable hash.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A resumed or shared run whose stored spec differs from the new one.
#[derive(Debug, thiserror::Error)]
#[error("{path} holds a run with other settings: {} differ (stored -> new: {})", keys.join(", "), changes.join("; "))]
pub struct SpecMismatch {
    pub path: std::path::PathBuf,
    /// Dotted key paths that differ, e.g. `config.seed`.
    pub keys: Vec<String>,
    /// `key: stored -> new`, one per key.
    pub changes: Vec<String>,
}

/// The dotted paths of the leaves in which `stored` and `new` differ (a key present on one
/// side only counts as different), in sorted order.
pub fn differing_keys(stored: &Value, new: &Value) -> Vec<String> {
    let mut keys = Vec::new();
    collect(stored, new, "", &mut keys);
    keys.sort();
    keys
}

fn collect(a: &Value, b: &Value, prefix: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                match (a.get(name), b.get(name)) {
                    (Some(x), Some(y)) => collect(x, y, &path, out),
                    _ => out.push(path),
                }
            }
        }
        _ if a != b => out.push(if prefix.is_empty() {
            "(the whole spec)".into()
        } else {
            prefix.to_string()
        }),
        _ => {}
    }
}

/// The value at a dotted path (`config.seed`), for messages.
pub fn value_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

/// Checks `new` against `stored`; the error names every differing key with both values.
pub fn check_same(stored: &Value, new: &Value, path: &std::path::Path) -> Result<(), SpecMismatch> {
    let keys = differing_keys(stored, new);
    if keys.is_empty() {
        return Ok(());
    }
    let show = |v: Option<&Value>| v.map_or("(absent)".to_string(), Value::to_string);
    let changes = keys
        .iter()
        .map(|k| {
            format!(
                "{k}: {} -> {}",
                show(value_at(stored, k)),
                show(value_at(new, k))
            )
        })
        .collect();
    Err(SpecMismatch {
        path: path.to_path_buf(),
        keys,
        changes,
    })
}

/// The first 8 hex digits of the sha256 of the spec's JSON (serde_json writes object keys in
/// sorted order, so equal specs hash equal whatever order their fields were built in).
pub fn spec_hash(spec: &impl Serialize) -> String {
    let value = serde_json::to_value(spec).expect("a spec serialises");
    let text = serde_json::to_string(&value).expect("a JSON value serialises");
    let digest = Sha256::digest(text.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differing_keys_are_dotted_leaf_paths() {
        let a = json!({"config": {"seed": 0, "rho": 0.5, "window": [30, 45]}, "shard": "0/1"});
        let b = json!({"config": {"seed": 5, "rho": 0.5, "window": [30, 44]}, "extra": 1, "shard": "0/1"});
        assert_eq!(
            differing_keys(&a, &b),
            ["config.seed", "config.window", "extra"]
        );
        assert!(differing_keys(&a, &a).is_empty());
    }

    #[test]
    fn mismatch_names_both_values() {
        let a = json!({"config": {"method": "dmgd", "seed": 0}});
        let b = json!({"config": {"method": "mgd3", "seed": 0}});
        let err = check_same(&a, &b, std::path::Path::new("runs/x"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.method") && err.contains("\"dmgd\" -> \"mgd3\""),
            "{err}"
        );
    }

    #[test]
    fn hash_ignores_field_order_and_sees_every_value() {
        let a = json!({"a": 1, "b": {"c": 2}});
        let b: Value = serde_json::from_str(r#"{"b": {"c": 2}, "a": 1}"#).unwrap();
        assert_eq!(spec_hash(&a), spec_hash(&b));
        assert_eq!(spec_hash(&a).len(), 8);
        assert_ne!(spec_hash(&a), spec_hash(&json!({"a": 1, "b": {"c": 3}})));
    }
}
