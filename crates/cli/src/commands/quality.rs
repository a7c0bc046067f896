//! `dmgd quality`: how real generated images look to a classifier trained on real data. For
//! each image set: the share classified as the class it was generated for, and the Fréchet
//! distance between its penultimate features and those of the real test split.

use crate::dataset::{DataArgs, DataSource, FASHION_MNIST};
use crate::manifest::{sha256_file, Manifest};
use anyhow::{bail, Context, Result};
use dmgd_data::fashion_mnist::Split;
use dmgd_data::ImageSet;
use dmgd_student::frechet::{FrechetReference, Gaussian};
use dmgd_student::{Arch, Classifier, NetSpec, NormKind, Protocol};
use serde::Serialize;
use std::path::PathBuf;

/// Judge image sets with a classifier trained on the real data.
///
/// Example (the shipped model's samples, with a ConvNet-3 that `dmgd eval --save-nets` kept):
///   dmgd quality --images runs/fmnist-dit-ipc100 --images fashion-mnist \
///     --classifier runs/eval-full/net-set0-run0.safetensors
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Image set(s) to judge: an ImageFolder, a `dmgd distill`/`sample` output, or
    /// `fashion-mnist` (the real training split: the reference distance). Repeat for several.
    #[arg(long, required = true)]
    pub images: Vec<String>,
    /// Real images the features are compared with: `fashion-mnist` (its test split) or an
    /// ImageFolder with the same classes.
    #[arg(long, default_value = FASHION_MNIST)]
    pub reference: String,
    /// Weights of the classifier (instance norm, `dc` input normalisation), as
    /// `dmgd eval --save-nets` writes them: e.g. `dmgd eval --train fashion-mnist --repeats 1
    /// --epochs 10 --save-nets` gives one trained on the whole real training split.
    #[arg(long)]
    pub classifier: PathBuf,
    /// Architecture of --classifier.
    #[arg(long, default_value = "convnet3")]
    pub net: String,
    /// Where the results go (JSON; a Markdown table is printed).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Serialize)]
struct SetQuality {
    images: String,
    count: usize,
    /// Percentage classified as their own class.
    agreement: f64,
    per_class_agreement: Vec<f64>,
    /// Fréchet distance to the reference, in the classifier's penultimate features.
    frechet_distance: f64,
}

#[derive(Serialize)]
struct QualityReport {
    classifier: PathBuf,
    classifier_sha256: String,
    net: String,
    feature_dim: usize,
    reference: String,
    reference_count: usize,
    /// The classifier's accuracy on the reference images.
    reference_accuracy: f64,
    sets: Vec<SetQuality>,
    seconds: f64,
}

pub fn run(args: Args) -> Result<()> {
    let started = std::time::Instant::now();
    let arch: Arch = args.net.parse()?;
    let reference_source = DataSource::resolve(&args.reference, &args.data, Split::Test, None)?;
    let reference = reference_source.load()?;
    let spec = NetSpec {
        arch,
        norm: NormKind::Instance,
        input: reference.shape,
        num_classes: reference.num_classes(),
    };
    let classifier = Classifier::load(spec, Protocol::Dc, &args.classifier).with_context(|| {
        format!(
            "loading --classifier {} as {arch} for {} images",
            args.classifier.display(),
            reference.shape
        )
    })?;
    // Every set is read and checked before any work.
    let mut sets_to_judge = Vec::new();
    for spec in &args.images {
        let source = DataSource::resolve(
            &crate::dataset::run_images(spec),
            &args.data,
            Split::Train,
            None,
        )?;
        let images = source.load()?;
        if images.shape != reference.shape || images.num_classes() != reference.num_classes() {
            bail!(
                "--images {spec}: {} images in {} classes, but the reference has {} images in {} classes",
                images.shape,
                images.num_classes(),
                reference.shape,
                reference.num_classes()
            );
        }
        if images.class_names != reference.class_names {
            bail!(
                "--images {spec}: classes {:?} differ from the reference's {:?}",
                images.class_names,
                reference.class_names
            );
        }
        sets_to_judge.push((spec, source, images));
    }

    let reference_accuracy = classifier.accuracy(&reference)?;
    let reference_gaussian = FrechetReference::new(fit(&classifier, &reference)?);
    eprintln!(
        "classifier: {reference_accuracy:.2}% on the {} reference images",
        reference.len()
    );
    let mut sets = Vec::new();
    for (spec, source, images) in sets_to_judge {
        let predicted = classifier.predict(&images)?;
        let mut hits = vec![0usize; images.num_classes()];
        let mut totals = vec![0usize; images.num_classes()];
        for (&p, &y) in predicted.iter().zip(&images.labels) {
            totals[y] += 1;
            hits[y] += usize::from(p == y);
        }
        let percent = |h: usize, n: usize| 100.0 * h as f64 / n.max(1) as f64;
        let distance = reference_gaussian.distance(&fit(&classifier, &images)?);
        eprintln!("{spec}: {} images judged", images.len());
        sets.push(SetQuality {
            images: source.describe(),
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

    let report = QualityReport {
        classifier_sha256: sha256_file(&args.classifier)?,
        classifier: args.classifier.clone(),
        net: arch.to_string(),
        feature_dim: classifier.net().feature_dim(),
        reference: reference_source.describe(),
        reference_count: reference.len(),
        reference_accuracy,
        sets,
        seconds: started.elapsed().as_secs_f64(),
    };
    println!("{}", markdown_table(&report));
    if let Some(out) = &args.out {
        Manifest::new(&report).write_to(out)?;
        println!("results: {}", out.display());
    }
    Ok(())
}

/// Gaussian of the classifier's penultimate features over `images`.
fn fit(classifier: &Classifier, images: &ImageSet) -> Result<Gaussian> {
    if images.len() < 2 {
        bail!(
            "a Fréchet distance needs at least 2 images, got {}",
            images.len()
        );
    }
    let features = classifier.features(images)?;
    let (rows, dim) = features.dims2()?;
    Ok(Gaussian::fit(
        &features.flatten_all()?.to_vec1::<f32>()?,
        rows,
        dim,
    ))
}

/// Below this many images a Fréchet distance mostly measures the sample size.
const SMALL_SET: usize = 5_000;

fn markdown_table(report: &QualityReport) -> String {
    let mut out = format!(
        "Classifier {} ({}; {:.2}% on {} reference images), features of dimension {}\n\n\
         | images | count | classified as their class % | Fréchet distance to the reference |\n\
         |---|---|---|---|\n",
        report.classifier.display(),
        report.net,
        report.reference_accuracy,
        report.reference_count,
        report.feature_dim
    );
    for set in &report.sets {
        out.push_str(&format!(
            "| {} | {} | {:.2} | {:.3} |\n",
            set.images, set.count, set.agreement, set.frechet_distance
        ));
    }
    if report.sets.iter().any(|s| s.count < SMALL_SET) {
        out.push_str(&format!(
            "\nA Fréchet distance of fewer than {SMALL_SET} images is biased upwards by the sample size: compare sets of equal size only, and real images of that size as the floor (models/fashion-mnist-dit/README.md).\n"
        ));
    }
    out
}
