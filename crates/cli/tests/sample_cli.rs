//! `dmgd sample` with the shipped model and a subset of labels: the images land in their class
//! folders and `grid.png` has one row per sampled label, in label order; an existing output is
//! refused and left as it was.

use dmgd_data::image_folder::{self, ReadOptions};
use std::process::Command;

#[test]
fn grid_has_one_row_per_sampled_label() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sampled");
    let status = Command::new(env!("CARGO_BIN_EXE_dmgd"))
        .args(["sample", "--labels", "7,2", "--ipc", "3", "--steps", "3"])
        .arg("--out")
        .arg(&out)
        .env("RAYON_NUM_THREADS", "1")
        .status()
        .unwrap();
    assert!(status.success());
    assert!(out.join("manifest.json").is_file());

    let classes = vec!["2-pullover".to_string(), "7-sneaker".to_string()];
    let options = ReadOptions {
        classes: Some(classes),
        ..Default::default()
    };
    let set = image_folder::read(&out.join("images"), &options).unwrap();
    assert_eq!(set.len(), 6);

    let grid = image::open(out.join("grid.png")).unwrap().to_luma8();
    // 2 rows x 3 columns of 28 x 28 tiles with 2-pixel gutters.
    assert_eq!(grid.dimensions(), (3 * 30 + 2, 2 * 30 + 2));
    let by_class = set.indices_by_class();
    for (row, members) in by_class.iter().enumerate() {
        for (col, &i) in members.iter().enumerate() {
            let (x0, y0) = (2 + 30 * col as u32, 2 + 30 * row as u32);
            let tile: Vec<u8> = (0..28u32)
                .flat_map(|y| (0..28u32).map(move |x| (x, y)))
                .map(|(x, y)| grid.get_pixel(x0 + x, y0 + y)[0])
                .collect();
            assert_eq!(tile, set.image(i), "row {row} column {col}");
        }
    }

    let again = Command::new(env!("CARGO_BIN_EXE_dmgd"))
        .args(["sample", "--labels", "1", "--ipc", "1", "--steps", "2"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("sampled"), "{stderr}");
    assert_eq!(
        image_folder::read(&out.join("images"), &options)
            .unwrap()
            .pixels,
        set.pixels
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["sampled"]);
}

#[test]
fn an_installed_binary_finds_the_shipped_model_beside_it_or_through_dmgd_models() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_dmgd"), bin.join("dmgd")).unwrap();
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/fashion-mnist-dit");
    let link = |models: &std::path::Path| {
        std::fs::create_dir_all(models).unwrap();
        std::os::unix::fs::symlink(&shipped, models.join("fashion-mnist-dit")).unwrap();
    };
    link(&tmp.path().join("share/dmgd/models"));
    link(&tmp.path().join("elsewhere"));
    let model_used = |out: &str, env: Option<&std::path::Path>| {
        let mut cmd = Command::new(bin.join("dmgd"));
        cmd.args([
            "sample", "--labels", "0", "--ipc", "1", "--steps", "2", "--out",
        ])
        .arg(tmp.path().join(out))
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("DMGD_MODELS");
        if let Some(dir) = env {
            cmd.env("DMGD_MODELS", dir);
        }
        let output = cmd.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(tmp.path().join(out).join("manifest.json")).unwrap(),
        )
        .unwrap();
        manifest["spec"]["dit"]["path"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let beside = model_used("a", None);
    assert!(beside.contains("bin/../share/dmgd/models"), "{beside}");
    let from_env = model_used("b", Some(&tmp.path().join("elsewhere")));
    assert!(from_env.contains("elsewhere"), "{from_env}");
}

/// `pretrain --resume` continues a run with its own settings: a setting given beside it is
/// refused by name instead of being silently ignored.
#[test]
fn pretrain_resume_refuses_other_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_dmgd"))
        .args(["pretrain", "--out", "runs/none", "--resume", "--lr", "3e-4"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--lr") && err.contains("--resume"), "{err}");
}

/// `--precision bf16` runs the model in bfloat16 (on the CPU too), records it in the spec, and
/// gives other images than f32 from the same seeds: another run, in another default folder.
#[test]
fn bf16_sampling_is_recorded_and_is_another_run() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = |precision: &str| {
        let out = tmp.path().join(precision);
        let status = Command::new(env!("CARGO_BIN_EXE_dmgd"))
            .args(["sample", "--labels", "3", "--ipc", "1", "--steps", "4"])
            .args(["--precision", precision, "--out"])
            .arg(&out)
            .env("RAYON_NUM_THREADS", "1")
            .status()
            .unwrap();
        assert!(status.success(), "--precision {precision}");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        let set = image_folder::read(&out.join("images"), &ReadOptions::default()).unwrap();
        (manifest["spec"]["precision"].clone(), set.pixels)
    };
    let (f32_record, f32_pixels) = sample("f32");
    let (bf16_record, bf16_pixels) = sample("bf16");
    assert_eq!(
        f32_record,
        serde_json::Value::Null,
        "f32 is the unrecorded default"
    );
    assert_eq!(bf16_record, "bf16");
    assert_ne!(f32_pixels, bf16_pixels);
    // Close, though: bf16 rounding moves pixels by a few levels, not the drawing.
    let mean_diff = f32_pixels
        .iter()
        .zip(&bf16_pixels)
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .sum::<f64>()
        / f32_pixels.len() as f64;
    assert!(mean_diff < 20.0, "mean pixel difference {mean_diff}");
}
