//! `dmgd select`: real images per class (random, herding or k-center) into an ImageFolder.

use crate::dataset::{DataArgs, DataSource};
use crate::manifest::Manifest;
use anyhow::{bail, Result};
use dmgd_data::fashion_mnist::Split;
use dmgd_data::{image_folder, ImageSet};
use dmgd_distill::coreset::{self, CoresetMethod};
use std::path::PathBuf;

/// Pick IPC real images per class and write them as an ImageFolder with a manifest.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Selection rule. `herding` and `kcenter` work in the penultimate features of a ConvNet
    /// trained on the real training data.
    #[arg(long, value_enum, default_value = "random")]
    pub method: MethodArg,
    /// Images per class.
    #[arg(long)]
    pub ipc: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (ImageFolder + manifest.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    pub overwrite: bool,
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
    /// Indices into the source set, per class in class order.
    source_indices: Vec<Vec<usize>>,
}

pub fn run(args: Args) -> Result<()> {
    if args.ipc == 0 {
        bail!("--ipc must be at least 1");
    }
    let method = CoresetMethod::from(args.method);
    let source = DataSource::resolve(&args.data.data, &args.data, Split::Train, None)?;
    let real = source.load()?;
    let picks = select(&real, method, args.ipc, args.seed)?;
    let subset = real.subset(&picks.concat());

    let staged = dmgd_data::atomic::StagedDir::new(&args.out, args.overwrite)?;
    image_folder::write_into(&subset, staged.path())?;
    Manifest::new(SelectManifest {
        method,
        ipc: args.ipc,
        seed: args.seed,
        source: source.describe(),
        dataset_fingerprint: real.fingerprint(),
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

/// Indices into `real` of the chosen images, per class.
pub fn select(
    real: &ImageSet,
    method: CoresetMethod,
    ipc: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    let by_class = real.indices_by_class();
    for (class, members) in real.class_names.iter().zip(&by_class) {
        if members.len() < ipc {
            return Err(dmgd_data::DataError::NotEnoughImages {
                class: class.clone(),
                available: members.len(),
                requested: ipc,
            }
            .into());
        }
    }
    match method {
        CoresetMethod::Random => Ok(by_class
            .iter()
            .enumerate()
            .map(|(c, members)| {
                coreset::random_positions(members.len(), ipc, coreset::class_seed(seed, c))
                    .into_iter()
                    .map(|p| members[p])
                    .collect()
            })
            .collect()),
        CoresetMethod::Herding | CoresetMethod::Kcenter => {
            bail!("--method {method:?} needs the student embedding, which is not wired yet")
        }
    }
}
