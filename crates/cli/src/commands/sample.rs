//! `dmgd sample`: plain class-conditional CFG sampling from a DiT, no real data needed. It is
//! `distill --method dit` through the same loop (same seeds, same images), for models whose
//! training data are not at hand and for class subsets (`--labels`).

use crate::model_args::ModelArgs;
use crate::output_args::OutputArgs;
use anyhow::Result;
use dmgd_diffusion::autoencoder::EncodeMode;
use dmgd_distill::config::SamplingConfig;
use dmgd_distill::pipeline::Job;
use dmgd_distill::run_dir::IMAGES_DIR;
use dmgd_distill::shard::Shard;
use dmgd_distill::support_cache::SupportCache;
use dmgd_run::flags::Knobs;

/// Plain class-conditional sampling from a DiT (the `dit` baseline), no real data needed.
///
/// The same sampling loop, seeds and output layout as `dmgd distill --method dit`: image i of
/// class c comes from (seed, c, i), so `sample` and `distill --method dit` with the same
/// settings give the same images. Writes `<out>/images/<class>/<index>.png`, `manifest.json`
/// and `grid.png`. Default: the shipped Fashion-MNIST model.
///
/// Example:
///   dmgd sample --ipc 100 --labels 0,1,2
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Class names in label order: fashion-mnist, imagenette, imagewoof, imagenet1k or a file;
    /// default: fashion-mnist for 10-class 1-channel models, else class-<k>.
    #[arg(long)]
    class_names: Option<String>,
    /// Only these labels (comma-separated); default every class.
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<usize>>,
    #[command(flatten)]
    knobs: Knobs<SamplingConfig>,
}

pub fn run(args: Args) -> Result<()> {
    let config = args.knobs.resolve(None)?.0;
    let models = args.model.load(EncodeMode::Mean)?;
    let labels = args.labels.as_deref();
    let class_names = models.sampling_classes(args.class_names.as_deref(), labels)?;
    let spec = models.spec_for_sampling(config, &class_names, labels);
    let out = args.output.dir(|| spec.default_sample_out());
    let cache = SupportCache {
        dir: None,
        seed: spec.config.seed,
    };
    let job = Job {
        real: None,
        class_names: &class_names,
        only_classes: args.labels.as_deref(),
        dit: &models.dit,
        codec: &models.codec,
        spec: &spec,
        cfg: spec.config.cfg(),
        shard: Shard::WHOLE,
        cache: &cache,
        out: &out,
        existing: args.output.existing(),
    };

    let outcome = crate::progress::run_pipeline(&job, "sample")?;
    let (n, seconds) = (outcome.images.len(), outcome.seconds);
    println!(
        "{n} images in {seconds:.1} s -> {}",
        out.join(IMAGES_DIR).display()
    );
    Ok(())
}
