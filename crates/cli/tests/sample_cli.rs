//! `dmgd sample` with the shipped model and a subset of labels: the images land in their class
//! folders and `grid.png` has one row per sampled label, in the order asked for; an existing
//! output is refused and left as it was.

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

    let classes = vec!["7-sneaker".to_string(), "2-pullover".to_string()];
    let options = ReadOptions {
        classes: Some(classes),
        ..Default::default()
    };
    let set = image_folder::read(&out, &options).unwrap();
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
        image_folder::read(&out, &options).unwrap().pixels,
        set.pixels
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["sampled"]);
}
