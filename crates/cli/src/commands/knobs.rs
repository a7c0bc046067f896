//! A library's `Settings` as flags: one flag per key, its help from `Settings::described` and
//! its default from the type's `Default`, so each is written once, in the library. Unset flags
//! come from a TOML file where the command takes one (`distill --config`), then from the
//! defaults.

use anyhow::{Context, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use dmgd_run::Settings;
use std::marker::PhantomData;
use std::path::Path;
use toml::{Table, Value};

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

/// Every key with its help and its default (`None`: an optional key, decided later).
fn keys<S: Settings>() -> impl Iterator<Item = (&'static str, &'static str, Option<Value>)> {
    let defaults = Value::try_from(S::default()).expect("settings serialise");
    let defaults = defaults.as_table().expect("settings are a table").clone();
    S::described()
        .into_iter()
        .map(move |(key, help)| (key, help, defaults.get(key).cloned()))
}

impl<S: Settings> Knobs<S> {
    /// Defaults <- TOML file <- flags.
    pub fn resolve(&self, file: Option<&Path>) -> Result<S> {
        let mut table: Table = Value::try_from(S::default())?.try_into()?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading settings file {}", path.display()))?;
            let from_file: Table = toml::from_str(&text)
                .with_context(|| format!("in settings file {}", path.display()))?;
            Value::Table(from_file.clone())
                .try_into::<S>()
                .with_context(|| format!("in settings file {}", path.display()))?;
            table.extend(from_file);
        }
        table.extend(self.given.clone());
        let settings: S = Value::Table(table).try_into()?;
        let from = match file {
            None => "the flag of that name",
            Some(_) => "a flag of the same name, or a key of the settings file",
        };
        settings
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid setting {e} ({from})"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};
    use dmgd_diffusion::pretrain::PretrainSettings;
    use dmgd_eval::TrainChoices;

    /// The settings `flags` resolve to, as a table.
    fn resolved<S: Settings>(flags: &[&str]) -> Table {
        let cmd = Knobs::<S>::augment_args(Command::new("test"));
        let matches = cmd
            .try_get_matches_from(std::iter::once("test").chain(flags.iter().copied()))
            .unwrap_or_else(|e| panic!("{flags:?}: {e}"));
        let knobs = Knobs::<S>::from_arg_matches(&matches).unwrap();
        let settings = knobs.resolve(None).unwrap();
        Value::try_from(settings).unwrap().try_into().unwrap()
    }

    /// Each case, `key | flags | value`, sets one key to a value other than its default; every
    /// key must have one, and every other key keeps its default.
    fn check_every_flag<S: Settings>(cases: &str) {
        let defaults = resolved::<S>(&[]);
        let cases: Vec<Vec<&str>> = cases
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split(" | ").collect())
            .collect();
        for (key, _) in S::described() {
            assert!(cases.iter().any(|c| c[0] == key), "{key} has no case");
        }
        for case in cases {
            let (key, flags) = (case[0], case[1].split_whitespace().collect::<Vec<_>>());
            let expected = parse(case[2]);
            assert_ne!(defaults.get(key), Some(&expected), "{key}: not a change");
            let mut got = resolved::<S>(&flags);
            assert_eq!(got.remove(key), Some(expected), "{key}");
            let mut others = defaults.clone();
            others.remove(key);
            assert_eq!(got, others, "{flags:?} changed other keys");
        }
    }

    #[test]
    fn every_pretraining_flag_sets_its_key_alone() {
        check_every_flag::<PretrainSettings>(
            r#"
preset | --preset DiT-S/2 | "DiT-S/2"
steps | --steps 5 | 5
batch-size | --batch-size 3 | 3
lr | --lr 3e-4 | 3e-4
weight-decay | --weight-decay 0.1 | 0.1
ema-decay | --ema-decay 0.5 | 0.5
class-dropout-prob | --class-dropout-prob 0.2 | 0.2
horizontal-flip | --no-horizontal-flip | false
seed | --seed 7 | 7
checkpoint-every | --checkpoint-every 9 | 9
snapshot-every | --snapshot-every 4 | 4
holdout-per-class | --holdout-per-class 2 | 2
"#,
        );
    }

    #[test]
    fn every_evaluation_flag_sets_its_key_alone() {
        check_every_flag::<TrainChoices>(
            r#"
net | --net resnet18 | "resnet18"
norm | --norm batch | "batch"
protocol | --protocol minimax | "minimax"
labels | --labels soft | "soft"
epochs | --epochs 7 | 7
augment | --augment dsa | "dsa"
optimizer | --optimizer sgd | "sgd"
batch-size | --batch-size 8 | 8
test-every | --test-every 2 | 2
seed | --seed 4 | 4
device | --device cuda:1 | "cuda:1"
"#,
        );
    }

    #[test]
    fn a_bad_value_is_named_by_its_flag() {
        let cmd = Knobs::<TrainChoices>::augment_args(Command::new("test"));
        let matches = cmd
            .try_get_matches_from(["test", "--net", "convnet9x"])
            .unwrap();
        let err = Knobs::<TrainChoices>::from_arg_matches(&matches).unwrap_err();
        assert!(err.to_string().contains("--net \"convnet9x\""), "{err}");
    }
}
