//! End-to-end checks of the training API on tiny sets: the nets of the ImageNet protocol take
//! a step at 224 px, and a DC run learns an easy two-class problem.

use candle_core::{Device, Tensor};
use dmgd_data::{ImageSet, ImageShape};
use dmgd_student::nets::{Arch, Net, NetSpec, NormKind};
use dmgd_student::optim::{Optimizer, OptimizerKind};
use dmgd_student::protocol::{Augment, Protocol, SoftLabels, Teacher, TrainConfig};
use dmgd_student::train::train_step;
use dmgd_student::{train_and_test, train_and_test_with, Classifier, Summary};
use rand::{Rng, SeedableRng};

/// Two classes: class 0 is bright on the left half, class 1 on the right, plus noise.
fn halves(n: usize, shape: ImageShape, seed: u64) -> ImageSet {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let mut pixels = Vec::with_capacity(n * shape.numel());
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let y = i % 2;
        for _ in 0..c {
            for _ in 0..h {
                for col in 0..w {
                    let bright = (col < w / 2) == (y == 0);
                    let base = if bright { 180.0 } else { 60.0 };
                    pixels.push((base + rng.gen_range(-50.0..50.0f32)).clamp(0.0, 255.0) as u8);
                }
            }
        }
        labels.push(y);
    }
    ImageSet {
        shape,
        pixels,
        labels,
        class_names: vec!["left".into(), "right".into()],
    }
}

#[test]
fn imagenet_protocol_nets_take_a_training_step_at_224_px() {
    let shape = ImageShape {
        channels: 3,
        height: 224,
        width: 224,
    };
    let x = Tensor::randn(0f32, 1., (4, 3, 224, 224), &Device::Cpu).unwrap();
    let y = [0u32, 1, 2, 3];
    // Parameter counts from oracle/param_counts.py (10 classes).
    for (name, params) in [
        ("resnetap10", 4_910_922),
        ("resnet18", 11_181_642),
        ("convnet6", 754_570),
    ] {
        let spec = NetSpec {
            arch: name.parse().unwrap(),
            norm: NormKind::Instance,
            input: shape,
            num_classes: 10,
        };
        let net = Net::new(spec, 1).unwrap();
        assert_eq!(net.num_params(), params, "{name}");
        let (first_name, first) = net.trainable().into_iter().next().unwrap();
        let before = first
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let vars = net.trainable().into_iter().map(|(_, v)| v).collect();
        let mut opt = Optimizer::new(
            OptimizerKind::AdamW {
                lr: 1e-3,
                weight_decay: 0.01,
            },
            vars,
        )
        .unwrap();
        let loss = train_step(&net, &mut opt, &x, &y).unwrap();
        // A fresh 10-class net starts near ln 10 = 2.30.
        assert!(
            loss.is_finite() && loss > 0.5 && loss < 10.0,
            "{name}: loss {loss}"
        );
        let after = first
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_ne!(before, after, "{name}: {first_name} did not move");
        assert_eq!(
            net.features(&x, false).unwrap().dims(),
            &[4, net.feature_dim()]
        );
    }
}

#[test]
fn dc_protocol_learns_an_easy_problem_and_reports() {
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let (train, test) = (halves(20, shape, 1), halves(200, shape, 2));
    let mut reports = Vec::new();
    for (seed, augment) in [(0, Augment::None), (1, Augment::Dsa)] {
        let mut cfg = TrainConfig::dc(Arch::ConvNet { depth: 3 }, 10, seed);
        cfg.augment = augment;
        cfg.test_every = 5;
        let mut seen = Vec::new();
        let trained = train_and_test(&train, &test, &cfg, &mut |p| {
            seen.push((p.epoch, p.test_accuracy))
        })
        .unwrap();
        let r = &trained.report;
        assert_eq!(seen.len(), 10);
        assert_eq!(r.curve.iter().map(|c| c.0).collect::<Vec<_>>(), vec![5, 10]);
        assert_eq!(r.final_accuracy, r.curve[1].1);
        assert!(r.best_accuracy >= r.final_accuracy);
        assert!(r.final_accuracy >= 90.0, "{augment:?}: {:?}", r.curve);
        // ConvNet-3 on 1 x 28 x 28 has 317,706 parameters for 10 classes; 8 fewer classes
        // remove 8 rows of the 2048-feature classifier.
        assert_eq!(r.num_params, 317_706 - 8 * (2048 + 1));

        // The trained classifier: predictions, features, weights round trip.
        let c = &trained.classifier;
        assert_eq!(c.predict(&test).unwrap().len(), 200);
        assert_eq!(c.features(&test).unwrap().dims(), &[200, 2048]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("student.safetensors");
        c.save(&path).unwrap();
        let loaded = Classifier::load(c.net().spec(), Protocol::Dc, &path).unwrap();
        assert_eq!(loaded.predict(&test).unwrap(), c.predict(&test).unwrap());
        reports.push(trained.report);
    }
    let summary = Summary::of(&reports);
    assert_eq!(summary.runs, 2);
    assert!(summary.final_accuracy.mean >= 90.0);
    let json = serde_json::to_string(&reports[0]).unwrap();
    assert!(json.contains("\"final_accuracy\"") && json.contains("\"curve\""));
}

#[test]
fn minimax_protocol_runs_on_224_px_crops() {
    let (train, test) = (
        halves(
            4,
            ImageShape {
                channels: 3,
                height: 240,
                width: 256,
            },
            3,
        ),
        halves(
            4,
            ImageShape {
                channels: 3,
                height: 224,
                width: 224,
            },
            4,
        ),
    );
    let mut cfg = TrainConfig::minimax(Arch::ConvNet { depth: 3 }, 10, 0);
    cfg.epochs = 1;
    cfg.test_every = 1;
    let trained = train_and_test(&train, &test, &cfg, &mut |_| {}).unwrap();
    assert_eq!(trained.report.curve.len(), 1);
    assert!(trained.report.final_accuracy.is_finite());

    // Test images of another size are refused with both shapes named.
    let err = match train_and_test(&train, &train, &cfg, &mut |_| {}) {
        Ok(_) => panic!("accepted 240x256 test images for a 224 px net"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("3x240x256"), "{err}");
}

/// Soft labels replace the set's labels by the teacher's: on a set whose labels are all wrong,
/// a student taught by a teacher that knows the classes still learns them, where hard labels
/// teach it the opposite. The same seed gives the same run.
#[test]
fn soft_labels_teach_what_the_teacher_knows() {
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    // Top and bottom halves (the halves transposed): the horizontal flips of the RDED
    // augmentation keep each image's class.
    let transposed = |mut set: ImageSet| {
        let (h, w) = (shape.height, shape.width);
        for image in set.pixels.chunks_mut(h * w) {
            let copy = image.to_vec();
            for y in 0..h {
                for x in 0..w {
                    image[y * w + x] = copy[x * w + y];
                }
            }
        }
        set
    };
    let (train, test) = (
        transposed(halves(20, shape, 1)),
        transposed(halves(200, shape, 2)),
    );
    let net = Arch::ConvNet { depth: 3 };
    let teacher = train_and_test(&train, &test, &TrainConfig::dc(net, 10, 0), &mut |_| {})
        .unwrap()
        .classifier;
    assert!(teacher.accuracy(&test).unwrap() >= 90.0);
    let mut mislabelled = train.clone();
    mislabelled.labels.iter_mut().for_each(|y| *y = 1 - *y);

    let hard = TrainConfig::rded(net, 10, 2, 0).with_epochs(10);
    assert_eq!(hard.batch_size, 20); // 50 at IPC 10, capped by the set
    let taught_wrong = train_and_test(&mislabelled, &test, &hard, &mut |_| {}).unwrap();
    assert!(
        taught_wrong.report.final_accuracy <= 10.0,
        "{:?}",
        taught_wrong.report.curve
    );

    let soft = TrainConfig {
        soft_labels: Some(SoftLabels {
            teacher: Teacher {
                net,
                norm: NormKind::Instance,
                path: "teacher.safetensors".into(),
                sha256: "0".repeat(64),
            },
            temperature: 20.0,
        }),
        ..hard.clone()
    };
    let run = || {
        train_and_test_with(&mislabelled, &test, &soft, Some(teacher.net()), &mut |_| {})
            .unwrap()
            .report
    };
    let (a, b) = (run(), run());
    assert!(a.final_accuracy >= 90.0, "{:?}", a.curve);
    assert_eq!(a.curve, b.curve);
    // A teacher is required, and only with soft labels.
    assert!(train_and_test(&mislabelled, &test, &soft, &mut |_| {}).is_err());
    assert!(train_and_test_with(&train, &test, &hard, Some(teacher.net()), &mut |_| {}).is_err());
}
