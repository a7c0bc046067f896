//! The method's settings as flags: one flag per key of `DistillConfig` (docs/METHOD.md
//! §5–7), its help from `config::SETTINGS` and its default from `DistillConfig::default()`,
//! so each is written once, in the library. Unset flags come from --config, then from the
//! defaults.

use anyhow::{Context, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use dmgd_distill::config::{DistillConfig, SAMPLING_KEYS, SETTINGS};
use std::path::Path;
use toml::{Table, Value};

/// The settings given as flags: every key of `distill`, or (`SAMPLING_ONLY`) the keys of the
/// sampling loop, for `sample`.
#[derive(Debug, Clone, Default)]
pub struct Knobs<const SAMPLING_ONLY: bool> {
    given: Table,
}

pub type SamplingKnobs = Knobs<true>;

impl<const SAMPLING_ONLY: bool> Knobs<SAMPLING_ONLY> {
    fn settings() -> impl Iterator<Item = (&'static str, &'static str, Value)> {
        let defaults = Value::try_from(DistillConfig::default()).expect("settings serialise");
        SETTINGS
            .into_iter()
            .filter(|(key, _)| !SAMPLING_ONLY || SAMPLING_KEYS.contains(key))
            .map(move |(key, help)| (key, help, defaults[key].clone()))
    }

    /// Defaults <- TOML file <- flags, over `base` (the defaults, or another starting point).
    pub fn resolve(&self, file: Option<&Path>, base: DistillConfig) -> Result<DistillConfig> {
        let mut table: Table = Value::try_from(base)
            .expect("settings serialise")
            .try_into()?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading settings file {}", path.display()))?;
            let from_file: Table = toml::from_str(&text)
                .with_context(|| format!("in settings file {}", path.display()))?;
            Value::Table(from_file.clone())
                .try_into::<DistillConfig>()
                .with_context(|| format!("in settings file {}", path.display()))?;
            table.extend(from_file);
        }
        table.extend(self.given.clone());
        let config: DistillConfig = Value::Table(table).try_into()?;
        let from = match SAMPLING_ONLY {
            true => "the flag of that name",
            false => "a flag of the same name, or a key of --config",
        };
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid setting {e} ({from})"))?;
        Ok(config)
    }
}

/// `--<key>` (`--no-<key>` for a switch that is on by default).
fn flag(key: &str, default: &Value) -> String {
    match default {
        Value::Boolean(true) => format!("no-{key}"),
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

impl<const SAMPLING_ONLY: bool> clap::Args for Knobs<SAMPLING_ONLY> {
    fn augment_args(mut cmd: Command) -> Command {
        for (key, help, default) in Self::settings() {
            let long = flag(key, &default);
            let arg = Arg::new(key).long(long).help_heading(match SAMPLING_ONLY {
                true => "Sampling settings",
                false => "Settings (also keys of --config)",
            });
            cmd = cmd.arg(match &default {
                Value::Boolean(_) => arg.action(ArgAction::SetTrue).help(help),
                Value::Array(items) => {
                    let shown: Vec<String> = items.iter().map(Value::to_string).collect();
                    arg.num_args(1..=items.len())
                        .value_delimiter(',')
                        .help(format!("{help} [default: {}]", shown.join(",")))
                }
                Value::String(s) => arg.help(format!("{help} [default: {s}]")),
                other => arg
                    .allow_negative_numbers(true)
                    .help(format!("{help} [default: {other}]")),
            });
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<const SAMPLING_ONLY: bool> clap::FromArgMatches for Knobs<SAMPLING_ONLY> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut knobs = Knobs::default();
        knobs.update_from_arg_matches(matches)?;
        Ok(knobs)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for (key, _, default) in Self::settings() {
            let value = match &default {
                Value::Boolean(on) if matches.get_flag(key) => Value::Boolean(!on),
                Value::Boolean(_) => continue,
                _ => match matches.get_many::<String>(key) {
                    None => continue,
                    Some(texts) => {
                        let values: Vec<Value> = texts.map(|t| parse(t)).collect();
                        match (&default, values.as_slice()) {
                            (Value::Array(_), _) => Value::Array(values),
                            (_, [one]) => one.clone(),
                            _ => unreachable!("one value per flag"),
                        }
                    }
                },
            };
            // Each flag alone, so that a bad value is named by its flag.
            let alone = Table::from_iter([(key.to_string(), value.clone())]);
            if let Err(e) = Value::Table(alone).try_into::<DistillConfig>() {
                let long = flag(key, &default);
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
