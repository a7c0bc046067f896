//! The distillation pipeline end to end on a tiny random-weight DiT in pixel space: the same
//! seed gives the same bytes, a resumed run equals an uninterrupted one, shards together equal
//! the whole run, and failures name what failed.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use dmgd_data::image_folder::{self, LazyFolder, ReadOptions};
use dmgd_data::{ClassSource, ImageSet, ImageShape};
use dmgd_diffusion::autoencoder::{Autoencoder, EncodeMode, SdVae, VaeConfig};
use dmgd_diffusion::dit::{Cfg, CfgChannels, Dit, DitConfig};
use dmgd_distill::codec::Codec;
use dmgd_distill::config::{DistillConfig, Method};
use dmgd_distill::pipeline::{self, Existing, Job, PipelineError};
use dmgd_distill::shard::Shard;
use dmgd_distill::spec::{DataRecord, DistillSpec, ModelRecord};
use dmgd_distill::support_cache::SupportCache;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const CLASSES: usize = 4;

fn tiny_config() -> DitConfig {
    tiny_config_with(1)
}

fn tiny_config_with(in_channels: usize) -> DitConfig {
    DitConfig {
        preset: "custom".into(),
        input_size: 8,
        patch_size: 2,
        in_channels,
        hidden_size: 32,
        depth: 2,
        num_heads: 2,
        mlp_ratio: 2.0,
        num_classes: CLASSES,
        learn_sigma: true,
    }
}

/// A DiT with random weights (the DiT init zeroes the adaLN and output layers, which would make
/// every prediction zero); `poison` sets one output bias to NaN.
fn tiny_dit(poison: bool) -> Dit {
    tiny_dit_with(tiny_config(), poison)
}

fn tiny_dit_with(cfg: DitConfig, poison: bool) -> Dit {
    let varmap = VarMap::new();
    let zero = Dit::init(
        &cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let tensors: HashMap<String, Tensor> = zero
        .state_dict()
        .unwrap()
        .into_iter()
        .map(|(name, t)| {
            if name == "pos_embed" {
                return (name, t);
            }
            let n = t.elem_count();
            let mut v: Vec<f32> = (0..n).map(|_| rng.gen_range(-0.2f32..0.2)).collect();
            if poison && name == "final_layer.linear.bias" {
                v[0] = f32::NAN;
            }
            (name, Tensor::from_vec(v, t.shape(), &Device::Cpu).unwrap())
        })
        .collect();
    Dit::load(
        &cfg,
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
    )
    .unwrap()
}

fn real_set() -> ImageSet {
    real_set_of(ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    })
}

fn real_set_of(shape: ImageShape) -> ImageSet {
    let per_class = 12;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for c in 0..CLASSES {
        for _ in 0..per_class {
            // Each class is brighter in its own quarter of the image.
            let n = shape.numel();
            for p in 0..n {
                let bright = (p * 4 / n) == c;
                pixels.push(if bright {
                    rng.gen_range(150..255)
                } else {
                    rng.gen_range(0..100)
                });
            }
            labels.push(c);
        }
    }
    ImageSet {
        shape,
        pixels,
        labels,
        class_names: (0..CLASSES).map(|c| format!("class{c}")).collect(),
    }
}

fn config(method: Method) -> DistillConfig {
    DistillConfig {
        method,
        ipc: 3,
        steps: 10,
        class_batch: 2,
        support_points: 3,
        ..DistillConfig::default()
    }
}

fn run(
    dit: &Dit,
    config: &DistillConfig,
    out: &Path,
    shard: Shard,
    existing: Existing,
) -> Result<pipeline::Outcome, PipelineError> {
    run_with(
        dit,
        &Codec::pixel(),
        &real_set(),
        config,
        out,
        shard,
        existing,
    )
}

fn run_with(
    dit: &Dit,
    codec: &Codec,
    real: &dyn ClassSource,
    config: &DistillConfig,
    out: &Path,
    shard: Shard,
    existing: Existing,
) -> Result<pipeline::Outcome, PipelineError> {
    let spec = spec_of(config, real, shard);
    let cache = SupportCache {
        dir: None,
        seed: config.seed,
    };
    let job = Job {
        real: Some(real),
        class_names: real.class_names(),
        only_classes: None,
        dit,
        codec,
        spec: &spec,
        cfg: Cfg {
            scale: config.cfg_scale,
            channels: CfgChannels::FirstThree,
        },
        shard,
        cache: &cache,
        out,
        existing,
    };
    pipeline::run(&job, &mut |_| {})
}

fn spec_of(config: &DistillConfig, real: &dyn ClassSource, shard: Shard) -> DistillSpec {
    DistillSpec {
        config: config.clone(),
        dit: Some(ModelRecord {
            path: "tiny".into(),
            sha256: "0".into(),
            entry: None,
        }),
        vae: None,
        encode: "pixels".into(),
        data: DataRecord {
            description: "test set".into(),
            fingerprint: real.fingerprint(),
        },
        model_labels: (0..CLASSES).collect(),
        shards: shard.count,
        device: Default::default(),
        precision: Default::default(),
    }
}

/// Every image and latent under `dir`, relative path -> bytes (manifests hold timings).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    all_files(dir)
        .into_iter()
        .filter(|(rel, _)| rel.starts_with("images/") || rel.starts_with("latents/"))
        .collect()
}

/// Every file under `dir`, relative path -> bytes.
fn all_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_seed_same_bytes_and_methods_differ() {
    let dit = tiny_dit(false);
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, plain) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("dit"),
    );
    let outcome = run(
        &dit,
        &config(Method::Dmgd),
        &a,
        Shard::WHOLE,
        Existing::Refuse,
    )
    .unwrap();
    assert_eq!(outcome.images.len(), CLASSES * 3);
    run(
        &dit,
        &config(Method::Dmgd),
        &b,
        Shard::WHOLE,
        Existing::Refuse,
    )
    .unwrap();
    let files_a = files(&a);
    assert_eq!(
        files_a.len(),
        2 * CLASSES * 3,
        "one PNG and one latent per image"
    );
    assert!(files_a.contains_key("images/class3/00002.png"));
    assert_eq!(files_a, files(&b));
    // Guidance changes the images: DMGD differs from plain DiT sampling with the same noise.
    run(
        &dit,
        &config(Method::Dit),
        &plain,
        Shard::WHOLE,
        Existing::Refuse,
    )
    .unwrap();
    assert_ne!(
        files_a["images/class0/00001.png"],
        files(&plain)["images/class0/00001.png"]
    );
}

#[test]
fn resumed_run_equals_an_uninterrupted_one() {
    let dit = tiny_dit(false);
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    run(
        &dit,
        &config(Method::Dmgd),
        &whole,
        Shard::WHOLE,
        Existing::Refuse,
    )
    .unwrap();
    let expected = files(&whole);

    // A run killed in group 0 while writing image 2 (class0's latent written, its PNG not;
    // nothing of class1's image 2), before group 1 started: remove exactly those files.
    let killed = tmp.path().join("killed");
    run(
        &dit,
        &config(Method::Dmgd),
        &killed,
        Shard::WHOLE,
        Existing::Refuse,
    )
    .unwrap();
    for rel in [
        "images/class0/00002.png",
        "images/class1/00002.png",
        "latents/class1/00002.safetensors",
    ] {
        std::fs::remove_file(killed.join(rel)).unwrap();
    }
    for class in ["class2", "class3"] {
        std::fs::remove_dir_all(killed.join("images").join(class)).unwrap();
        std::fs::remove_dir_all(killed.join("latents").join(class)).unwrap();
    }
    let err = run(
        &dit,
        &config(Method::Dmgd),
        &killed,
        Shard::WHOLE,
        Existing::Refuse,
    )
    .unwrap_err();
    assert!(matches!(err, PipelineError::OutputExists { .. }), "{err}");
    let outcome = run(
        &dit,
        &config(Method::Dmgd),
        &killed,
        Shard::WHOLE,
        Existing::Resume,
    )
    .unwrap();
    assert_eq!(
        outcome.resumed_images, 4,
        "group 0 had images 0 and 1 of both classes complete"
    );
    assert_eq!(files(&killed), expected);
}

#[test]
fn shards_together_equal_the_whole_run() {
    let dit = tiny_dit(false);
    let tmp = tempfile::tempdir().unwrap();
    let (whole, sharded) = (tmp.path().join("whole"), tmp.path().join("sharded"));
    run(
        &dit,
        &config(Method::Dmgd),
        &whole,
        Shard::WHOLE,
        Existing::Refuse,
    )
    .unwrap();
    let first = run(
        &dit,
        &config(Method::Dmgd),
        &sharded,
        Shard { index: 0, count: 2 },
        Existing::Refuse,
    )
    .unwrap();
    let second = run(
        &dit,
        &config(Method::Dmgd),
        &sharded,
        Shard { index: 1, count: 2 },
        Existing::Refuse,
    )
    .unwrap();
    assert_eq!(first.classes, vec!["class0", "class1"]);
    assert_eq!(second.classes, vec!["class2", "class3"]);
    assert_eq!(files(&sharded), files(&whole));
}

#[test]
fn a_folder_read_class_by_class_gives_the_same_run_and_a_shard_reads_only_its_classes() {
    let dit = tiny_dit(false);
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("real");
    image_folder::write(&real_set(), &folder, false).unwrap();
    let lazy = LazyFolder::open(&folder, &ReadOptions::default()).unwrap();
    assert_eq!(lazy.shape(), real_set().shape);
    for c in 0..CLASSES {
        let expected = real_set().class_images(c).unwrap();
        assert_eq!(lazy.class_images(c).unwrap().pixels, expected.pixels);
    }
    let (in_memory, from_folder) = (tmp.path().join("memory"), tmp.path().join("folder"));
    let cfg = config(Method::Dmgd);
    let codec = Codec::pixel();
    run(&dit, &cfg, &in_memory, Shard::WHOLE, Existing::Refuse).unwrap();
    run_with(
        &dit,
        &codec,
        &lazy,
        &cfg,
        &from_folder,
        Shard::WHOLE,
        Existing::Refuse,
    )
    .unwrap();
    assert_eq!(files(&from_folder), files(&in_memory));

    // A corrupt image in class3 (shard 1 of 2): shard 0 never reads it, the whole run fails
    // naming it.
    std::fs::write(folder.join("class3").join("00000.png"), b"not a png").unwrap();
    let lazy = LazyFolder::open(&folder, &ReadOptions::default()).unwrap();
    let shard0 = tmp.path().join("shard0");
    let half = Shard { index: 0, count: 2 };
    run_with(&dit, &codec, &lazy, &cfg, &shard0, half, Existing::Refuse).unwrap();
    // The whole run finds it before writing anything.
    let whole = tmp.path().join("whole");
    let err = run_with(
        &dit,
        &codec,
        &lazy,
        &cfg,
        &whole,
        Shard::WHOLE,
        Existing::Refuse,
    )
    .unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        chain.contains("class3") && chain.contains("00000.png"),
        "{chain}"
    );
    assert!(
        !whole.exists(),
        "output written before the inputs were checked"
    );
}

#[test]
fn a_resume_or_a_shard_with_other_settings_is_refused_naming_the_keys() {
    let dit = tiny_dit(false);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cfg = config(Method::Dmgd);
    run(&dit, &cfg, &out, Shard::WHOLE, Existing::Refuse).unwrap();
    // Killed after its first images: the manifest written before them says what the run is.
    std::fs::remove_dir_all(out.join("images").join("class3")).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["spec"]["config"]["seed"], 0);
    let before = all_files(&out);
    let other = DistillConfig {
        method: Method::Mgd3,
        seed: 5,
        cfg_scale: 2.0,
        ..cfg.clone()
    };
    let err = run(&dit, &other, &out, Shard::WHOLE, Existing::Resume)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.cfg-scale, config.method, config.seed"),
        "{err}"
    );
    assert_eq!(
        all_files(&out),
        before,
        "a refused resume changed the folder"
    );
    // Every key counts: one changed knob is refused too.
    let one = DistillConfig {
        rho: 0.25,
        ..cfg.clone()
    };
    let err = run(&dit, &one, &out, Shard::WHOLE, Existing::Resume).unwrap_err();
    assert!(err.to_string().contains("config.rho"), "{err}");
    // The same settings finish it.
    run(&dit, &cfg, &out, Shard::WHOLE, Existing::Resume).unwrap();

    // A second shard with other settings may not write next to the first.
    let sharded = tmp.path().join("sharded");
    let half = |index| Shard { index, count: 2 };
    run(&dit, &cfg, &sharded, half(0), Existing::Refuse).unwrap();
    let err = run(&dit, &other, &sharded, half(1), Existing::Refuse)
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.seed"), "{err}");
    assert!(!sharded.join("images").join("class2").exists());
}

#[test]
fn too_few_images_for_the_support_names_the_key_and_the_class() {
    let dit = tiny_dit(false);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = DistillConfig {
        support_points: 50,
        ..config(Method::Dmgd)
    };
    let out = tmp.path().join("run");
    let err = run(&dit, &cfg, &out, Shard::WHOLE, Existing::Refuse)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("support-points") && err.contains("class0"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn plain_sampling_needs_no_real_images_and_gives_the_dit_images() {
    let dit = tiny_dit(false);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(Method::Dit);
    let with_data = tmp.path().join("with-data");
    run(&dit, &cfg, &with_data, Shard::WHOLE, Existing::Refuse).unwrap();
    let real = real_set();
    let spec = spec_of(&cfg, &real, Shard::WHOLE);
    let cache = SupportCache { dir: None, seed: 0 };
    let without = tmp.path().join("without");
    let job = Job {
        real: None,
        class_names: &real.class_names,
        only_classes: Some(&[1, 2]),
        dit: &dit,
        codec: &Codec::pixel(),
        spec: &spec,
        cfg: Cfg {
            scale: cfg.cfg_scale,
            channels: CfgChannels::FirstThree,
        },
        shard: Shard::WHOLE,
        cache: &cache,
        out: &without,
        existing: Existing::Refuse,
    };
    let outcome = pipeline::run(&job, &mut |_| {}).unwrap();
    assert_eq!(outcome.classes, ["class1", "class2"]);
    let (a, b) = (files(&with_data), files(&without));
    assert_eq!(b.len(), 2 * 2 * 3);
    // Class 1 shared its batch with class 0 in one run and with class 2 in the other: the
    // same noise, equal up to the order of batched sums.
    let png = |f: &BTreeMap<String, Vec<u8>>| {
        image::load_from_memory(&f["images/class1/00000.png"])
            .unwrap()
            .to_luma8()
            .into_raw()
    };
    let max_diff = png(&a)
        .iter()
        .zip(png(&b))
        .map(|(x, y)| (*x as i32 - y as i32).abs())
        .max()
        .unwrap();
    assert!(max_diff <= 1, "{max_diff}");
    // A method that needs the real images says so.
    let dmgd = DistillSpec {
        config: config(Method::Dmgd),
        ..spec.clone()
    };
    let err = pipeline::run(
        &Job {
            spec: &dmgd,
            out: &tmp.path().join("dmgd"),
            ..job
        },
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, PipelineError::NoRealData { .. }), "{err}");
}

#[test]
fn mode_guidance_and_ablations_run() {
    let dit = tiny_dit(false);
    let tmp = tempfile::tempdir().unwrap();
    for (name, cfg) in [
        ("mgd3", config(Method::Mgd3)),
        (
            "no-semantic",
            DistillConfig {
                semantic: false,
                ..config(Method::Dmgd)
            },
        ),
        (
            "no-distribution",
            DistillConfig {
                distribution: false,
                ..config(Method::Dmgd)
            },
        ),
    ] {
        let out = tmp.path().join(name);
        run(&dit, &cfg, &out, Shard::WHOLE, Existing::Refuse).unwrap();
        assert_eq!(files(&out).len(), 2 * CLASSES * 3, "{name}");
    }
}

#[test]
fn a_nan_names_class_image_and_step() {
    let dit = tiny_dit(true);
    let tmp = tempfile::tempdir().unwrap();
    let err = run(
        &dit,
        &config(Method::Dit),
        &tmp.path().join("nan"),
        Shard::WHOLE,
        Existing::Refuse,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("class 0 image 0 at respaced step 9"), "{err}");
}

#[test]
fn latent_space_run_through_a_vae() {
    // The tiny diffusers-layout VAE of the diffusion crate's parity fixtures: 2 blocks (one
    // downsampling), 4 latent channels. 16 x 16 RGB images -> 4 x 8 x 8 latents.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../diffusion/tests/fixtures/vae_tiny_new.safetensors");
    let vae_config = VaeConfig {
        block_out_channels: vec![32, 32],
        layers_per_block: 1,
        latent_channels: 4,
        norm_num_groups: 32,
        in_channels: 3,
    };
    let codec = Codec {
        autoencoder: Autoencoder::SdVae(Box::new(
            SdVae::load(&fixture, &vae_config, &Device::Cpu).unwrap(),
        )),
        id: "tiny-vae".into(),
        encode_mode: EncodeMode::Sample,
    };
    let dit = tiny_dit_with(tiny_config_with(4), false);
    let real = real_set_of(ImageShape {
        channels: 3,
        height: 16,
        width: 16,
    });
    let tmp = tempfile::tempdir().unwrap();
    let cfg = DistillConfig {
        ipc: 2,
        ..config(Method::Dmgd)
    };
    for name in ["a", "b"] {
        run_with(
            &dit,
            &codec,
            &real,
            &cfg,
            &tmp.path().join(name),
            Shard::WHOLE,
            Existing::Refuse,
        )
        .unwrap();
    }
    let a = files(&tmp.path().join("a"));
    assert_eq!(a, files(&tmp.path().join("b")));
    let png = image::load_from_memory(&a["images/class1/00001.png"]).unwrap();
    assert_eq!(
        (png.width(), png.height(), png.color().has_color()),
        (16, 16, true)
    );
}
