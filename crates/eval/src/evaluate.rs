//! Fresh students trained on each set, `repeats` times, and tested on the real test split:
//! final- and best-epoch accuracy, mean ± std (docs/METHOD.md §8). The spec heads
//! `manifest.json` before any training; each finished network's report is kept at once
//! (`networks/`), so a resumed evaluation trains only the missing ones, and only if its spec
//! is the stored one.

use crate::networks::{self, Expected, FinishedNetwork};
use crate::{EvalError, SetRecord};
use dmgd_data::ImageSet;
use dmgd_run::{Existing, Manifest, ManifestError, MANIFEST_FILE};
use dmgd_student::{train_and_test_with, Progress, RunReport, Summary, TrainConfig};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const RESULTS_FILE: &str = "eval.json";
pub const TABLE_FILE: &str = "eval.md";

/// What an evaluation is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSpec {
    /// Every network's configuration; network r of set s is seeded `config.seed + 1000 s + r`.
    pub config: TrainConfig,
    /// Fresh networks per training set.
    pub repeats: usize,
    pub train_sets: Vec<SetRecord>,
    pub test: SetRecord,
}

impl EvalSpec {
    /// The configuration of network `run` of set `set`.
    pub fn network_config(&self, set: usize, run: usize) -> TrainConfig {
        TrainConfig {
            seed: self.config.seed + 1000 * set as u64 + run as u64,
            ..self.config.clone()
        }
    }

    /// `runs/eval-<set>-<net>-<protocol>[-soft]-<hash>`: `set_name` names the first set for
    /// reading; the hash of the whole spec (the sets' fingerprints included) keeps two
    /// different evaluations out of one folder.
    pub fn default_out(&self, set_name: &str) -> PathBuf {
        let c = &self.config;
        let soft = if c.soft_labels.is_some() { "-soft" } else { "" };
        let name = format!(
            "eval-{set_name}-{}-{}{soft}-{}",
            c.net,
            serde_name(&c.protocol),
            dmgd_run::spec_hash(self)
        );
        Path::new("runs").join(name)
    }
}

/// Everything an evaluation reads.
pub struct Evaluation<'a> {
    pub spec: &'a EvalSpec,
    /// The sets of `spec.train_sets`, in order.
    pub train: &'a [ImageSet],
    pub test: &'a ImageSet,
    pub out: &'a Path,
    pub existing: Existing,
    /// Keep each trained network as `out/net-set<s>-run<r>.safetensors`.
    pub save_nets: bool,
    /// The teacher of `spec.config.soft_labels` (`teacher::load`), on the students' device.
    pub teacher: Option<&'a dmgd_student::Net>,
}

/// What `evaluate` tells its caller as it goes (0-based set and run).
pub enum Event<'a> {
    Epoch {
        set: usize,
        run: usize,
        progress: &'a Progress,
    },
    /// A network finished now, or (`kept`) by an interrupted run.
    Finished {
        set: usize,
        run: usize,
        report: &'a RunReport,
        kept: bool,
    },
}

impl Event<'_> {
    /// The line a log shows for this event: a finished network's, and an epoch's when it was
    /// tested or ends a tenth of the run. `true` with it: the line also belongs on a terminal.
    pub fn line(&self) -> Option<(String, bool)> {
        match self {
            Event::Epoch {
                set,
                run,
                progress: p,
            } => {
                let tenth = (p.epochs / 10).max(1);
                if p.test_accuracy.is_none() && p.epoch % tenth != 0 {
                    return None;
                }
                let test = p
                    .test_accuracy
                    .map_or(String::new(), |a| format!("test {a:.2}%, "));
                let line = format!(
                    "set {} run {} epoch {}/{}: train loss {:.4}, lr {}, {test}{:.0} s",
                    set + 1,
                    run + 1,
                    p.epoch,
                    p.epochs,
                    p.train_loss,
                    p.lr,
                    p.seconds
                );
                Some((line, false))
            }
            Event::Finished {
                set,
                run,
                report: t,
                kept,
            } => {
                let kept = if *kept {
                    ", kept from the interrupted run"
                } else {
                    ""
                };
                let line = format!(
                    "set {} run {}: final {:.2}%, best {:.2}% (epoch {}), {:.0} s{kept}",
                    set + 1,
                    run + 1,
                    t.final_accuracy,
                    t.best_accuracy,
                    t.best_epoch,
                    t.seconds
                );
                Some((line, true))
            }
        }
    }
}

#[derive(Serialize)]
pub struct EvalResult {
    #[serde(flatten)]
    pub spec: EvalSpec,
    pub summary: Summary,
    /// Per training set, mean ± std over its repeats.
    pub per_set: Vec<Summary>,
    pub runs: Vec<RunReport>,
    /// Networks taken from `networks/` (finished by an interrupted run) instead of trained.
    pub resumed_networks: usize,
    /// Wall time of this evaluation plus the training time of the resumed networks.
    pub seconds: f64,
}

/// The weights file of network `run` of set `set`.
pub fn net_path(out: &Path, set: usize, run: usize) -> PathBuf {
    out.join(format!("net-set{set}-run{run}.safetensors"))
}

/// Trains and tests every network of the spec (or keeps those an interrupted run of the same
/// spec finished), then writes `eval.json`, `eval.md` and the manifest's outcome.
pub fn evaluate(
    job: &Evaluation,
    on_event: &mut dyn FnMut(Event),
) -> Result<EvalResult, EvalError> {
    let (spec, out) = (job.spec, job.out);
    prepare(job)?;
    let started = std::time::Instant::now();
    let (mut runs, mut per_set) = (Vec::new(), Vec::new());
    let (mut resumed_networks, mut resumed_seconds) = (0, 0.0);
    for (s, set) in job.train.iter().enumerate() {
        let mut set_runs = Vec::new();
        for r in 0..spec.repeats {
            let config = spec.network_config(s, r);
            let report_path = networks::path(out, s, r);
            let expected = Expected {
                config: &config,
                train_fingerprint: &spec.train_sets[s].fingerprint,
                test_fingerprint: &spec.test.fingerprint,
            };
            if let Some(report) = networks::load(&report_path, &expected)? {
                // Without its weights a kept network cannot honour `save_nets`: train it.
                if !job.save_nets || net_path(out, s, r).exists() {
                    on_event(Event::Finished {
                        set: s,
                        run: r,
                        report: &report,
                        kept: true,
                    });
                    resumed_networks += 1;
                    resumed_seconds += report.seconds;
                    set_runs.push(report);
                    continue;
                }
            }
            let trained = train_and_test_with(set, job.test, &config, job.teacher, &mut |p| {
                on_event(Event::Epoch {
                    set: s,
                    run: r,
                    progress: &p,
                })
            })?;
            if job.save_nets {
                trained.classifier.save(&net_path(out, s, r))?;
            }
            networks::save(
                &report_path,
                &FinishedNetwork {
                    train_fingerprint: spec.train_sets[s].fingerprint.clone(),
                    test_fingerprint: spec.test.fingerprint.clone(),
                    report: trained.report.clone(),
                },
            )?;
            on_event(Event::Finished {
                set: s,
                run: r,
                report: &trained.report,
                kept: false,
            });
            set_runs.push(trained.report);
        }
        per_set.push(Summary::of(&set_runs));
        runs.extend(set_runs);
    }
    let result = EvalResult {
        spec: spec.clone(),
        summary: Summary::of(&runs),
        per_set,
        runs,
        resumed_networks,
        seconds: started.elapsed().as_secs_f64() + resumed_seconds,
    };
    let json = serde_json::to_vec_pretty(&result).expect("results serialise");
    dmgd_data::atomic::write_file(&out.join(RESULTS_FILE), &json)?;
    dmgd_data::atomic::write_file(&out.join(TABLE_FILE), markdown_table(&result).as_bytes())?;
    let outcome = serde_json::json!({
        "summary": result.summary,
        "resumed_networks": result.resumed_networks,
        "seconds": result.seconds,
    });
    Manifest::new(spec, Some(&outcome)).write_to(&out.join(MANIFEST_FILE))?;
    Ok(result)
}

/// Refuses what `existing` does not allow, checks a resumed run's spec, and writes the spec
/// before any training.
fn prepare(job: &Evaluation) -> Result<(), EvalError> {
    let out = job.out;
    let results = out.join(RESULTS_FILE);
    // A finished evaluation resumed (same spec) only adds up its kept networks again.
    if results.exists() && job.existing == Existing::Refuse {
        return Err(EvalError::ResultsExist { path: results });
    }
    let finished = networks::count(out)?;
    let manifest = out.join(MANIFEST_FILE);
    match job.existing {
        Existing::Refuse if finished > 0 => {
            return Err(EvalError::Unfinished {
                dir: out.join(networks::NETWORKS_DIR),
                count: finished,
            })
        }
        Existing::Overwrite => networks::clear(out)?,
        // A manifest of an older dmgd has no spec: each kept report is still checked.
        Existing::Resume if manifest.exists() => match dmgd_run::check_spec(&manifest, job.spec) {
            Ok(()) | Err(ManifestError::NoSpec { .. }) => {}
            Err(e) => return Err(e.into()),
        },
        _ => {}
    }
    std::fs::create_dir_all(out).map_err(|e| EvalError::io(out, e))?;
    Manifest::<_, ()>::new(job.spec, None).write_to(&manifest)?;
    Ok(())
}

/// One images-per-class count for the sets (the minimax protocol's epochs follow it).
pub fn common_ipc(sets: &[ImageSet]) -> Result<usize, EvalError> {
    let mut ipcs: Vec<usize> = sets
        .iter()
        .map(|s| s.len() / s.num_classes().max(1))
        .collect();
    ipcs.dedup();
    match ipcs.as_slice() {
        [ipc] => Ok(*ipc),
        _ => Err(EvalError::MixedIpc { ipcs }),
    }
}

/// A value's serde name (`dc`, `dsa`, ...): how flags and keys spell it.
pub fn serde_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s.to_lowercase(),
        other => format!("{other:?}"),
    }
}

/// The results as a Markdown table, one row per set (and one over all sets).
pub fn markdown_table(result: &EvalResult) -> String {
    let c = &result.spec.config;
    let columns = format!(
        "{} | {} | {} | {}",
        c.net,
        serde_name(&c.protocol),
        c.epochs,
        serde_name(&c.augment)
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| training set | images | net | protocol | epochs | augment | runs | final acc (%) | best acc (%) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (record, summary) in result.spec.train_sets.iter().zip(&result.per_set) {
        let _ = writeln!(
            s,
            "| {} | {} | {columns} | {} | {} | {} |",
            record.source,
            record.images,
            summary.runs,
            summary.final_accuracy,
            summary.best_accuracy
        );
    }
    if result.per_set.len() > 1 {
        let all = &result.summary;
        let _ = writeln!(
            s,
            "| **all sets** | | {columns} | {} | {} | {} |",
            all.runs, all.final_accuracy, all.best_accuracy
        );
    }
    let _ = writeln!(
        s,
        "\nmean ± sample std over fresh networks; best = best test accuracy over the tested epochs (optimistic). {:.0} s in all.",
        result.seconds
    );
    if let Some(soft) = &c.soft_labels {
        let t = &soft.teacher;
        let _ = writeln!(
            s,
            "Soft labels: every training batch labelled by the teacher {} ({} norm) of {} (sha256 {}), temperature {}.",
            t.net,
            serde_name(&t.norm),
            t.path,
            &t.sha256[..12.min(t.sha256.len())],
            soft.temperature
        );
    }
    if result.resumed_networks > 0 {
        let _ = writeln!(
            s,
            "{} of the networks were finished by an earlier, interrupted run (resumed).",
            result.resumed_networks
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(epochs: usize, fingerprint: &str) -> EvalSpec {
        let record = |source: &str, fingerprint: &str| SetRecord {
            source: source.into(),
            images: 100,
            fingerprint: fingerprint.into(),
        };
        EvalSpec {
            config: TrainConfig::dc("convnet3".parse().unwrap(), epochs, 0),
            repeats: 2,
            train_sets: vec![record("image folder runs/a/images", fingerprint)],
            test: record("fashion-mnist Test", "t"),
        }
    }

    #[test]
    fn two_sets_or_two_settings_get_two_default_folders() {
        let a = spec(300, "fa").default_out("a");
        assert!(
            a.to_string_lossy().starts_with("runs/eval-a-convnet3-dc-"),
            "{a:?}"
        );
        assert_ne!(a, spec(300, "fb").default_out("a"));
        assert_ne!(a, spec(1000, "fa").default_out("a"));
    }

    #[test]
    fn network_seeds_follow_set_and_run() {
        let s = spec(300, "fa");
        assert_eq!(s.network_config(0, 0).seed, 0);
        assert_eq!(s.network_config(2, 3).seed, 2003);
    }
}
