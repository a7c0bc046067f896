//! Label- and augmentation-robust scores of a set (DD-Ranking's LRS and ARS, docs/METHOD.md
//! §10), from finished evaluations: a set only counts as better than real data if it beats a
//! random real subset of the same IPC under the same protocol.
//!
//! With accuracies as fractions (DD-Ranking's code feeds percentages to the exponential; its
//! stated intent, scores in [0, 1], holds for fractions):
//! - HLR = Acc(full real data, hard) - Acc(set, hard)
//! - IOR = Acc(set, soft) - Acc(random subset, soft)
//! - LRS = norm(w IOR - (1 - w) HLR), w = 0.5
//! - ARS = norm(g (set_aug - random_aug) + (1 - g) (set_noaug - random_noaug)), g = 0.5,
//!   soft labels in all four
//!
//! where norm(x) = (e^x - e^-1) / (e - e^-1). Network r of one evaluation is paired with
//! network r of the other (same seed), and the scores are mean ± sample std over the pairs.

use crate::evaluate::{EvalSpec, RESULTS_FILE};
use crate::EvalError;
use dmgd_student::report::MeanStd;
use dmgd_student::{Augment, RunReport};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// DD-Ranking's weights: `lrs_lambda` and `ars_lambda`.
pub const LRS_WEIGHT: f64 = 0.5;
pub const ARS_WEIGHT: f64 = 0.5;

/// (e^x - e^-1) / (e - e^-1): 0 at x = -1, 1 at x = 1.
pub fn normalize(x: f64) -> f64 {
    let e = std::f64::consts::E;
    (x.exp() - 1.0 / e) / (e - 1.0 / e)
}

/// A finished evaluation as `eval.json` stores it.
#[derive(Debug, Clone, Deserialize)]
pub struct Cell {
    #[serde(flatten)]
    pub spec: EvalSpec,
    pub runs: Vec<RunReport>,
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Cell {
    /// Reads `dir/eval.json`.
    pub fn read(dir: &Path) -> Result<Cell, EvalError> {
        let path = dir.join(RESULTS_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| EvalError::io(&path, e))?;
        let not_a_report = |source| EvalError::NotAReport {
            path: path.clone(),
            source,
        };
        let mut value: serde_json::Value = serde_json::from_str(&text).map_err(not_a_report)?;
        // Evaluations of dmgd before 2026-12-02 named the test set by a string beside
        // `test_images` and `test_fingerprint` (the tables of docs/RESULTS.md).
        if let Some(source) = value["test"].as_str().map(str::to_string) {
            value["test"] = serde_json::json!({
                "source": source,
                "images": value["test_images"],
                "fingerprint": value["test_fingerprint"],
            });
        }
        let mut cell: Cell = serde_json::from_value(value).map_err(not_a_report)?;
        cell.dir = dir.to_path_buf();
        Ok(cell)
    }

    fn accuracies(&self, best: bool) -> Vec<f64> {
        let pick = |r: &RunReport| {
            if best {
                r.best_accuracy
            } else {
                r.final_accuracy
            }
        };
        self.runs.iter().map(|r| pick(r) / 100.0).collect()
    }

    fn set_sizes(&self) -> Vec<usize> {
        self.spec.train_sets.iter().map(|s| s.images).collect()
    }
}

/// The evaluations the scores read; `noaug` are soft-label evaluations without augmentation
/// of the set and the random subset (for ARS).
pub struct Cells {
    pub full_hard: Cell,
    pub set_hard: Cell,
    pub set_soft: Cell,
    pub random_soft: Cell,
    pub noaug: Option<(Cell, Cell)>,
}

/// One score: per-pair values and their mean ± std.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub values: Vec<f64>,
    pub summary: MeanStd,
}

impl Score {
    fn of(values: Vec<f64>) -> Self {
        let summary = MeanStd::of(&values);
        Score { values, summary }
    }
}

/// The scores from final-epoch (or best-epoch) accuracies, with their inputs (fractions).
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub full_hard: MeanStd,
    pub set_hard: MeanStd,
    pub set_soft: MeanStd,
    pub random_soft: MeanStd,
    pub hlr: Score,
    pub ior: Score,
    pub lrs: Score,
    /// Without the no-augmentation cells: None.
    pub ars: Option<Score>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoreReport {
    pub cells: Vec<(String, String)>,
    pub final_epoch: Scores,
    pub best_epoch: Scores,
}

fn refuse(cell: &Cell, why: String) -> EvalError {
    EvalError::NetworkMismatch {
        path: cell.dir.join(RESULTS_FILE),
        why,
    }
}

/// The checks that make the comparisons fair: one test set; soft cells with soft labels (one
/// teacher, one protocol), hard cells without; each pair of set and random subset with the
/// same number of images, configuration and networks; the set's hard and soft evaluations on
/// the same images.
fn check(cells: &Cells) -> Result<(), EvalError> {
    let test = &cells.full_hard.spec.test.fingerprint;
    let mut all = vec![
        &cells.full_hard,
        &cells.set_hard,
        &cells.set_soft,
        &cells.random_soft,
    ];
    if let Some((a, b)) = &cells.noaug {
        all.extend([a, b]);
    }
    for cell in &all {
        if &cell.spec.test.fingerprint != test {
            return Err(refuse(
                cell,
                "was tested on another test set than the full-data evaluation".into(),
            ));
        }
    }
    for cell in [&cells.full_hard, &cells.set_hard] {
        if cell.spec.config.soft_labels.is_some() {
            return Err(refuse(
                cell,
                "has soft labels; a hard-label evaluation is expected".into(),
            ));
        }
    }
    let mut pairs = vec![(&cells.set_soft, &cells.random_soft)];
    if let Some((a, b)) = &cells.noaug {
        pairs.push((a, b));
        if a.spec.config.augment != Augment::None {
            return Err(refuse(
                a,
                "is augmented; an evaluation with --augment none is expected".into(),
            ));
        }
    }
    for (set, random) in pairs {
        if set.spec.config.soft_labels.is_none() {
            return Err(refuse(
                set,
                "has hard labels; a soft-label evaluation is expected".into(),
            ));
        }
        let (mut a, mut b) = (set.spec.config.clone(), random.spec.config.clone());
        a.seed = 0;
        b.seed = 0;
        if a != b {
            return Err(refuse(random, format!("was trained otherwise than {}: the set and the random subset need one configuration", set.dir.display())));
        }
        if set.set_sizes() != random.set_sizes() || set.runs.len() != random.runs.len() {
            return Err(refuse(
                random,
                format!(
                    "has other set sizes or network counts than {}",
                    set.dir.display()
                ),
            ));
        }
    }
    let fingerprints = |c: &Cell| -> Vec<String> {
        c.spec
            .train_sets
            .iter()
            .map(|s| s.fingerprint.clone())
            .collect()
    };
    if fingerprints(&cells.set_hard) != fingerprints(&cells.set_soft) {
        return Err(refuse(
            &cells.set_hard,
            format!(
                "was trained on other sets than {}",
                cells.set_soft.dir.display()
            ),
        ));
    }
    if cells.set_hard.runs.len() != cells.set_soft.runs.len() {
        return Err(refuse(
            &cells.set_hard,
            "has another number of networks than the soft-label evaluation of the set".into(),
        ));
    }
    Ok(())
}

fn scores(cells: &Cells, best: bool) -> Scores {
    let full = MeanStd::of(&cells.full_hard.accuracies(best)).mean;
    let (set_hard, set_soft, random_soft) = (
        cells.set_hard.accuracies(best),
        cells.set_soft.accuracies(best),
        cells.random_soft.accuracies(best),
    );
    let hlr: Vec<f64> = set_hard.iter().map(|a| full - a).collect();
    let ior: Vec<f64> = set_soft
        .iter()
        .zip(&random_soft)
        .map(|(s, r)| s - r)
        .collect();
    let lrs = hlr
        .iter()
        .zip(&ior)
        .map(|(h, i)| normalize(LRS_WEIGHT * i - (1.0 - LRS_WEIGHT) * h))
        .collect();
    let ars = cells.noaug.as_ref().map(|(set, random)| {
        let (s, r) = (set.accuracies(best), random.accuracies(best));
        let values = ior
            .iter()
            .zip(s.iter().zip(&r))
            .map(|(aug, (s, r))| normalize(ARS_WEIGHT * aug + (1.0 - ARS_WEIGHT) * (s - r)))
            .collect();
        Score::of(values)
    });
    Scores {
        full_hard: MeanStd::of(&cells.full_hard.accuracies(best)),
        set_hard: MeanStd::of(&set_hard),
        set_soft: MeanStd::of(&set_soft),
        random_soft: MeanStd::of(&random_soft),
        hlr: Score::of(hlr),
        ior: Score::of(ior),
        lrs: Score::of(lrs),
        ars,
    }
}

/// The scores of the set of `cells`, after checking that the cells compare like with like.
pub fn score(cells: &Cells) -> Result<ScoreReport, EvalError> {
    check(cells)?;
    let mut named = vec![
        ("full real data, hard labels", &cells.full_hard),
        ("set, hard labels", &cells.set_hard),
        ("set, soft labels", &cells.set_soft),
        ("random subset, soft labels", &cells.random_soft),
    ];
    if let Some((a, b)) = &cells.noaug {
        named.push(("set, soft labels, no augmentation", a));
        named.push(("random subset, soft labels, no augmentation", b));
    }
    Ok(ScoreReport {
        cells: named
            .into_iter()
            .map(|(what, cell)| (what.to_string(), cell.dir.display().to_string()))
            .collect(),
        final_epoch: scores(cells, false),
        best_epoch: scores(cells, true),
    })
}

/// The report as Markdown: the cells read, then inputs and scores at the final and the best
/// epoch (accuracies and differences as fractions).
pub fn markdown(report: &ScoreReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (what, dir) in &report.cells {
        let _ = writeln!(s, "- {what}: {dir}");
    }
    let _ = writeln!(
        s,
        "\n| epoch | full hard | set hard | set soft | random soft | HLR | IOR | LRS | ARS |\n|---|---|---|---|---|---|---|---|---|"
    );
    let f = |m: &MeanStd| format!("{:.4} ± {:.4}", m.mean, m.std);
    for (epoch, x) in [("final", &report.final_epoch), ("best", &report.best_epoch)] {
        let ars = x.ars.as_ref().map_or("-".to_string(), |a| f(&a.summary));
        let _ = writeln!(
            s,
            "| {epoch} | {} | {} | {} | {} | {} | {} | {} | {ars} |",
            f(&x.full_hard),
            f(&x.set_hard),
            f(&x.set_soft),
            f(&x.random_soft),
            f(&x.hlr.summary),
            f(&x.ior.summary),
            f(&x.lrs.summary)
        );
    }
    let _ = writeln!(
        s,
        "\nmean ± sample std over paired networks; HLR smaller is better; LRS and ARS in [0, 1], 1/(e+1) = 0.269 when the set equals the random subset and the full data."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SetRecord;
    use dmgd_student::{SoftLabels, Teacher, TrainConfig};

    /// A finished evaluation with one network per accuracy (in percent).
    fn cell(name: &str, accuracies: &[f64], soft: bool, augment: Augment) -> Cell {
        let mut config = TrainConfig::rded("convnet3".parse().unwrap(), 10, 10, 0);
        config.augment = augment;
        config.soft_labels = soft.then(|| SoftLabels {
            teacher: Teacher {
                net: config.net,
                norm: config.norm,
                path: "teacher.safetensors".into(),
                sha256: "ab".repeat(32),
            },
            temperature: 20.0,
        });
        let record = |source: &str, images| SetRecord {
            source: source.into(),
            images,
            fingerprint: format!("{source}-fingerprint"),
        };
        let runs = accuracies
            .iter()
            .enumerate()
            .map(|(r, &a)| RunReport {
                config: TrainConfig {
                    seed: r as u64,
                    ..config.clone()
                },
                num_params: 1,
                train_images: 100,
                test_images: 10_000,
                final_accuracy: a,
                best_accuracy: a + 1.0,
                best_epoch: 1,
                curve: vec![(1, a)],
                seconds: 1.0,
            })
            .collect();
        Cell {
            spec: EvalSpec {
                config,
                repeats: accuracies.len(),
                train_sets: vec![record(name, 100)],
                test: record("test", 10_000),
            },
            runs,
            dir: PathBuf::from(name),
        }
    }

    /// Values from Python: HLR = 0.91 - hard, IOR = soft - random, then the normalised
    /// weighted sums of the module's formulas.
    #[test]
    fn scores_follow_dd_rankings_formulas_per_pair() {
        let aug = Augment::Rded;
        let cells = Cells {
            full_hard: cell("full", &[90.0, 92.0], false, aug),
            set_hard: cell("set", &[70.0, 72.0], false, aug),
            set_soft: cell("set", &[80.0, 83.0], true, aug),
            random_soft: cell("random", &[75.0, 76.0], true, aug),
            noaug: Some((
                cell("set", &[60.0, 62.0], true, Augment::None),
                cell("random", &[55.0, 50.0], true, Augment::None),
            )),
        };
        let report = score(&cells).unwrap();
        let s = &report.final_epoch;
        let close = |got: &[f64], want: &[f64]| {
            assert!(
                got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12),
                "{got:?} vs {want:?}"
            )
        };
        close(&s.hlr.values, &[0.21, 0.19]);
        close(&s.ior.values, &[0.05, 0.07]);
        close(
            &s.lrs.values,
            &[0.236_230_574_057_553, 0.244_164_614_330_177_6],
        );
        close(
            &s.ars.as_ref().unwrap().values,
            &[0.290_755_174_050_527_3, 0.311_342_184_603_183_7],
        );
        assert!(
            (s.lrs.summary.mean - (0.236_230_574_057_553 + 0.244_164_614_330_177_6) / 2.0).abs()
                < 1e-12
        );
        // Best-epoch accuracies are all 1 point higher: the differences stay, HLR too.
        close(&report.best_epoch.ior.values, &[0.05, 0.07]);

        // Unfair comparisons are refused, naming the evaluation.
        let mut other = cells;
        other.random_soft = cell("random", &[75.0, 76.0], true, Augment::None);
        let err = score(&other).unwrap_err().to_string();
        assert!(
            err.contains("random") && err.contains("one configuration"),
            "{err}"
        );
        other.random_soft = cell("random", &[75.0, 76.0], false, aug);
        other.set_soft = cell("set", &[80.0, 83.0], false, aug);
        assert!(score(&other)
            .unwrap_err()
            .to_string()
            .contains("hard labels"));
    }

    /// The committed tables' evaluations (the older layout) read as cells.
    #[test]
    fn evaluations_of_the_committed_table_read() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../experiments/fashion-mnist-table/results/table/eval/random-ipc10-none");
        let cell = Cell::read(&dir).unwrap();
        assert_eq!((cell.runs.len(), cell.spec.train_sets.len()), (6, 3));
        assert_eq!(cell.spec.test.images, 10_000);
        assert!(cell.spec.test.fingerprint.starts_with("fd1c3a3e"));
    }

    #[test]
    fn normalisation_maps_minus_one_zero_one() {
        assert!(normalize(-1.0).abs() < 1e-15);
        assert!((normalize(1.0) - 1.0).abs() < 1e-15);
        // x = 0: (1 - 1/e) / (e - 1/e) = 1 / (e + 1).
        assert!((normalize(0.0) - 1.0 / (std::f64::consts::E + 1.0)).abs() < 1e-15);
    }
}
