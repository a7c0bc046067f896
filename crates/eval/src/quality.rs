//! How a classifier trained on real data sees image sets: the share of each set classified
//! as the class it stands for (agreement), and the Fréchet distance between its penultimate
//! features over the set and over real reference images (docs/METHOD.md §9).

use crate::{EvalError, NetworkRole, SetRecord};
use candle_core::Device;
use dmgd_data::ImageSet;
use dmgd_distill::spec::ModelRecord;
use dmgd_student::frechet::{FrechetReference, Gaussian};
use dmgd_student::{Arch, Classifier, NetSpec, NormKind, Protocol};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// Below this many images a Fréchet distance mostly measures the sample size.
pub const SMALL_SET: usize = 5_000;

#[derive(Debug, Serialize)]
pub struct SetQuality {
    pub images: String,
    pub count: usize,
    /// Percentage classified as their own class.
    pub agreement: f64,
    pub per_class_agreement: Vec<f64>,
    /// Fréchet distance to the reference, in the classifier's penultimate features.
    pub frechet_distance: f64,
}

#[derive(Debug, Serialize)]
pub struct QualityReport {
    pub classifier: ModelRecord,
    pub net: String,
    pub feature_dim: usize,
    pub reference: String,
    pub reference_count: usize,
    /// The classifier's accuracy on the reference images.
    pub reference_accuracy: f64,
    pub sets: Vec<SetQuality>,
    pub seconds: f64,
}

/// The judge: a classifier saved by `Classifier::save` (instance norm, `dc` input
/// normalisation) in `path`, as `net` for `reference`'s images, and its record.
pub fn load_classifier(
    path: &Path,
    net: Arch,
    reference: &ImageSet,
    device: &Device,
) -> Result<(Classifier, ModelRecord), EvalError> {
    let spec = NetSpec {
        arch: net,
        norm: NormKind::Instance,
        input: reference.shape,
        num_classes: reference.num_classes(),
    };
    let loaded = Classifier::load_on(spec, Protocol::Dc, path, device)
        .map_err(EvalError::from)
        .and_then(|c| Ok((c, ModelRecord::of(path)?)));
    loaded.map_err(|e| EvalError::Network {
        role: NetworkRole::Classifier,
        what: format!("{} as {net} for {} images", path.display(), reference.shape),
        source: Box::new(e),
    })
}

/// Writes `report` with what was judged (the reference and the sets) as a manifest in `out`.
pub fn write(
    out: &Path,
    report: &QualityReport,
    reference: &SetRecord,
    sets: &[SetRecord],
) -> Result<(), EvalError> {
    let spec = serde_json::json!({
        "classifier": &report.classifier,
        "reference": reference,
        "sets": sets,
    });
    Ok(dmgd_run::Manifest::new(&spec, Some(report)).write_to(out)?)
}

/// Judges each `(name, set)` against `reference` (named `reference_name`); the sets must
/// have been checked compatible with the reference (`check_compatible`).
pub fn judge(
    classifier: &Classifier,
    record: ModelRecord,
    reference: &ImageSet,
    reference_name: &str,
    sets: &[(String, ImageSet)],
    log: &mut dyn FnMut(&str),
) -> Result<QualityReport, EvalError> {
    let started = std::time::Instant::now();
    let reference_accuracy = classifier.accuracy(reference)?;
    let reference_gaussian = FrechetReference::new(fit(classifier, reference, reference_name)?);
    log(&format!(
        "classifier: {reference_accuracy:.2}% on the {} reference images",
        reference.len()
    ));
    let mut judged = Vec::new();
    for (name, images) in sets {
        let predicted = classifier.predict(images)?;
        let mut hits = vec![0usize; images.num_classes()];
        let mut totals = vec![0usize; images.num_classes()];
        for (&p, &y) in predicted.iter().zip(&images.labels) {
            totals[y] += 1;
            hits[y] += usize::from(p == y);
        }
        let percent = |h: usize, n: usize| 100.0 * h as f64 / n.max(1) as f64;
        let distance = reference_gaussian.distance(&fit(classifier, images, name)?);
        log(&format!("{name}: {} images judged", images.len()));
        judged.push(SetQuality {
            images: name.clone(),
            count: images.len(),
            agreement: percent(hits.iter().sum(), images.len()),
            per_class_agreement: hits
                .iter()
                .zip(&totals)
                .map(|(&h, &n)| percent(h, n))
                .collect(),
            frechet_distance: distance,
        });
    }
    Ok(QualityReport {
        classifier: record,
        net: classifier.net().spec().arch.to_string(),
        feature_dim: classifier.net().feature_dim(),
        reference: reference_name.into(),
        reference_count: reference.len(),
        reference_accuracy,
        sets: judged,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Gaussian of the classifier's penultimate features over `images`.
fn fit(classifier: &Classifier, images: &ImageSet, name: &str) -> Result<Gaussian, EvalError> {
    if images.len() < 2 {
        return Err(EvalError::TooFewImages {
            set: name.into(),
            count: images.len(),
        });
    }
    let features = classifier.features(images)?;
    let (rows, dim) = features.dims2()?;
    Ok(Gaussian::fit(
        &features.flatten_all()?.to_vec1::<f32>()?,
        rows,
        dim,
    ))
}

pub fn markdown_table(report: &QualityReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "Classifier {} ({}; {:.2}% on {} reference images), features of dimension {}\n\n\
         | images | count | classified as their class % | Fréchet distance to the reference |\n\
         |---|---|---|---|\n",
        report.classifier.path,
        report.net,
        report.reference_accuracy,
        report.reference_count,
        report.feature_dim
    );
    for set in &report.sets {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.3} |",
            set.images, set.count, set.agreement, set.frechet_distance
        );
    }
    if report.sets.iter().any(|s| s.count < SMALL_SET) {
        let _ = writeln!(
            out,
            "\nA Fréchet distance of fewer than {SMALL_SET} images is biased upwards by the sample size: compare sets of equal size only, and real images of that size as the floor (models/fashion-mnist-dit/README.md)."
        );
    }
    out
}
