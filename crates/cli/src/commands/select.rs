//! `dmgd select`: flags -> a `SelectSpec` -> `dmgd_eval::select` -> an ImageFolder.

use crate::dataset::DataArgs;
use anyhow::{Context, Result};
use dmgd_data::fashion_mnist::Split;
use dmgd_data::{DataError, DataSource, FASHION_MNIST};
use dmgd_distill::coreset::CoresetMethod;
use dmgd_eval::select::{self, EmbeddingChoice, SelectSpec, EMBEDDING_EPOCHS};
use dmgd_eval::SetRecord;
use dmgd_student::Arch;
use std::path::PathBuf;

/// Pick IPC real images per class and write them as an ImageFolder with a manifest.
///
/// `herding` and `kcenter` work in the penultimate-layer embedding (the flattened output of
/// the last conv block, 2048-d for ConvNet-3 on 28x28) of a network trained on the whole real
/// training set with the `dc` protocol (SGD 0.01, batch 256, no augmentation) for
/// --embedding-epochs epochs, seed --embedding-seed. The trained network is cached under
/// --cache-dir, keyed by dataset fingerprint, net, epochs and seed, so later selections skip
/// the training; --embedding uses a saved classifier instead. The manifest records which.
///
/// Example: dmgd select --method herding --ipc 10
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Selection rule: random, herding or kcenter.
    #[arg(long, default_value = "random", value_parser = crate::settings::named::<CoresetMethod>)]
    pub method: CoresetMethod,
    /// Images per class.
    #[arg(long, value_parser = crate::settings::positive)]
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
    /// herding/kcenter: weights of a trained classifier (as `dmgd eval --save-nets` writes
    /// them: instance norm, `dc` input normalisation) to take the embedding from.
    #[arg(long)]
    pub embedding: Option<PathBuf>,
    /// herding/kcenter: the embedding network (convnet3, convnetD, resnetap10, resnet18).
    #[arg(long, default_value = "convnet3")]
    pub embedding_net: Arch,
    /// herding/kcenter: `dc`-protocol epochs of the embedding network on the real training set.
    #[arg(long, default_value_t = EMBEDDING_EPOCHS, value_parser = crate::settings::positive)]
    pub embedding_epochs: usize,
    /// herding/kcenter: seed of the embedding network's initialisation and batch order.
    #[arg(long, default_value_t = 0)]
    pub embedding_seed: u64,
    /// Cache of trained embedding networks (default: $XDG_CACHE_HOME/dmgd, else ~/.cache/dmgd).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// cpu, or cuda:N with a dmgd built with `--features cuda`: where the embedding network
    /// trains and runs.
    #[arg(long, default_value = "cpu")]
    pub device: dmgd_kernels::DeviceName,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: Args) -> Result<()> {
    args.device.open()?; // before any data is read
    let options = args.data.options();
    let source = DataSource::resolve(&args.data.data, &options, Split::Train, None)?;
    let real = source.load()?;
    let spec = SelectSpec {
        method: args.method,
        ipc: args.ipc,
        seed: args.seed,
        data: SetRecord::of(&source, &real),
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let method = dmgd_eval::evaluate::serde_name(&args.method);
        let mut name = format!("select-{method}-ipc{}-seed{}", args.ipc, args.seed);
        if !args.data.is_default() {
            name = format!("{name}-{}", dmgd_run::spec_hash(&spec.data.fingerprint));
        }
        PathBuf::from("runs").join(name)
    });
    // Refuse an existing output before any expensive work; `select::write` checks again.
    if out.exists() && !args.overwrite {
        let e = DataError::OutputExists { path: out };
        return Err(
            anyhow::Error::new(e).context("pass --overwrite to replace it, or another --out")
        );
    }
    dmgd_distill::coreset::check_class_sizes(&real, args.ipc)?;

    let log = &mut |line: &str| eprintln!("{line}");
    let (classifier, embedding) = if !args.method.needs_features() {
        (None, None)
    } else {
        // The test split only matters when a network is trained here (it reports its accuracy).
        let check = if args.data.data == FASHION_MNIST && args.embedding.is_none() {
            let test = DataSource::resolve(FASHION_MNIST, &options, Split::Test, None)?.load()?;
            Some((test, "the Fashion-MNIST test split".to_string()))
        } else {
            None
        };
        let choice = match &args.embedding {
            Some(path) => EmbeddingChoice::File(path),
            None => EmbeddingChoice::Train {
                epochs: args.embedding_epochs,
                seed: args.embedding_seed,
                cache: match &args.cache_dir {
                    Some(dir) => dir.clone(),
                    None => dmgd_run::cache_dir()
                        .context("neither XDG_CACHE_HOME nor HOME is set; pass --cache-dir")?,
                },
                check: check.as_ref().map(|(set, name)| (set, name.clone())),
            },
        };
        let (classifier, record) =
            select::embedding_network(args.embedding_net, &real, &choice, args.device, log)
                .with_context(|| match &args.embedding {
                    Some(path) => format!(
                        "loading --embedding {} as {}",
                        path.display(),
                        args.embedding_net
                    ),
                    None => "the embedding network".into(),
                })?;
        (Some(classifier), Some(record))
    };
    let picks = select::select(&real, &spec, classifier.as_ref(), log)?;
    let out = select::write(
        &real,
        &spec,
        embedding.as_ref(),
        picks,
        &out,
        args.overwrite,
    )?;
    println!(
        "wrote {} images ({} per class, {:?}) to {}",
        args.ipc * real.num_classes(),
        args.ipc,
        args.method,
        out.display()
    );
    println!("picture: {}", out.join("grid.png").display());
    Ok(())
}
