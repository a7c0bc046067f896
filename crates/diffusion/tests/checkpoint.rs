//! Checkpoint loading: `.pt` read as data with the pickle allow-list, strict key/shape errors,
//! configuration inference, official key names. The `.pt` fixtures come from
//! `oracle/pt_fixtures.py`.

use candle_core::{Device, Tensor};
use dmgd_diffusion::checkpoint::{check_keys, infer_config, load_dit, read_tensors};
use dmgd_diffusion::dit::DitConfig;
use dmgd_kernels::testing::max_abs_diff;
use std::collections::HashMap;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn a_pickle_that_calls_os_system_is_refused_naming_the_global() {
    let marker = std::path::Path::new("/tmp/dmgd-evil-ran");
    let _ = std::fs::remove_file(marker);
    let err = read_tensors(&fixture("evil.pt"), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("posix.system") && err.contains("evil.pt"),
        "{err}"
    );
    assert!(!marker.exists(), "the payload ran");
}

#[test]
fn pt_and_safetensors_give_the_same_tensors() {
    let pt = read_tensors(&fixture("dit_tiny.pt"), &Device::Cpu).unwrap();
    let st = read_tensors(&fixture("dit_tiny.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(pt.len(), st.len());
    for (k, v) in &st {
        assert_eq!(max_abs_diff(v, &pt[k]), 0.0, "{k}");
    }
    let cfg = infer_config(&pt, &fixture("dit_tiny.pt"), Some(4)).unwrap();
    let dit = load_dit(&fixture("dit_tiny.pt"), Some(&cfg), &Device::Cpu).unwrap();
    assert_eq!(dit.blocks.len(), 2);
}

#[test]
fn missing_unexpected_and_misshaped_keys_are_all_named() {
    let path = fixture("dit_tiny.safetensors");
    let mut tensors: HashMap<String, Tensor> = read_tensors(&path, &Device::Cpu).unwrap();
    let cfg = infer_config(&tensors, &path, Some(4)).unwrap();
    tensors.remove("blocks.1.mlp.fc2.bias");
    tensors.insert(
        "blocks.0.attn.proj.weight".into(),
        Tensor::zeros((64, 63), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    tensors.insert(
        "extra.weight".into(),
        Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let err = check_keys(&cfg, &tensors, &path).unwrap_err().to_string();
    assert!(
        err.contains("missing key blocks.1.mlp.fc2.bias (expected shape [64])"),
        "{err}"
    );
    assert!(
        err.contains("blocks.0.attn.proj.weight: expected shape [64, 64], found [64, 63]"),
        "{err}"
    );
    assert!(err.contains("unexpected key extra.weight"), "{err}");
    assert!(
        err.contains("dit_tiny.safetensors") && err.contains("3 problem(s)"),
        "{err}"
    );
}

#[test]
fn an_official_layout_infers_its_preset() {
    // DiT-S/8 on 32x32x4 latents with 1000 classes, built from the official key list.
    let cfg = DitConfig::preset("DiT-S/8", 32, 4, 1000).unwrap();
    let tensors: HashMap<String, Tensor> = cfg
        .expected_shapes()
        .into_iter()
        .map(|(k, s)| {
            (
                k,
                Tensor::zeros(s, candle_core::DType::F32, &Device::Cpu).unwrap(),
            )
        })
        .collect();
    let path = std::path::Path::new("official.pt");
    let inferred = infer_config(&tensors, path, None).unwrap();
    assert_eq!(inferred, cfg);
    // Naming the head count the preset has keeps the preset's name; another one does not.
    assert_eq!(
        infer_config(&tensors, path, Some(cfg.num_heads)).unwrap(),
        cfg
    );
    let other = infer_config(&tensors, path, Some(cfg.num_heads * 2)).unwrap();
    assert_eq!(
        (other.preset.as_str(), other.num_heads),
        ("custom", cfg.num_heads * 2)
    );
}

/// A training checkpoint as DiT's train.py saves it ({"model", "ema", "opt", "args"}, `args`
/// an argparse.Namespace) loads its `ema` entry by default, or the entry named; a missing
/// entry is named with the ones there are; one whose `args` would run code is still refused.
#[test]
fn a_training_checkpoint_loads_its_ema_or_a_named_entry() {
    use dmgd_diffusion::checkpoint::{read_entry, resolve_entry};
    let path = fixture("dit_tiny_train.pt");
    let plain = read_tensors(&fixture("dit_tiny.safetensors"), &Device::Cpu).unwrap();
    let ema = read_tensors(&path, &Device::Cpu).unwrap();
    assert_eq!(resolve_entry(&path, None).unwrap().as_deref(), Some("ema"));
    let model = read_entry(&path, Some("model"), &Device::Cpu).unwrap();
    assert_eq!(ema.len(), plain.len());
    for (key, t) in &plain {
        let expected = t
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap();
        let e = ema[key].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let m = model[key].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(e, expected.to_vec1::<f32>().unwrap(), "{key}: ema");
        let plus_one: Vec<f32> = e.iter().map(|x| x + 1.0).collect();
        assert_eq!(m, plus_one, "{key}: model is ema + 1 in the fixture");
    }
    // The whole DiT loads strictly from the default entry (the tiny model is no preset: its
    // head count is given).
    let cfg = infer_config(&ema, &path, Some(4)).unwrap();
    load_dit(&path, Some(&cfg), &Device::Cpu).unwrap();

    let err = read_entry(&path, Some("emma"), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`emma`") && err.contains("ema, model, opt"),
        "{err}"
    );
    let err = read_entry(&fixture("dit_tiny.pt"), Some("ema"), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("plain state dict"), "{err}");

    let _ = std::fs::remove_file("/tmp/dmgd-evil-ran");
    let err = read_tensors(&fixture("evil_train.pt"), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("posix.system") || err.contains("os.system"),
        "{err}"
    );
    assert!(!std::path::Path::new("/tmp/dmgd-evil-ran").exists());
}
