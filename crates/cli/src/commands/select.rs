//! `dmgd select`: real images per class (random, herding or k-center) into an ImageFolder.

use crate::dataset::{DataArgs, DataSource, FASHION_MNIST};
use crate::manifest::{sha256_file, Manifest};
use anyhow::{bail, Context, Result};
use dmgd_data::fashion_mnist::Split;
use dmgd_data::{image_folder, DataError, ImageSet};
use dmgd_distill::coreset::{self, CoresetMethod};
use dmgd_student::{Arch, Classifier, NetSpec, NormKind, Protocol, TrainConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Epochs of the `dc` protocol for the embedding network trained on the full real training
/// split (lr x0.1 after half of them): a few epochs of the 300 give a usable feature space at a
/// small fraction of the cost. The accuracy it reached is recorded in the manifest.
pub const EMBEDDING_EPOCHS: usize = 5;

/// For an ImageFolder the embedding network is tested on at most this many of its training
/// images (evenly spaced), since such a folder brings no test split.
const FOLDER_CHECK_IMAGES: usize = 1000;

/// Pick IPC real images per class and write them as an ImageFolder with a manifest.
///
/// `herding` and `kcenter` work in the penultimate-layer embedding (the flattened output of
/// the last conv block, 2048-d for ConvNet-3 on 28x28) of a network trained on the whole real
/// training set with the `dc` protocol (SGD 0.01, batch 256, no augmentation) for
/// --embedding-epochs epochs (default 5), seed --embedding-seed. The trained network is cached
/// under --cache-dir, keyed by dataset fingerprint, net, epochs and seed, so later selections
/// skip the training; --embedding uses a saved classifier instead.
///
/// Example: dmgd select --method herding --ipc 10 --out runs/herding-ipc10
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Selection rule. `herding` and `kcenter` work, class by class, in the penultimate-layer
    /// embedding (the input of the final linear layer) of a ConvNet-3 trained on the whole real
    /// training split with the `dc` protocol for --embedding-epochs epochs (default 5), cached
    /// under --cache-dir; or of the classifier given by --embedding. The manifest records which.
    #[arg(long, value_enum, default_value = "random")]
    pub method: MethodArg,
    /// Images per class.
    #[arg(long)]
    pub ipc: usize,
    /// Seed of the random draw (`random` only; herding and k-center are deterministic given
    /// the embedding).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (ImageFolder + manifest.json + grid.png). Default:
    /// runs/select-<method>-ipc<N>-seed<S> for Fashion-MNIST, with the data's hash appended
    /// for other data.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing output directory.
    #[arg(long)]
    pub overwrite: bool,
    /// herding/kcenter: weights of a trained classifier (safetensors, as `Classifier::save`
    /// writes them, instance norm, `dc` input normalisation) to take the embedding from,
    /// instead of training one.
    #[arg(long)]
    pub embedding: Option<PathBuf>,
    /// herding/kcenter: the embedding network (convnet3, convnetD, resnetap10, resnet18).
    #[arg(long, default_value = "convnet3")]
    pub embedding_net: String,
    /// herding/kcenter: `dc`-protocol epochs of the embedding network on the real training set.
    #[arg(long, default_value_t = EMBEDDING_EPOCHS)]
    pub embedding_epochs: usize,
    /// herding/kcenter: seed of the embedding network's initialisation and batch order.
    #[arg(long, default_value_t = 0)]
    pub embedding_seed: u64,
    /// Cache of trained embedding networks (default: $XDG_CACHE_HOME/dmgd, else ~/.cache/dmgd).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum MethodArg {
    Random,
    Herding,
    Kcenter,
}

impl From<MethodArg> for CoresetMethod {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Random => CoresetMethod::Random,
            MethodArg::Herding => CoresetMethod::Herding,
            MethodArg::Kcenter => CoresetMethod::Kcenter,
        }
    }
}

#[derive(serde::Serialize)]
struct SelectManifest {
    method: CoresetMethod,
    ipc: usize,
    seed: u64,
    source: String,
    dataset_fingerprint: String,
    /// The feature space of herding / k-center; absent for `random`.
    embedding: Option<EmbeddingRecord>,
    /// Indices into the source set, per class in class order (selection order within a class).
    source_indices: Vec<Vec<usize>>,
}

/// Which network gave the embedding, and how it was obtained.
#[derive(serde::Serialize)]
struct EmbeddingRecord {
    /// `trained` (by this command, now), `cached` (trained earlier by this command) or `file`
    /// (--embedding).
    origin: &'static str,
    weights: PathBuf,
    weights_sha256: String,
    net: String,
    norm: NormKind,
    /// Always the penultimate layer: the input of the final linear classifier.
    layer: &'static str,
    feature_dim: usize,
    /// How the network was trained, when this command trained it (now or earlier).
    training: Option<EmbeddingTraining>,
}

/// The sidecar `<key>.json` of a cached embedding network.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct EmbeddingTraining {
    config: TrainConfig,
    dataset_fingerprint: String,
    train_images: usize,
    /// What the accuracy below was measured on.
    checked_on: String,
    checked_images: usize,
    accuracy: f64,
    seconds: f64,
}

pub fn run(args: Args) -> Result<()> {
    if args.ipc == 0 {
        bail!("--ipc must be at least 1");
    }
    let method = CoresetMethod::from(args.method);
    let arch: Arch = args.embedding_net.parse()?;
    if args.embedding_epochs == 0 {
        bail!("--embedding-epochs must be at least 1");
    }
    let source = DataSource::resolve(&args.data.data, &args.data, Split::Train, None)?;
    let real = source.load()?;
    let out = args.out.clone().unwrap_or_else(|| {
        let mut name = format!(
            "select-{}-ipc{}-seed{}",
            method_name(method),
            args.ipc,
            args.seed
        );
        if !args.data.is_default() {
            name = format!("{name}-{}", dmgd_run::spec_hash(&real.fingerprint()));
        }
        PathBuf::from("runs").join(name)
    });
    // Refuse an existing output before any expensive work; StagedDir checks again at the end.
    if out.exists() && !args.overwrite {
        return Err(DataError::OutputExists { path: out }.into());
    }
    coreset::check_class_sizes(&real, args.ipc)?;

    let (classifier, embedding) = if method.needs_features() {
        let (classifier, record) = embedding_network(&args, arch, &real)?;
        (Some(classifier), Some(record))
    } else {
        (None, None)
    };
    let picks = select_with(&real, method, args.ipc, args.seed, classifier.as_ref())?;
    let subset = real.subset(&picks.concat());

    let staged = dmgd_data::atomic::StagedDir::new(&out, args.overwrite)?;
    image_folder::write_into(&subset, staged.path())?;
    dmgd_data::grid::write_class_grid(&subset, args.ipc.min(10), &staged.path().join("grid.png"))?;
    Manifest::new(SelectManifest {
        method,
        ipc: args.ipc,
        seed: args.seed,
        source: source.describe(),
        dataset_fingerprint: real.fingerprint(),
        embedding,
        source_indices: picks,
    })
    .write(staged.path())?;
    let out = staged.commit()?;
    println!(
        "wrote {} images ({} per class, {:?}) to {}",
        subset.len(),
        args.ipc,
        method,
        out.display()
    );
    Ok(())
}

/// Indices into `real` of the chosen images, per class in class order. Herding and k-center
/// work in `classifier`'s penultimate embedding; `seed` only drives `random`.
pub fn select_with(
    real: &ImageSet,
    method: CoresetMethod,
    ipc: usize,
    seed: u64,
    classifier: Option<&Classifier>,
) -> Result<Vec<Vec<usize>>> {
    coreset::check_class_sizes(real, ipc)?;
    match (method, classifier) {
        (CoresetMethod::Random, _) => Ok(coreset::random_per_class(real, ipc, seed)?),
        (_, Some(classifier)) => select_by_features(real, classifier, method, ipc),
        (_, None) => bail!("--method {method:?} needs an embedding network"),
    }
}

/// Herding or k-center within each class, in the classifier's penultimate embedding.
fn select_by_features(
    real: &ImageSet,
    classifier: &Classifier,
    method: CoresetMethod,
    ipc: usize,
) -> Result<Vec<Vec<usize>>> {
    let started = Instant::now();
    let mut picks = Vec::with_capacity(real.num_classes());
    // Class by class: the whole set's features (60,000 x 2048 f32 for Fashion-MNIST) would
    // take half a gigabyte at once.
    for (c, members) in real.indices_by_class().iter().enumerate() {
        let features = classifier
            .features(&real.subset(members))
            .with_context(|| format!("embedding class `{}`", real.class_names[c]))?; // (N_c, D)
        let dim = features.dim(1)?;
        let features = features.flatten_all()?.to_vec1::<f32>()?;
        let positions = match method {
            CoresetMethod::Herding => coreset::herding(&features, dim, ipc),
            CoresetMethod::Kcenter => coreset::kcenter(&features, dim, ipc),
            CoresetMethod::Random => unreachable!("random selection needs no features"),
        };
        picks.push(positions.into_iter().map(|p| members[p]).collect());
    }
    eprintln!(
        "{method:?} over {} images in {:.1} s",
        real.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(picks)
}

/// The classifier whose embedding herding / k-center use: --embedding, else a cached network
/// trained earlier on the same data with the same settings, else one trained now (and cached).
fn embedding_network(
    args: &Args,
    arch: Arch,
    real: &ImageSet,
) -> Result<(Classifier, EmbeddingRecord)> {
    let norm = NormKind::Instance;
    let spec = NetSpec {
        arch,
        norm,
        input: real.shape,
        num_classes: real.num_classes(),
    };
    let record = |origin, weights: &Path, feature_dim, training| -> Result<EmbeddingRecord> {
        Ok(EmbeddingRecord {
            origin,
            weights: weights.to_path_buf(),
            weights_sha256: sha256_file(weights)?,
            net: arch.to_string(),
            norm,
            layer: "penultimate",
            feature_dim,
            training,
        })
    };
    if let Some(path) = &args.embedding {
        let classifier = Classifier::load(spec, Protocol::Dc, path).with_context(|| {
            format!(
                "loading the --embedding classifier {} as {arch}",
                path.display()
            )
        })?;
        let dim = classifier.net().feature_dim();
        let rec = record("file", path, dim, None)?;
        return Ok((classifier, rec));
    }

    let fingerprint = real.fingerprint();
    let cache = match &args.cache_dir {
        Some(dir) => dir.clone(),
        None => default_cache_dir()?,
    }
    .join("embeddings");
    let key = format!(
        "{}-{arch}-{}-dc-e{}-s{}",
        &fingerprint[..16],
        norm_name(norm),
        args.embedding_epochs,
        args.embedding_seed
    );
    let weights = cache.join(format!("{key}.safetensors"));
    let sidecar = cache.join(format!("{key}.json"));
    if let Some(training) = read_cached(&weights, &sidecar, &fingerprint) {
        match Classifier::load(spec, Protocol::Dc, &weights) {
            Ok(classifier) => {
                eprintln!("embedding network from the cache: {}", weights.display());
                let dim = classifier.net().feature_dim();
                let rec = record("cached", &weights, dim, Some(training))?;
                return Ok((classifier, rec));
            }
            Err(err) => eprintln!(
                "ignoring unreadable cache entry {}: {err}",
                weights.display()
            ),
        }
    }

    // An unwritable cache should fail now, not after the training.
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("creating cache {}", cache.display()))?;

    // Train on the whole real training split; check on the real test split when there is one.
    let (check, checked_on) = if args.data.data == FASHION_MNIST {
        let source = DataSource::resolve(FASHION_MNIST, &args.data, Split::Test, None)?;
        (source.load()?, "the Fashion-MNIST test split".to_string())
    } else {
        let step = real.len().div_ceil(FOLDER_CHECK_IMAGES).max(1);
        let picked: Vec<usize> = (0..real.len()).step_by(step).collect();
        let n = picked.len();
        (
            real.subset(&picked),
            format!("{n} of its own training images (no test split)"),
        )
    };
    let mut config = TrainConfig::dc(arch, args.embedding_epochs, args.embedding_seed);
    config.test_every = config.epochs; // one check, at the end
    eprintln!(
        "training the {arch} embedding network on {} images, {} epochs of the dc protocol (cached as {})",
        real.len(),
        config.epochs,
        weights.display()
    );
    let started = Instant::now();
    let trained = dmgd_student::train_and_test(real, &check, &config, &mut |p| {
        eprintln!(
            "  epoch {}/{}: loss {:.4}, {:.0} s",
            p.epoch, p.epochs, p.train_loss, p.seconds
        )
    })
    .context("training the embedding network")?;
    let training = EmbeddingTraining {
        config,
        dataset_fingerprint: fingerprint,
        train_images: real.len(),
        checked_on,
        checked_images: check.len(),
        accuracy: trained.report.final_accuracy,
        seconds: started.elapsed().as_secs_f64(),
    };
    eprintln!(
        "embedding network: {:.2}% on {} after {:.0} s",
        training.accuracy, training.checked_on, training.seconds
    );

    // Cache: weights first, sidecar last, each renamed into place; the sidecar marks a
    // complete entry.
    trained.classifier.save(&weights)?;
    dmgd_data::atomic::write_file(&sidecar, &serde_json::to_vec_pretty(&training)?)?;

    let dim = trained.classifier.net().feature_dim();
    let rec = record("trained", &weights, dim, Some(training))?;
    Ok((trained.classifier, rec))
}

/// A complete cache entry for this dataset, if there is one.
fn read_cached(weights: &Path, sidecar: &Path, fingerprint: &str) -> Option<EmbeddingTraining> {
    let training: EmbeddingTraining = serde_json::from_slice(&std::fs::read(sidecar).ok()?).ok()?;
    (weights.is_file() && training.dataset_fingerprint == fingerprint).then_some(training)
}

fn method_name(method: CoresetMethod) -> String {
    serde_json::to_value(method)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn default_cache_dir() -> Result<PathBuf> {
    dmgd_run::cache_dir()
        .ok_or_else(|| anyhow::anyhow!("neither XDG_CACHE_HOME nor HOME is set; pass --cache-dir"))
}

fn norm_name(norm: NormKind) -> &'static str {
    match norm {
        NormKind::Instance => "instance",
        NormKind::Batch => "batch",
    }
}
