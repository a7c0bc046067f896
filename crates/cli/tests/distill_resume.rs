//! `dmgd distill` killed at random moments and resumed gives the directory an uninterrupted
//! run gives (manifest timings aside); existing output is refused; a checkpoint for another
//! image size is named.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use dmgd_data::{image_folder, ImageSet, ImageShape};
use dmgd_diffusion::dit::{Dit, DitConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const CLASSES: usize = 3;

/// A random-weight DiT for 8x8 grayscale images saved as a `dmgd pretrain` directory.
fn write_tiny_model(dir: &Path, input_size: usize) {
    let cfg = DitConfig {
        preset: "custom".into(),
        input_size,
        patch_size: 2,
        in_channels: 1,
        hidden_size: 32,
        depth: 2,
        num_heads: 2,
        mlp_ratio: 2.0,
        num_classes: CLASSES,
        learn_sigma: true,
    };
    let varmap = VarMap::new();
    let zero = Dit::init(
        &cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let tensors: HashMap<String, Tensor> = zero
        .state_dict()
        .unwrap()
        .into_iter()
        .map(|(name, t)| {
            if name == "pos_embed" {
                return (name, t);
            }
            let v: Vec<f32> = (0..t.elem_count())
                .map(|_| rng.gen_range(-0.2f32..0.2))
                .collect();
            (name, Tensor::from_vec(v, t.shape(), &Device::Cpu).unwrap())
        })
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    candle_core::safetensors::save(&tensors, dir.join(dmgd_diffusion::train::EMA_FILE)).unwrap();
    std::fs::write(
        dir.join(dmgd_diffusion::train::MODEL_CONFIG_FILE),
        serde_json::to_vec(&cfg).unwrap(),
    )
    .unwrap();
}

fn write_tiny_data(dir: &Path) {
    let shape = ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = CLASSES * 10;
    let set = ImageSet {
        shape,
        pixels: (0..n * 64).map(|_| rng.gen()).collect(),
        labels: (0..n).map(|i| i % CLASSES).collect(),
        class_names: (0..CLASSES).map(|c| format!("c{c}")).collect(),
    };
    image_folder::write(&set, dir, false).unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        write_tiny_model(&root.join("model"), 8);
        write_tiny_data(&root.join("data"));
        Fixture { _tmp: tmp, root }
    }

    fn distill(&self, out: &str, extra: &[&str]) -> Command {
        self.distill_with(out, "model", &self.root.join("data"), extra)
    }

    fn distill_with(&self, out: &str, model: &str, data: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dmgd"));
        cmd.arg("distill")
            .args(["--dit", self.root.join(model).to_str().unwrap()])
            .args(["--data", data.to_str().unwrap()])
            .args(["--cache-dir", self.root.join("cache").to_str().unwrap()])
            .args(["--out", self.root.join(out).to_str().unwrap()])
            .args([
                "--steps",
                "10",
                "--class-batch",
                "2",
                "--support-points",
                "3",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }
}

/// Every file under `dir` except the manifest (which records timings and the command line).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if rel != "manifest.json" {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn manifest_images(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::json!([manifest["spec"], manifest["outcome"]["images"]])
}

#[test]
fn killed_three_times_and_resumed_equals_uninterrupted() {
    let fx = Fixture::new();
    let started = Instant::now();
    let status = fx.distill("whole", &["--ipc", "6"]).status().unwrap();
    assert!(status.success());
    let full_run = started.elapsed();
    let expected = files(&fx.root.join("whole"));
    assert_eq!(
        expected.keys().filter(|k| k.ends_with(".png")).count(),
        CLASSES * 6 + 1,
        "images and grid"
    );

    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    for attempt in 0..3 {
        let mut child = fx
            .distill("killed", &["--ipc", "6", "--resume"])
            .spawn()
            .unwrap();
        // A random moment within the first 90% of a full run's time.
        let wait = full_run.mul_f64(rng.gen_range(0.05..0.9));
        std::thread::sleep(wait);
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("attempt {attempt}: killed after {wait:?}");
    }
    let output = fx
        .distill("killed", &["--ipc", "6", "--resume"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let killed = fx.root.join("killed");
    let got = files(&killed);
    let leftovers: Vec<&String> = got.keys().filter(|k| k.contains(".tmp")).collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert!(
        got == expected,
        "a resumed run's files differ from the uninterrupted run's"
    );
    assert_eq!(
        manifest_images(&killed),
        manifest_images(&fx.root.join("whole"))
    );
}

#[test]
fn existing_output_and_mismatched_checkpoint_are_named() {
    let fx = Fixture::new();
    assert!(fx
        .distill("out", &["--ipc", "1"])
        .status()
        .unwrap()
        .success());
    let output = fx.distill("out", &["--ipc", "1"]).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("already holds output") && err.contains("--resume"),
        "{err}"
    );

    write_tiny_model(&fx.root.join("model16"), 16);
    let output = fx
        .distill_with("other", "model16", &fx.root.join("data"), &["--ipc", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains("1x16x16") && err.contains("1x8x8"), "{err}");
    assert!(!fx.root.join("other/images").exists(), "no partial output");

    let output = fx
        .distill_with(
            "none",
            "model",
            Path::new("/nonexistent/folder"),
            &["--ipc", "1"],
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("/nonexistent/folder"), "{err}");
}

#[test]
fn a_resume_with_other_settings_is_refused_naming_them() {
    let fx = Fixture::new();
    assert!(fx
        .distill("run", &["--ipc", "2"])
        .status()
        .unwrap()
        .success());
    let before = files(&fx.root.join("run"));
    let output = fx
        .distill(
            "run",
            &[
                "--ipc",
                "2",
                "--resume",
                "--method",
                "mgd3",
                "--seed",
                "5",
                "--cfg-scale",
                "2",
            ],
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("config.cfg-scale, config.method, config.seed")
            && err.contains("another --out"),
        "{err}"
    );
    assert_eq!(files(&fx.root.join("run")), before);
    // A negative value as a separate word is a value, not a flag.
    let output = fx
        .distill("neg", &["--ipc", "1", "--rho", "-1"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_corrupt_image_in_the_last_class_leaves_no_output() {
    let fx = Fixture::new();
    let last = fx.root.join("data").join(format!("c{}", CLASSES - 1));
    std::fs::write(last.join("00099.png"), b"not a png").unwrap();
    let output = fx.distill("out", &["--ipc", "1"]).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains("00099.png"), "{err}");
    assert!(
        !fx.root.join("out").exists(),
        "output written before the check"
    );
}

#[test]
fn classes_missing_from_the_data_folder_are_named() {
    let fx = Fixture::new();
    let list = fx.root.join("classes.txt");
    std::fs::write(&list, "c0\nc1\nn02096294\n").unwrap();
    let output = fx
        .distill("out", &["--ipc", "1", "--classes", list.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("n02096294") && err.contains("missing"),
        "{err}"
    );
    assert!(!fx.root.join("out").exists(), "no partial output");
}
