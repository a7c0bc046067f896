//! Teachers as PyTorch writes them (fixtures from oracle/teacher_fixtures.py): loaded
//! strictly, with torch's logits, and torchvision's ResNet-18 key layout.

use candle_core::{Device, Tensor};
use dmgd_data::ImageShape;
use dmgd_student::{Arch, Net, NetSpec, NormKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn shape(channels: usize, size: usize) -> ImageShape {
    ImageShape {
        channels,
        height: size,
        width: size,
    }
}

#[test]
fn a_torch_state_dict_teacher_loads_strictly_and_gives_torchs_logits() {
    let convnet1 = Arch::ConvNet { depth: 1 };
    let (record, net) = dmgd_eval::teacher::load(
        &fixture("convnet1_bn.pt"),
        convnet1,
        shape(1, 8),
        3,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(record.norm, NormKind::Batch); // it holds running statistics
    assert_eq!(record.sha256.len(), 64);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("convnet1_bn.json")).unwrap())
            .unwrap();
    let values = |key: &str| -> Vec<f32> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    let x = Tensor::from_vec(values("input"), (2, 1, 8, 8), &Device::Cpu).unwrap();
    let out = net.forward(&x, false).unwrap();
    assert!(
        !out.track_op(),
        "a loaded teacher's forward records no graph"
    );
    let logits: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
    let expected = values("logits");
    for (a, b) in logits.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-4, "{logits:?} vs {expected:?}");
    }
}

#[test]
fn a_teacher_missing_a_key_or_with_an_extra_one_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let tensors =
        dmgd_diffusion::checkpoint::read_tensors(&fixture("convnet1_bn.pt"), &Device::Cpu).unwrap();
    let convnet1 = Arch::ConvNet { depth: 1 };
    let mut missing = tensors.clone();
    missing.remove("features.1.running_var");
    let mut extra = tensors.clone();
    extra.insert(
        "features.4.weight".into(),
        Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    for (name, set, key) in [
        ("missing", missing, "features.1.running_var"),
        ("extra", extra, "features.4.weight"),
    ] {
        let path = dir.path().join(format!("{name}.safetensors"));
        candle_core::safetensors::save(&set, &path).unwrap();
        let err = dmgd_eval::teacher::load(&path, convnet1, shape(1, 8), 3, &Device::Cpu)
            .err()
            .expect("refused");
        let text = format!("{err:#}");
        assert!(text.contains(key), "{name}: {text}");
    }
}

/// The student ResNet-18 with batch norm has exactly the entries of torchvision's
/// resnet18() state dict, name for name and shape for shape, apart from the step counters
/// `num_batches_tracked`, which loading accepts.
#[test]
fn resnet18_has_torchvisions_keys_and_loads_its_state_dicts() {
    let listed = std::fs::read_to_string(fixture("resnet18_torchvision_keys.txt")).unwrap();
    let mut torchvision: Vec<(String, Vec<usize>)> = listed
        .lines()
        .map(|line| {
            let (key, dims) = line.split_once(' ').unwrap();
            let dims = match dims {
                "scalar" => Vec::new(),
                d => d.split('x').map(|n| n.parse().unwrap()).collect(),
            };
            (key.to_string(), dims)
        })
        .collect();
    let spec = NetSpec {
        arch: Arch::ResNet18,
        norm: NormKind::Batch,
        input: shape(3, 224),
        num_classes: 1000,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet18.safetensors");
    Net::new(spec, 0).unwrap().save(&path).unwrap();
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let mut ours: Vec<(String, Vec<usize>)> = tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.dims().to_vec()))
        .collect();
    let counters: Vec<(String, Vec<usize>)> = torchvision
        .iter()
        .filter(|(k, _)| k.ends_with(".num_batches_tracked"))
        .cloned()
        .collect();
    assert_eq!(counters.len(), 20);
    torchvision.retain(|(k, _)| !k.ends_with(".num_batches_tracked"));
    torchvision.sort();
    ours.sort();
    assert_eq!(ours, torchvision);
    // A state dict with the counters, as torchvision's checkpoints have them, loads.
    for (key, _) in counters {
        tensors.insert(key, Tensor::new(3f32, &Device::Cpu).unwrap());
    }
    Net::from_tensors(spec, &tensors, &path, &Device::Cpu).unwrap();
}
