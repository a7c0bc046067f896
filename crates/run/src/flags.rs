//! `Settings` as command-line flags (feature `clap`): one flag per key, its help from
//! `Settings::described` and its default from the type's `Default`, so each is written once,
//! beside the type. Unset flags come from a TOML file where the command takes one
//! (`distill --config`), then from the defaults.

use crate::Settings;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    #[error("reading settings file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("in settings file {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// A value no flag alone could catch (a settings file's, or several keys together).
    #[error("invalid setting {message}{where_}")]
    Invalid { message: String, where_: String },
}

/// The keys of `S` given as flags.
#[derive(Debug, Clone)]
pub struct Knobs<S> {
    given: Table,
    settings: PhantomData<S>,
}

impl<S> Default for Knobs<S> {
    fn default() -> Self {
        Knobs {
            given: Table::new(),
            settings: PhantomData,
        }
    }
}

/// The defaults as a table (an optional key that is `None` is absent).
fn defaults<S: Settings>() -> Table {
    let defaults = Value::try_from(S::default()).expect("settings serialise");
    defaults.as_table().expect("settings are a table").clone()
}

/// Every key with its help and its default (`None`: an optional key, decided later).
fn keys<S: Settings>() -> impl Iterator<Item = (&'static str, &'static str, Option<Value>)> {
    let defaults = defaults::<S>();
    S::described()
        .into_iter()
        .map(move |(key, help)| (key, help, defaults.get(key).cloned()))
}

impl<S: Settings> Knobs<S> {
    /// Defaults <- TOML file <- flags.
    pub fn resolve(&self, file: Option<&Path>) -> Result<S, FlagsError> {
        let mut table = defaults::<S>();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| FlagsError::Read {
                path: path.into(),
                source,
            })?;
            let in_file = |source| FlagsError::File {
                path: path.into(),
                source,
            };
            let from_file: Table = toml::from_str(&text).map_err(in_file)?;
            Value::Table(from_file.clone())
                .try_into::<S>()
                .map_err(in_file)?;
            table.extend(from_file);
        }
        table.extend(self.given.clone());
        let settings: S = Value::Table(table)
            .try_into()
            .expect("flags were checked one by one, the file as a whole");
        settings.validate().map_err(|message| {
            // The message starts with the key(s) in backquotes: name their flags.
            let keys = message.strip_prefix('`').and_then(|r| r.split_once('`'));
            let mut flags = keys.map_or(String::new(), |(keys, _)| {
                let flags: Vec<String> = keys.split(" / ").map(|k| format!("--{k}")).collect();
                flags.join(" / ")
            });
            if file.is_some() {
                flags.push_str(if flags.is_empty() {
                    "the settings file"
                } else {
                    ", or the settings file"
                });
            }
            let where_ = if flags.is_empty() {
                flags
            } else {
                format!(" ({flags})")
            };
            FlagsError::Invalid { message, where_ }
        })?;
        Ok(settings)
    }

    /// The keys given as flags.
    pub fn given(&self) -> impl Iterator<Item = &str> {
        self.given.keys().map(String::as_str)
    }
}

/// `--<key>` (`--no-<key>` for a switch that is on by default).
fn flag(key: &str, default: Option<&Value>) -> String {
    match default {
        Some(Value::Boolean(true)) => format!("no-{key}"),
        _ => key.to_string(),
    }
}

/// A flag's text as a TOML value: a number or array where it reads as one, else a string.
fn parse(text: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| Value::String(text.to_string()))
}

impl<S: Settings> clap::Args for Knobs<S> {
    fn augment_args(mut cmd: Command) -> Command {
        for (key, help, default) in keys::<S>() {
            let arg = Arg::new(key)
                .long(flag(key, default.as_ref()))
                .help_heading("Settings");
            cmd = cmd.arg(match &default {
                Some(Value::Boolean(_)) => arg.action(ArgAction::SetTrue).help(help),
                Some(Value::Array(items)) => {
                    let shown: Vec<String> = items.iter().map(Value::to_string).collect();
                    arg.num_args(1..=items.len())
                        .value_delimiter(',')
                        .help(format!("{help} [default: {}]", shown.join(",")))
                }
                Some(Value::String(s)) => arg.help(format!("{help} [default: {s}]")),
                Some(other) => arg
                    .allow_negative_numbers(true)
                    .help(format!("{help} [default: {other}]")),
                None => arg.allow_negative_numbers(true).help(help),
            });
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<S: Settings> clap::FromArgMatches for Knobs<S> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut knobs = Knobs::default();
        knobs.update_from_arg_matches(matches)?;
        Ok(knobs)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for (key, _, default) in keys::<S>() {
            let value = match &default {
                Some(Value::Boolean(on)) if matches.get_flag(key) => Value::Boolean(!on),
                Some(Value::Boolean(_)) => continue,
                _ => match matches.get_many::<String>(key) {
                    None => continue,
                    Some(texts) => {
                        let values: Vec<Value> = texts.map(|t| parse(t)).collect();
                        match (&default, values.as_slice()) {
                            (Some(Value::Array(_)), _) => Value::Array(values),
                            (_, [one]) => one.clone(),
                            _ => unreachable!("one value per flag"),
                        }
                    }
                },
            };
            // Each flag alone, so that a bad value is named by its flag.
            let alone = Table::from_iter([(key.to_string(), value.clone())]);
            if let Err(e) = Value::Table(alone).try_into::<S>() {
                let long = flag(key, default.as_ref());
                let message = format!("--{long} {value}: {}\n", e.message().trim_end());
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::ValueValidation,
                    message,
                ));
            }
            self.given.insert(key.to_string(), value);
        }
        Ok(())
    }
}

/// For tests of a `Settings` type: each case, `key | flags | value` on a line, sets one key to
/// a value other than its default, and leaves every other key at its default; every key must
/// have a case.
pub fn assert_every_flag_sets_its_key<S: Settings>(cases: &str) {
    let resolved = |flags: &[&str]| -> Table {
        let cmd = <Knobs<S> as clap::Args>::augment_args(Command::new("test"));
        let matches = cmd
            .try_get_matches_from(std::iter::once("test").chain(flags.iter().copied()))
            .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        let knobs = <Knobs<S> as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        let settings = knobs.resolve(None).unwrap();
        Value::try_from(settings).unwrap().try_into().unwrap()
    };
    let defaults = resolved(&[]);
    let cases: Vec<Vec<&str>> = cases
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(" | ").collect())
        .collect();
    for (key, _) in S::described() {
        assert!(cases.iter().any(|c| c[0] == key), "{key} has no case");
    }
    for case in cases {
        let (key, flags) = (case[0], case[1].split_whitespace().collect::<Vec<_>>());
        let expected = parse(case[2]);
        assert_ne!(defaults.get(key), Some(&expected), "{key}: not a change");
        let mut got = resolved(&flags);
        assert_eq!(got.remove(key), Some(expected), "{key}");
        let mut others = defaults.clone();
        others.remove(key);
        assert_eq!(got, others, "{flags:?} changed other keys");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    struct Example {
        count: usize,
        rate: f64,
        name: String,
        window: [usize; 2],
        on: bool,
        off: bool,
        later: Option<usize>,
    }

    impl Default for Example {
        fn default() -> Self {
            Example {
                count: 3,
                rate: 0.5,
                name: "a".into(),
                window: [1, 2],
                on: true,
                off: false,
                later: None,
            }
        }
    }

    impl Settings for Example {
        fn described() -> Vec<(&'static str, &'static str)> {
            ["count", "rate", "name", "window", "on", "off", "later"]
                .into_iter()
                .map(|k| (k, "help"))
                .collect()
        }

        fn validate(&self) -> Result<(), String> {
            match self.count <= 10 {
                true => Ok(()),
                false => Err("`count`: expected at most 10".into()),
            }
        }
    }

    #[test]
    fn every_kind_of_key_is_a_flag() {
        assert_every_flag_sets_its_key::<Example>(
            r#"
count | --count 7 | 7
rate | --rate -1.5 | -1.5
name | --name b | "b"
window | --window 3,4 | [3, 4]
on | --no-on | false
off | --off | true
later | --later 9 | 9
"#,
        );
    }

    fn parsed(flags: &[&str]) -> Result<Knobs<Example>, clap::Error> {
        let cmd = Knobs::<Example>::augment_args(Command::new("test"));
        let matches =
            cmd.try_get_matches_from(std::iter::once("test").chain(flags.iter().copied()))?;
        Knobs::<Example>::from_arg_matches(&matches)
    }

    #[test]
    fn a_bad_value_is_named_by_its_flag_and_a_bad_setting_by_its_key() {
        let err = parsed(&["--count", "many"]).unwrap_err().to_string();
        assert!(err.contains("--count \"many\""), "{err}");
        let err = parsed(&["--count", "11"])
            .unwrap()
            .resolve(None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid setting `count`: expected at most 10 (--count)"
        );
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "count = 5\nrate = 0.25\n").unwrap();
        let knobs = parsed(&["--count", "6"]).unwrap();
        let resolved = knobs.resolve(Some(&path)).unwrap();
        assert_eq!(
            (resolved.count, resolved.rate, resolved.name.as_str()),
            (6, 0.25, "a")
        );
        assert_eq!(knobs.given().collect::<Vec<_>>(), ["count"]);
        std::fs::write(&path, "colour = 1\n").unwrap();
        let err = knobs.resolve(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("settings.toml") && err.contains("colour"),
            "{err}"
        );
    }
}
