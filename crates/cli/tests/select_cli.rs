//! `dmgd select` and `dmgd eval` through the built binary on a tiny ImageFolder (3 classes x 8
//! images of 28 x 28): the random, herding and k-center outputs and manifests, the embedding
//! cache, and bad input (missing data, empty class, corrupt PNG, IPC above a class size,
//! unknown net), each of which must name the problem and leave no output behind.

use dmgd_data::image_folder::{self, ReadOptions};
use dmgd_data::{ImageSet, ImageShape};
use dmgd_distill::coreset;
use dmgd_student::{Arch, Classifier, NetSpec, NormKind, Protocol};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CLASSES: [&str; 3] = ["a-circle", "b-bar", "c-noise"];
const PER_CLASS: usize = 8;

/// 28 x 28 grayscale images whose class shows in the pattern, with noise so no two are equal.
fn tiny_set() -> ImageSet {
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for i in 0..CLASSES.len() * PER_CLASS {
        let y = i % CLASSES.len(); // interleaved, so set order differs from class order
        for r in 0..28i32 {
            for c in 0..28i32 {
                let base = match y {
                    0 => {
                        if (r - 14).pow(2) + (c - 14).pow(2) < 64 {
                            200
                        } else {
                            20
                        }
                    }
                    1 => {
                        if (10..18).contains(&c) {
                            220
                        } else {
                            30
                        }
                    }
                    _ => 100,
                };
                pixels.push((base + rng.gen_range(0..40)).min(255) as u8);
            }
        }
        labels.push(y);
    }
    ImageSet {
        shape,
        pixels,
        labels,
        class_names: CLASSES.iter().map(|s| s.to_string()).collect(),
    }
}

fn write_tiny_folder(root: &Path) -> ImageSet {
    let set = tiny_set();
    image_folder::write(&set, root, false).unwrap();
    // What the binary sees: the folder read back (class-major order).
    image_folder::read(root, &ReadOptions::default()).unwrap()
}

fn dmgd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmgd"))
        .args(args)
        .output()
        .expect("running dmgd")
}

fn ok(args: &[&str]) -> String {
    let out = dmgd(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "dmgd {args:?} failed:\n{stderr}");
    stderr
}

/// Runs a command that must fail; returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = dmgd(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "dmgd {args:?} should have failed; stderr:\n{stderr}"
    );
    assert!(stderr.starts_with("error: "), "dmgd {args:?}: {stderr}");
    stderr
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn indices(manifest: &Value) -> Vec<Vec<usize>> {
    serde_json::from_value(manifest["outcome"]["source_indices"].clone()).unwrap()
}

/// Nothing of `out` exists, and no staging directory or temporary file is left next to it.
fn assert_no_output(out: &Path) {
    assert!(!out.exists(), "{} was left behind", out.display());
    let parent = out.parent().unwrap();
    if parent.exists() {
        let leftovers: Vec<_> = std::fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A command `line` that must fail with a message holding each of `expected`, leaving no `out`.
fn refused(line: &str, out: &Path, expected: &[&str]) {
    let err = fails(&words(line));
    assert!(expected.iter().all(|e| err.contains(e)), "{err}");
    assert_no_output(out);
}

/// A command line's words (the tests' paths have no spaces).
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// `dmgd select --method random --ipc 4` of `data` into `out`.
fn select_random_4(data: &Path, out: &Path) {
    ok(&words(&format!(
        "select --method random --ipc 4 --data {} --out {}",
        s(data),
        s(out)
    )));
}

#[test]
fn random_selection_writes_the_chosen_images_and_a_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let real = write_tiny_folder(&data);
    let out = tmp.path().join("sel");
    ok(&words(&format!(
        "select --method random --ipc 3 --seed 7 --data {} --out {}",
        s(&data),
        s(&out)
    )));

    let m = manifest(&out);
    let d = &m["spec"];
    assert_eq!(
        (d["method"].as_str(), d["ipc"].as_u64(), d["seed"].as_u64()),
        (Some("random"), Some(3), Some(7))
    );
    assert_eq!(
        d["data"]["fingerprint"].as_str().unwrap(),
        real.fingerprint()
    );
    assert!(d["embedding"].is_null());
    let picks = indices(&m);
    assert_eq!(picks.len(), 3);
    for (c, class) in picks.iter().enumerate() {
        let mut distinct = class.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "class {c}: {class:?}");
        assert!(
            class.iter().all(|&i| real.labels[i] == c),
            "class {c}: {class:?}"
        );
    }
    // The folder holds exactly those images, byte for byte, in selection order.
    let written = image_folder::read(&out, &ReadOptions::default()).unwrap();
    let expected = real.subset(&picks.concat());
    assert_eq!(
        (written.shape, &written.labels, &written.class_names),
        (expected.shape, &expected.labels, &expected.class_names)
    );
    assert!(written.pixels == expected.pixels);

    // Same seed, same choice; another seed, another one.
    let again = tmp.path().join("again");
    ok(&words(&format!(
        "select --ipc 3 --seed 7 --data {} --out {}",
        s(&data),
        s(&again)
    )));
    assert_eq!(indices(&manifest(&again)), picks);
    let other = tmp.path().join("other");
    ok(&words(&format!(
        "select --ipc 3 --seed 8 --data {} --out {}",
        s(&data),
        s(&other)
    )));
    assert_ne!(indices(&manifest(&other)), picks);

    // An existing output is refused, and kept.
    let err = fails(&words(&format!(
        "select --ipc 2 --data {} --out {}",
        s(&data),
        s(&out)
    )));
    assert!(
        err.contains("already exists") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(indices(&manifest(&out)), picks);
}

/// Herding and k-center on the embedding of a trained ConvNet-3: the picks equal herding /
/// k-center run here on `Classifier::features` of the cached network, class by class; the
/// network is trained once and then taken from the cache or from --embedding.
#[test]
fn herding_and_kcenter_use_a_cached_trained_embedding() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let real = write_tiny_folder(&data);
    let cache = tmp.path().join("cache");
    let common = [
        "--ipc",
        "3",
        "--embedding-epochs",
        "2",
        "--embedding-seed",
        "3",
        "--data",
        s(&data),
        "--cache-dir",
        s(&cache),
    ];
    let run = |method: &str, out: &Path, extra: &[&str]| {
        let mut args = vec!["select", "--method", method, "--out", s(out)];
        args.extend(common);
        args.extend(extra);
        ok(&args)
    };

    let first = tmp.path().join("herding");
    let log = run("herding", &first, &[]);
    assert!(
        log.contains("training the convnet3 embedding network"),
        "{log}"
    );
    let m = manifest(&first);
    let e = &m["outcome"]["embedding"];
    assert_eq!(
        (e["origin"].as_str(), e["net"].as_str(), e["layer"].as_str()),
        (Some("trained"), Some("convnet3"), Some("penultimate"))
    );
    assert_eq!(e["feature_dim"].as_u64(), Some(128 * 4 * 4)); // 28 -> (pad 3) 32 -> 16 -> 8 -> 4
    let t = &e["training"];
    assert_eq!(
        (t["config"]["epochs"].as_u64(), t["config"]["seed"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(
        (t["config"]["protocol"].as_str(), t["train_images"].as_u64()),
        (Some("dc"), Some(24))
    );
    assert_eq!(
        t["dataset_fingerprint"].as_str().unwrap(),
        real.fingerprint()
    );
    let weights = PathBuf::from(e["weights"]["path"].as_str().unwrap());
    assert!(
        weights.starts_with(&cache) && weights.is_file(),
        "{}",
        weights.display()
    );
    assert_eq!(e["weights"]["sha256"].as_str().unwrap().len(), 64);

    // The picks are herding on the penultimate features of that network, per class.
    let spec = NetSpec {
        arch: Arch::ConvNet { depth: 3 },
        norm: NormKind::Instance,
        input: real.shape,
        num_classes: 3,
    };
    let classifier = Classifier::load(spec, Protocol::Dc, &weights).unwrap();
    let by_method = |pick: fn(&[f32], usize, usize) -> Vec<usize>| -> Vec<Vec<usize>> {
        real.indices_by_class()
            .iter()
            .map(|members| {
                let f = classifier.features(&real.subset(members)).unwrap(); // (8, 2048)
                let dim = f.dim(1).unwrap();
                pick(&f.flatten_all().unwrap().to_vec1::<f32>().unwrap(), dim, 3)
                    .into_iter()
                    .map(|p| members[p])
                    .collect()
            })
            .collect()
    };
    let herding = by_method(coreset::herding);
    assert_eq!(indices(&m), herding);

    // Second selection: no training, the cached network, the same picks.
    let second = tmp.path().join("herding2");
    let log = run("herding", &second, &[]);
    assert!(
        log.contains("from the cache") && !log.contains("training the"),
        "{log}"
    );
    assert_eq!(
        manifest(&second)["outcome"]["embedding"]["origin"].as_str(),
        Some("cached")
    );
    assert_eq!(indices(&manifest(&second)), herding);
    let cached: Vec<_> = std::fs::read_dir(cache.join("embeddings"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(cached.len(), 2, "one network and its sidecar: {cached:?}");

    // k-center from the same cache.
    let kc = tmp.path().join("kcenter");
    run("kcenter", &kc, &[]);
    assert_eq!(manifest(&kc)["spec"]["method"].as_str(), Some("kcenter"));
    assert_eq!(indices(&manifest(&kc)), by_method(coreset::kcenter));

    // --embedding: a saved classifier, recorded as a file.
    let given = tmp.path().join("given");
    run("herding", &given, &["--embedding", s(&weights)]);
    let e = &manifest(&given)["outcome"]["embedding"];
    assert_eq!(
        (e["origin"].as_str(), e["weights"]["path"].as_str()),
        (Some("file"), Some(s(&weights)))
    );
    assert!(e["training"].is_null());
    assert_eq!(indices(&manifest(&given)), herding);

    // Another seed is another network (another cache entry).
    let reseeded = tmp.path().join("reseeded");
    let log = ok(&words(&format!("select --method herding --ipc 3 --embedding-epochs 2 --embedding-seed 4 --data {} --cache-dir {} --out {}", s(&data), s(&cache), s(&reseeded))));
    assert!(log.contains("training the"), "{log}");
}

#[test]
fn missing_dataset_is_named_and_leaves_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out").join("sel");
    let nowhere = tmp.path().join("no-fmnist");
    refused(
        &format!(
            "select --ipc 1 --fashion-mnist-dir {} --out {}",
            s(&nowhere),
            s(&out)
        ),
        &out,
        &["Fashion-MNIST", s(&nowhere)],
    );

    let folder = tmp.path().join("no-folder");
    refused(
        &format!("select --ipc 1 --data {} --out {}", s(&folder), s(&out)),
        &out,
        &["does not exist", s(&folder)],
    );

    eval_refuses(tmp.path(), &folder, &["does not exist", s(&folder)]);
}

#[test]
fn empty_class_folder_is_named_and_leaves_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_tiny_folder(&data);
    let empty = data.join("d-empty");
    std::fs::create_dir(&empty).unwrap();
    let out = tmp.path().join("sel");
    refused(
        &format!("select --ipc 1 --data {} --out {}", s(&data), s(&out)),
        &out,
        &["holds no PNG or JPEG images", s(&empty)],
    );

    eval_refuses(
        tmp.path(),
        &data,
        &["holds no PNG or JPEG images", s(&empty)],
    );
}

#[test]
fn corrupt_png_is_named_and_leaves_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_tiny_folder(&data);
    let bad = data.join(CLASSES[1]).join("00003.png");
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes.truncate(bytes.len() / 2); // a cut-off download
    std::fs::write(&bad, &bytes).unwrap();
    let cache = tmp.path().join("cache");
    for method in ["random", "herding"] {
        let out = tmp.path().join(method);
        refused(
            &format!(
                "select --method {} --ipc 1 --embedding-epochs 1 --data {} --cache-dir {} --out {}",
                method,
                s(&data),
                s(&cache),
                s(&out)
            ),
            &out,
            &["cannot decode image", s(&bad)],
        );
    }
    assert!(!cache.exists(), "nothing was trained, nothing cached");

    eval_refuses(tmp.path(), &data, &["cannot decode image", s(&bad)]);
}

/// `dmgd eval` of `data` against itself fails, its message holding each of `expected`, and
/// leaves no output.
fn eval_refuses(tmp: &Path, data: &Path, expected: &[&str]) {
    let out = tmp.join("eval");
    let (data, out_s) = (s(data), s(&out));
    let line = format!("eval --train {data} --test {data} --epochs 1 --out {out_s}");
    refused(&line, &out, expected);
}

#[test]
fn ipc_above_a_class_size_is_named_and_leaves_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_tiny_folder(&data);
    // One class with fewer images than the others.
    std::fs::remove_file(data.join(CLASSES[2]).join("00007.png")).unwrap();
    let cache = tmp.path().join("cache");
    for method in ["random", "herding", "kcenter"] {
        let out = tmp.path().join(method);
        refused(
            &format!(
                "select --method {} --ipc 8 --data {} --cache-dir {} --out {}",
                method,
                s(&data),
                s(&cache),
                s(&out)
            ),
            &out,
            &["class `c-noise` has 7 images, fewer than the 8 requested"],
        );
    }
    assert!(!cache.exists(), "the size check comes before any training");
    let out = tmp.path().join("zero");
    refused(
        &format!("select --ipc 0 --data {} --out {}", s(&data), s(&out)),
        &out,
        &["--ipc", "at least 1"],
    );
}

#[test]
fn unknown_net_is_named_and_leaves_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_tiny_folder(&data);
    let eval_out = tmp.path().join("eval");
    refused(
        &format!(
            "eval --train {} --test {} --net convnet3x --epochs 1 --out {}",
            s(&data),
            s(&data),
            s(&eval_out)
        ),
        &eval_out,
        &["unknown net `convnet3x`", "resnetap10"],
    );

    let out = tmp.path().join("sel");
    refused(
        &format!(
            "select --method herding --ipc 1 --embedding-net vgg11 --data {} --out {}",
            s(&data),
            s(&out)
        ),
        &out,
        &["unknown net `vgg11`"],
    );
}

#[test]
fn unusable_embedding_file_is_named_and_leaves_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_tiny_folder(&data);
    let weights = tmp.path().join("not-weights.safetensors");
    std::fs::write(&weights, b"not a safetensors file").unwrap();
    let out = tmp.path().join("sel");
    refused(
        &format!(
            "select --method kcenter --ipc 1 --embedding {} --data {} --out {}",
            s(&weights),
            s(&data),
            s(&out)
        ),
        &out,
        &["--embedding", s(&weights)],
    );
}

#[test]
fn quality_judges_sets_with_a_net_that_eval_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let real = write_tiny_folder(&data);
    let eval_out = tmp.path().join("eval");
    ok(&words(&format!(
        "eval --train {} --test {} --epochs 2 --repeats 1 --out {} --save-nets",
        s(&data),
        s(&data),
        s(&eval_out)
    )));
    let net = eval_out.join("net-set0-run0.safetensors");
    let half = tmp.path().join("half");
    select_random_4(&data, &half);
    let report_path = tmp.path().join("quality.json");
    ok(&words(&format!(
        "quality --images {} --images {} --reference {} --classifier {} --out {}",
        s(&data),
        s(&half),
        s(&data),
        s(&net),
        s(&report_path)
    )));
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let details = &report["outcome"];

    // The agreement is the saved network's accuracy, computed here in-process.
    let spec = NetSpec {
        arch: Arch::ConvNet { depth: 3 },
        norm: NormKind::Instance,
        input: real.shape,
        num_classes: 3,
    };
    let classifier = Classifier::load(spec, Protocol::Dc, &net).unwrap();
    let accuracy = classifier.accuracy(&real).unwrap();
    let sets = details["sets"].as_array().unwrap();
    assert_eq!(details["reference_accuracy"].as_f64().unwrap(), accuracy);
    assert_eq!(sets[0]["agreement"].as_f64().unwrap(), accuracy);
    assert_eq!(sets[1]["count"], 12);
    // A set against itself is at distance 0, a subset is not. Round-off: 24 images in 2048
    // dimensions leave ~2000 zero eigenvalues, whose square roots of ±1e-12 noise add up.
    let same = sets[0]["frechet_distance"].as_f64().unwrap();
    let subset = sets[1]["frechet_distance"].as_f64().unwrap();
    assert!(same.abs() < 1e-3 * subset, "{same} vs {subset}");
    assert!(subset > 0.0);

    // Images of other classes are refused by name.
    let other = tmp.path().join("other");
    let mut two = tiny_set();
    two.class_names.truncate(2);
    let keep: Vec<usize> = (0..two.len()).filter(|&i| two.labels[i] < 2).collect();
    image_folder::write(&two.subset(&keep), &other, false).unwrap();
    let err = fails(&words(&format!(
        "quality --images {} --reference {} --classifier {}",
        s(&other),
        s(&data),
        s(&net)
    )));
    let named = format!("image set {}", s(&other));
    assert!(err.contains(&named) && err.contains("2 classes"), "{err}");
}

/// `dmgd eval --resume` after an interruption keeps the networks that had finished and trains
/// the others: the same accuracies, curves and configurations as an uninterrupted run. Without
/// the flag the kept networks are neither used nor deleted, and a kept network of another
/// configuration is refused by name.
#[test]
fn eval_resume_keeps_finished_networks() {
    /// `dmgd eval` on the tiny folder (train and test), 2 networks, then `extra`.
    fn eval_args<'a>(
        data: &'a Path,
        out: &'a Path,
        epochs: &'a str,
        extra: &[&'a str],
    ) -> Vec<&'a str> {
        let mut args = vec![
            "eval",
            "--train",
            s(data),
            "--test",
            s(data),
            "--epochs",
            epochs,
            "--repeats",
            "2",
            "--out",
            s(out),
        ];
        args.extend_from_slice(extra);
        args
    }

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_tiny_folder(&data);
    let read = |out: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(out.join("eval.json")).unwrap()).unwrap()
    };

    let whole = tmp.path().join("whole");
    ok(&eval_args(&data, &whole, "3", &[]));

    // An interrupted run: only the second network had finished.
    let part = tmp.path().join("part");
    let kept = part.join("networks").join("set0-run1.json");
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    std::fs::copy(whole.join("networks").join("set0-run1.json"), &kept).unwrap();
    let err = fails(&eval_args(&data, &part, "3", &[]));
    assert!(
        err.contains("--resume") && err.contains("networks"),
        "{err}"
    );
    assert!(
        kept.exists(),
        "a failed start must not delete finished work"
    );

    let log = ok(&eval_args(&data, &part, "3", &["--resume"]));
    assert!(
        log.contains("run 2: final") && log.contains("kept from the interrupted run"),
        "{log}"
    );
    let (a, b) = (read(&whole), read(&part));
    assert_eq!(a["resumed_networks"], 0);
    assert_eq!(b["resumed_networks"], 1);
    assert_eq!(a["summary"], b["summary"]);
    let (ra, rb) = (a["runs"].as_array().unwrap(), b["runs"].as_array().unwrap());
    assert_eq!(ra.len(), 2);
    for (x, y) in ra.iter().zip(rb) {
        for key in [
            "config",
            "final_accuracy",
            "best_accuracy",
            "best_epoch",
            "curve",
        ] {
            assert_eq!(x[key], y[key], "{key}");
        }
    }
    // The kept network was read back, not trained again: even its training time is the same.
    assert_eq!(ra[1]["seconds"], rb[1]["seconds"]);

    // Resuming with 4 epochs where the run trained 3 is refused, naming the key.
    let err = fails(&eval_args(&data, &part, "4", &["--resume"]));
    assert!(
        err.contains("config.epochs") && err.contains("another evaluation"),
        "{err}"
    );
    // --overwrite alone starts again.
    ok(&eval_args(&data, &part, "4", &["--overwrite"]));
    assert_eq!(read(&part)["resumed_networks"], 0);
    assert_eq!(read(&part)["runs"][0]["config"]["epochs"], 4);
}

/// The soft-label path end to end: a teacher `eval --save-nets` wrote labels the batches of
/// `eval --labels soft` (the rded protocol); the spec records the teacher and its hash, a
/// missing --teacher is named, and `score` reads the cells.
#[test]
fn soft_label_eval_with_a_saved_teacher_and_its_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_tiny_folder(&data);
    let half = tmp.path().join("half");
    select_random_4(&data, &half);
    let eval = |name: &str, train: &Path, extra: &[&str]| {
        let out = tmp.path().join(name);
        let mut args = vec![
            "eval",
            "--train",
            s(train),
            "--test",
            s(&data),
            "--epochs",
            "2",
            "--repeats",
            "2",
            "--out",
            s(&out),
        ];
        args.extend(extra);
        ok(&args);
        out
    };
    let full = eval("full", &data, &["--save-nets"]);
    let teacher = full.join("net-set0-run0.safetensors");
    let soft = ["--labels", "soft", "--teacher", s(&teacher)];
    let set_hard = eval("set-hard", &half, &[]);
    let set_soft = eval("set-soft", &half, &soft);
    // The random subset here is the set itself: IOR 0, and the scores still compute.
    let random_soft = eval("random-soft", &half, &soft);

    let spec = &manifest(&set_soft)["spec"]["config"];
    assert_eq!(spec["protocol"], "rded");
    assert_eq!(spec["batch-size"], 12); // 4 images x 3 classes: the set, under RDED's 50
    let recorded = &spec["soft-labels"]["teacher"];
    assert_eq!(
        recorded["sha256"].as_str().unwrap(),
        dmgd_run::sha256_file(&teacher).unwrap()
    );
    assert_eq!(recorded["norm"], "instance");
    assert!(manifest(&set_hard)["spec"]["config"]
        .get("soft-labels")
        .is_none());

    let err = fails(&words(&format!(
        "eval --train {} --test {} --labels soft",
        s(&half),
        s(&data)
    )));
    assert!(err.contains("--teacher"), "{err}");

    let scores = tmp.path().join("scores.json");
    let args = [
        "score",
        "--full",
        s(&full),
        "--set-hard",
        s(&set_hard),
        "--set-soft",
        s(&set_soft),
        "--random-soft",
        s(&random_soft),
        "--out",
        s(&scores),
    ];
    let out = dmgd(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&scores).unwrap()).unwrap();
    let ior = report["final_epoch"]["ior"]["values"].as_array().unwrap();
    assert_eq!(ior.len(), 2);
    assert!(ior.iter().all(|v| v.as_f64().unwrap() == 0.0), "{ior:?}");
    // A hard-label evaluation where a soft one belongs is refused, naming it.
    let swapped = [
        "score",
        "--full",
        s(&full),
        "--set-hard",
        s(&set_hard),
        "--set-soft",
        s(&set_hard),
        "--random-soft",
        s(&random_soft),
    ];
    let err = fails(&swapped);
    assert!(
        err.contains("set-hard") && err.contains("hard labels"),
        "{err}"
    );
}
