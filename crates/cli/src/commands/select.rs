//! `dmgd select`: flags -> a `SelectSpec` -> `dmgd_eval::select` -> an ImageFolder.

use crate::dataset::DataArgs;
use anyhow::Result;
use dmgd_data::fashion_mnist::Split;
use dmgd_data::{DataError, DataSource, FASHION_MNIST};
use dmgd_eval::select::{self, SelectChoices, SelectSpec};
use dmgd_eval::{EvalError, NetworkRole, SetRecord};
use dmgd_run::flags::Knobs;
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
    /// Cache of trained embedding networks (default: $XDG_CACHE_HOME/dmgd, else ~/.cache/dmgd).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub choices: Knobs<SelectChoices>,
}

pub fn run(args: Args) -> Result<()> {
    let c = args.choices.resolve(None)?;
    c.device.open()?; // before any data is read
    let options = args.data.options();
    let source = DataSource::resolve(&args.data.data, &options, Split::Train, None)?;
    let real = source.load()?;
    let spec = SelectSpec {
        method: c.method,
        ipc: c.ipc,
        seed: c.seed,
        data: SetRecord::of(&source, &real),
    };
    let out = args.out.clone();
    let out = out.unwrap_or_else(|| spec.default_out(args.data.is_default()));
    // Refuse an existing output before any expensive work; `select::write` checks again.
    if out.exists() && !args.overwrite {
        let e = DataError::OutputExists { path: out };
        return Err(
            anyhow::Error::new(e).context("pass --overwrite to replace it, or another --out")
        );
    }
    // The test split only matters when a network is trained here (it reports its accuracy).
    let check = if args.data.data == FASHION_MNIST && args.embedding.is_none() {
        let test = DataSource::resolve(FASHION_MNIST, &options, Split::Test, None)?.load()?;
        Some((test, "the Fashion-MNIST test split".to_string()))
    } else {
        None
    };
    let job = select::SelectJob {
        real: &real,
        spec: &spec,
        choices: &c,
        embedding: args.embedding.as_deref(),
        cache: args.cache_dir.clone(),
        check: check.as_ref().map(|(set, name)| (set, name.clone())),
        out: &out,
        overwrite: args.overwrite,
    };
    let out = select::run(&job, &mut |line| eprintln!("{line}")).map_err(|e| match e {
        EvalError::NoCacheDir => anyhow::Error::new(e).context("pass --cache-dir"),
        EvalError::Network {
            role: NetworkRole::Embedding,
            ..
        } if args.embedding.is_some() => anyhow::Error::new(e)
            .context("--embedding: expected a classifier as `dmgd eval --save-nets` writes it"),
        e => e.into(),
    })?;
    println!(
        "wrote {} images ({} per class, {:?}) to {}",
        c.ipc * real.num_classes(),
        c.ipc,
        c.method,
        out.display()
    );
    println!("picture: {}", out.join("grid.png").display());
    Ok(())
}
