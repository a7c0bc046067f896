//! Real-image baselines: IPC images per class at random, by herding or by k-center, the
//! latter two in the penultimate embedding (the input of the final linear layer) of a
//! classifier: one given, or one trained here on the whole set with the `dc` protocol and
//! cached, keyed by the data's fingerprint, the net, the epochs and the seed.

use crate::{EvalError, NetworkRole, SetRecord};
use dmgd_data::{image_folder, ImageSet};
use dmgd_distill::coreset::{self, CoresetMethod};
use dmgd_distill::spec::ModelRecord;
use dmgd_kernels::DeviceName;
use dmgd_run::{Manifest, MANIFEST_FILE};
use dmgd_student::{Arch, Classifier, NetSpec, NormKind, Protocol, TrainConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `dc`-protocol epochs of an embedding network trained on the full real training split
/// (lr x0.1 after half of them): a few epochs give a usable feature space at a small fraction
/// of the 300's cost. The accuracy it reached is recorded.
pub const EMBEDDING_EPOCHS: usize = 5;

/// What `dmgd select` lets one choose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SelectChoices {
    pub method: CoresetMethod,
    pub ipc: usize,
    pub seed: u64,
    pub embedding_net: Arch,
    pub embedding_epochs: usize,
    pub embedding_seed: u64,
    pub device: DeviceName,
}

impl Default for SelectChoices {
    fn default() -> Self {
        SelectChoices {
            method: CoresetMethod::Random,
            ipc: 10,
            seed: 0,
            embedding_net: Arch::ConvNet { depth: 3 },
            embedding_epochs: EMBEDDING_EPOCHS,
            embedding_seed: 0,
            device: DeviceName::Cpu,
        }
    }
}

impl dmgd_run::Settings for SelectChoices {
    fn described() -> Vec<(&'static str, &'static str)> {
        vec![
            ("method", "Selection rule: random, herding or kcenter."),
            ("ipc", "Images per class."),
            ("seed", "Seed of the random draw (random only; herding and k-center are deterministic given the embedding)."),
            ("embedding-net", "herding / kcenter: the embedding network (convnet3, convnetD, resnetap10, resnet18)."),
            ("embedding-epochs", "herding / kcenter: dc-protocol epochs of the embedding network on the real training set."),
            ("embedding-seed", "herding / kcenter: seed of the embedding network's initialisation and batch order."),
            ("device", "cpu, or cuda:N with a dmgd built with `--features cuda`: where the embedding network trains and runs."),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        match (self.ipc, self.embedding_epochs) {
            (0, _) => Err("`ipc`: expected at least 1".into()),
            (_, 0) => Err("`embedding-epochs`: expected at least 1".into()),
            _ => Ok(()),
        }
    }
}

/// What a selection is.
#[derive(Debug, Clone, Serialize)]
pub struct SelectSpec {
    pub method: CoresetMethod,
    pub ipc: usize,
    /// Drives `random` only: herding and k-center are deterministic given the embedding.
    pub seed: u64,
    pub data: SetRecord,
}

impl SelectSpec {
    /// `runs/select-<method>-ipc<N>-seed<S>`, with the data's hash appended unless they are
    /// the shipped default (`default_data`).
    pub fn default_out(&self, default_data: bool) -> PathBuf {
        let method = crate::evaluate::serde_name(&self.method);
        let mut name = format!("select-{method}-ipc{}-seed{}", self.ipc, self.seed);
        if !default_data {
            name = format!("{name}-{}", dmgd_run::spec_hash(&self.data.fingerprint));
        }
        PathBuf::from("runs").join(name)
    }
}

/// Where the embedding of herding / k-center comes from.
pub enum EmbeddingChoice<'a> {
    /// A classifier saved by `Classifier::save` (instance norm, `dc` normalisation).
    File(&'a Path),
    /// Trained on the real set (or taken from `cache`, where an earlier selection left it).
    Train {
        epochs: usize,
        seed: u64,
        cache: PathBuf,
        /// Images to report its accuracy on, and how to name them (`None`: 1,000 of the
        /// training images, evenly spaced).
        check: Option<(&'a ImageSet, String)>,
    },
}

/// Which network gave the embedding, and how it was obtained.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingRecord {
    /// `trained` (now), `cached` (trained by an earlier selection) or `file`.
    pub origin: &'static str,
    pub weights: ModelRecord,
    pub net: String,
    pub norm: NormKind,
    /// Always the penultimate layer: the input of the final linear classifier.
    pub layer: &'static str,
    pub feature_dim: usize,
    /// How the network was trained, when a selection trained it.
    pub training: Option<EmbeddingTraining>,
}

/// The sidecar `<key>.json` of a cached embedding network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingTraining {
    pub config: TrainConfig,
    pub dataset_fingerprint: String,
    pub train_images: usize,
    /// What the accuracy below was measured on.
    pub checked_on: String,
    pub checked_images: usize,
    pub accuracy: f64,
    pub seconds: f64,
}

/// One selection, its inputs read: what `dmgd select` runs.
pub struct SelectJob<'a> {
    pub real: &'a ImageSet,
    pub spec: &'a SelectSpec,
    pub choices: &'a SelectChoices,
    /// herding / k-center: a saved classifier to take the embedding from; `None`: one trained
    /// here (or found in `cache`).
    pub embedding: Option<&'a Path>,
    /// Where trained embedding networks are kept; `None`: `dmgd_run::cache_dir()`.
    pub cache: Option<PathBuf>,
    /// Images to report a trained embedding network's accuracy on, and their name.
    pub check: Option<(&'a ImageSet, String)>,
    pub out: &'a Path,
    pub overwrite: bool,
}

/// Chooses the images (training or loading the embedding network first where the method
/// needs one) and writes them; returns the output directory.
pub fn run(job: &SelectJob, log: &mut dyn FnMut(&str)) -> Result<PathBuf, EvalError> {
    let (real, c) = (job.real, job.choices);
    coreset::check_class_sizes(real, c.ipc)?;
    let network = if c.method.needs_features() {
        let choice = match job.embedding {
            Some(path) => EmbeddingChoice::File(path),
            None => EmbeddingChoice::Train {
                epochs: c.embedding_epochs,
                seed: c.embedding_seed,
                cache: job
                    .cache
                    .clone()
                    .or_else(dmgd_run::cache_dir)
                    .ok_or(EvalError::NoCacheDir)?,
                check: job.check.as_ref().map(|(set, name)| (*set, name.clone())),
            },
        };
        let network = embedding_network(c.embedding_net, real, &choice, c.device, log);
        Some(network.map_err(|e| EvalError::Network {
            role: NetworkRole::Embedding,
            what: match job.embedding {
                Some(path) => format!("{} as {}", path.display(), c.embedding_net),
                None => format!("the {} trained on the real data", c.embedding_net),
            },
            source: Box::new(e),
        })?)
    } else {
        None
    };
    let (classifier, record) = network.unzip();
    let picks = select(real, job.spec, classifier.as_ref(), log)?;
    write(
        real,
        job.spec,
        record.as_ref(),
        picks,
        job.out,
        job.overwrite,
    )
}

/// Indices into `real` of the chosen images, per class in class order.
pub fn select(
    real: &ImageSet,
    spec: &SelectSpec,
    classifier: Option<&Classifier>,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<Vec<usize>>, EvalError> {
    coreset::check_class_sizes(real, spec.ipc)?;
    let Some(classifier) = classifier.filter(|_| spec.method.needs_features()) else {
        return match spec.method {
            CoresetMethod::Random => Ok(coreset::random_per_class(real, spec.ipc, spec.seed)?),
            method => Err(EvalError::NoEmbedding { method }),
        };
    };
    let started = Instant::now();
    let mut picks = Vec::with_capacity(real.num_classes());
    // Class by class: the whole set's features (60,000 x 2048 f32 for Fashion-MNIST) would
    // take half a gigabyte at once.
    for members in real.indices_by_class() {
        let features = classifier.features(&real.subset(&members))?; // (N_c, D)
        let dim = features.dim(1)?;
        let features = features.flatten_all()?.to_vec1::<f32>()?;
        let positions = match spec.method {
            CoresetMethod::Herding => coreset::herding(&features, dim, spec.ipc),
            _ => coreset::kcenter(&features, dim, spec.ipc),
        };
        picks.push(positions.into_iter().map(|p| members[p]).collect());
    }
    log(&format!(
        "{:?} over {} images in {:.1} s",
        spec.method,
        real.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(picks)
}

/// Writes the chosen images as an ImageFolder with `grid.png` and the manifest (spec, the
/// embedding, the source indices) into `out`, all or nothing.
pub fn write(
    real: &ImageSet,
    spec: &SelectSpec,
    embedding: Option<&EmbeddingRecord>,
    picks: Vec<Vec<usize>>,
    out: &Path,
    overwrite: bool,
) -> Result<PathBuf, EvalError> {
    let subset = real.subset(&picks.concat());
    let staged = dmgd_data::atomic::StagedDir::new(out, overwrite)?;
    image_folder::write_into(&subset, staged.path())?;
    dmgd_data::grid::write_class_grid(&subset, spec.ipc.min(10), &staged.path().join("grid.png"))?;
    let outcome = serde_json::json!({ "embedding": embedding, "source_indices": picks });
    Manifest::new(spec, Some(&outcome)).write_to(&staged.path().join(MANIFEST_FILE))?;
    Ok(staged.commit()?)
}

/// The classifier whose embedding herding / k-center use, and its record.
pub fn embedding_network(
    arch: Arch,
    real: &ImageSet,
    choice: &EmbeddingChoice,
    device: DeviceName,
    log: &mut dyn FnMut(&str),
) -> Result<(Classifier, EmbeddingRecord), EvalError> {
    let opened = device.open()?;
    let norm = NormKind::Instance;
    let spec = NetSpec {
        arch,
        norm,
        input: real.shape,
        num_classes: real.num_classes(),
    };
    let record = |origin, weights: &Path, classifier: &Classifier, training| {
        Ok::<_, EvalError>(EmbeddingRecord {
            origin,
            weights: ModelRecord::of(weights)?,
            net: arch.to_string(),
            norm,
            layer: "penultimate",
            feature_dim: classifier.net().feature_dim(),
            training,
        })
    };
    let (epochs, seed, cache, check) = match choice {
        EmbeddingChoice::File(path) => {
            let classifier = Classifier::load_on(spec, Protocol::Dc, path, &opened)?;
            let rec = record("file", path, &classifier, None)?;
            return Ok((classifier, rec));
        }
        EmbeddingChoice::Train {
            epochs,
            seed,
            cache,
            check,
        } => (*epochs, *seed, cache.join("embeddings"), check),
    };
    let fingerprint = real.fingerprint();
    // Another device trains another network (other bits): its own cache entry.
    let on = if device.is_cpu() {
        String::new()
    } else {
        format!("-{device}")
    };
    let key = format!(
        "{}-{arch}-{}-dc-e{epochs}-s{seed}{on}",
        &fingerprint[..16],
        crate::evaluate::serde_name(&norm)
    );
    let weights = cache.join(format!("{key}.safetensors"));
    let sidecar = cache.join(format!("{key}.json"));
    if let Some(training) = read_cached(&weights, &sidecar, &fingerprint) {
        match Classifier::load_on(spec, Protocol::Dc, &weights, &opened) {
            Ok(classifier) => {
                log(&format!(
                    "embedding network from the cache: {}",
                    weights.display()
                ));
                let rec = record("cached", &weights, &classifier, Some(training))?;
                return Ok((classifier, rec));
            }
            Err(err) => log(&format!(
                "ignoring unreadable cache entry {}: {err}",
                weights.display()
            )),
        }
    }
    // An unwritable cache should fail now, not after the training.
    std::fs::create_dir_all(&cache).map_err(|e| EvalError::io(&cache, e))?;

    let own;
    let (check, checked_on) = match check {
        Some((set, name)) => (*set, name.clone()),
        None => {
            let step = real.len().div_ceil(1000).max(1);
            let picked: Vec<usize> = (0..real.len()).step_by(step).collect();
            own = real.subset(&picked);
            let n = own.len();
            (
                &own,
                format!("{n} of its own training images (no test split)"),
            )
        }
    };
    let mut config = TrainConfig::dc(arch, epochs, seed);
    config.test_every = config.epochs; // one check, at the end
    config.device = device;
    log(&format!(
        "training the {arch} embedding network on {} images, {} epochs of the dc protocol (cached as {})",
        real.len(),
        config.epochs,
        weights.display()
    ));
    let started = Instant::now();
    let trained = dmgd_student::train_and_test(real, check, &config, &mut |p| {
        log(&format!(
            "  epoch {}/{}: loss {:.4}, {:.0} s",
            p.epoch, p.epochs, p.train_loss, p.seconds
        ))
    })?;
    let training = EmbeddingTraining {
        config,
        dataset_fingerprint: fingerprint,
        train_images: real.len(),
        checked_on,
        checked_images: check.len(),
        accuracy: trained.report.final_accuracy,
        seconds: started.elapsed().as_secs_f64(),
    };
    log(&format!(
        "embedding network: {:.2}% on {} after {:.0} s",
        training.accuracy, training.checked_on, training.seconds
    ));
    // Weights first, sidecar last, each renamed into place: the sidecar marks a complete entry.
    trained.classifier.save(&weights)?;
    let json = serde_json::to_vec_pretty(&training).expect("a record serialises");
    dmgd_data::atomic::write_file(&sidecar, &json)?;
    let rec = record("trained", &weights, &trained.classifier, Some(training))?;
    Ok((trained.classifier, rec))
}

/// A complete cache entry for this dataset, if there is one.
fn read_cached(weights: &Path, sidecar: &Path, fingerprint: &str) -> Option<EmbeddingTraining> {
    let training: EmbeddingTraining = serde_json::from_slice(&std::fs::read(sidecar).ok()?).ok()?;
    (weights.is_file() && training.dataset_fingerprint == fingerprint).then_some(training)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_choice_is_described() {
        dmgd_run::settings::assert_described::<super::SelectChoices>();
    }

    #[test]
    fn every_flag_sets_its_key_alone() {
        dmgd_run::flags::assert_every_flag_sets_its_key::<super::SelectChoices>(
            r#"
method | --method herding | "herding"
ipc | --ipc 3 | 3
seed | --seed 2 | 2
embedding-net | --embedding-net resnet18 | "resnet18"
embedding-epochs | --embedding-epochs 2 | 2
embedding-seed | --embedding-seed 5 | 5
device | --device cuda:0 | "cuda:0"
"#,
        );
    }
}
