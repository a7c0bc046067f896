//! Parity with the PyTorch oracle `oracle/dit_oracle.py` (a DiT + IDDPM written from
//! docs/METHOD.md): forward pass, timestep embedding, position table, respaced betas, CFG, one DDPM
//! step and a 50-step CFG sample of a tiny random-weight DiT. Regenerate the fixtures with
//! `${PYTHON:-python3} oracle/dit_oracle.py` (packages: oracle/requirements.txt).

use candle_core::{Device, Tensor};
use dmgd_diffusion::checkpoint::{infer_config, load_dit, read_tensors};
use dmgd_diffusion::dit::{
    pos_embed_2d, timestep_frequency_embedding, Cfg, CfgChannels, Dit, FREQUENCY_EMBEDDING_SIZE,
};
use dmgd_diffusion::gaussian::GaussianDiffusion;
use dmgd_kernels::testing::{max_abs, max_abs_diff};
use std::collections::HashMap;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn io() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture("dit_tiny_io.safetensors"), &Device::Cpu).unwrap()
}

/// The tiny oracle model: width 64 is no preset, so the heads (4) are given.
fn tiny_dit() -> Dit {
    let path = fixture("dit_tiny.safetensors");
    let tensors = read_tensors(&path, &Device::Cpu).unwrap();
    let cfg = infer_config(&tensors, &path, Some(4)).unwrap();
    load_dit(&path, Some(&cfg), &Device::Cpu).unwrap()
}

fn labels(t: &Tensor) -> Vec<usize> {
    t.to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|v| v as usize)
        .collect()
}

#[test]
fn forward_matches_the_oracle() {
    let io = io();
    let dit = tiny_dit();
    assert_eq!(
        (
            dit.config.hidden_size,
            dit.config.depth,
            dit.config.patch_size
        ),
        (64, 2, 2)
    );
    assert_eq!(
        (
            dit.config.input_size,
            dit.config.in_channels,
            dit.config.num_classes
        ),
        (8, 4, 5)
    );
    let out = dit.forward(&io["x"], &io["t"], &labels(&io["y"])).unwrap();
    let err = max_abs_diff(&out, &io["out"]);
    assert!(err <= 1e-4, "forward max abs err {err}");
}

#[test]
fn a_config_without_a_preset_asks_for_the_heads() {
    let err = load_dit(&fixture("dit_tiny.safetensors"), None, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dit_tiny.safetensors") && err.contains("heads"),
        "{err}"
    );
}

#[test]
fn timestep_embedding_and_pos_table_match_the_oracle() {
    let io = io();
    let emb = timestep_frequency_embedding(&io["t_freq_in"], FREQUENCY_EMBEDDING_SIZE).unwrap();
    let err = max_abs_diff(&emb, &io["t_freq"]);
    assert!(err <= 1e-4, "frequency embedding err {err}");
    let table = pos_embed_2d(64, 4, &Device::Cpu).unwrap();
    let err = max_abs_diff(&table, &io["pos_table"]);
    assert!(err <= 1e-6, "pos table err {err}");
}

#[test]
fn respaced_schedule_matches_the_oracle() {
    let io = io();
    let d = GaussianDiffusion::new("50").unwrap();
    let betas = io["betas50"].to_vec1::<f64>().unwrap();
    let log_var = io["log_var_clipped50"].to_vec1::<f64>().unwrap();
    for i in 0..50 {
        assert!((d.betas[i] - betas[i]).abs() < 1e-12, "beta {i}");
        assert!(
            (d.posterior_log_variance_clipped[i] - log_var[i]).abs() < 1e-9,
            "log var {i}"
        );
    }
}

#[test]
fn cfg_and_one_ddpm_step_match_the_oracle() {
    let io = io();
    let dit = tiny_dit();
    let y = labels(&io["cfg_y"]);
    let y_emb = dit.cfg_label_embedding(&y[..2]).unwrap();
    let t = Tensor::full(700f32, 2, &Device::Cpu).unwrap();
    let cfg = Cfg {
        scale: 4.0,
        channels: CfgChannels::FirstThree,
    };
    let out = dit
        .forward_with_cfg(&io["cfg_x"], &t, &y_emb, &cfg)
        .unwrap();
    let err = max_abs_diff(&out, &io["cfg_out"]);
    assert!(err <= 1e-4, "cfg output err {err}");

    let d = GaussianDiffusion::new("50").unwrap();
    let pred = d.predict(&io["cfg_out"], &io["cfg_x"], 30).unwrap();
    assert_eq!(pred.timestep, 612);
    for (name, ours) in [
        ("step_x0", &pred.x0_hat),
        ("step_mean", &pred.mean),
        ("step_log_var", &pred.log_variance),
    ] {
        let err = max_abs_diff(ours, &io[name]);
        assert!(err <= 1e-4, "{name} err {err}");
    }
    let next = d.ddpm_step(&pred, &io["step_z"]).unwrap();
    let err = max_abs_diff(&next, &io["step_out"]);
    assert!(err <= 1e-4, "step err {err}");
}

#[test]
fn fifty_step_cfg_sample_matches_the_oracle() {
    let io = io();
    let dit = tiny_dit();
    let d = GaussianDiffusion::new("50").unwrap();
    let y = labels(&io["sample_y"]);
    let y_emb = dit.cfg_label_embedding(&y).unwrap();
    let cfg = Cfg {
        scale: 4.0,
        channels: CfgChannels::FirstThree,
    };
    let noise = &io["sample_noise"]; // (50, N, C, H, W), in loop order (index 49 first)
    let mut x = io["sample_xT"].clone();
    for (k, i) in (0..d.num_steps()).rev().enumerate() {
        let t = d.model_timesteps(i, y.len(), &Device::Cpu).unwrap();
        let out = dit.forward_with_cfg(&x, &t, &y_emb, &cfg).unwrap();
        let pred = d.predict(&out, &x, i).unwrap();
        x = d.ddpm_step(&pred, &noise.get(k).unwrap()).unwrap();
    }
    // 50 steps of f32 arithmetic with guidance scale 4 amplify rounding: compare relative to
    // the sample's magnitude.
    let err = max_abs_diff(&x, &io["sample"]);
    let scale = max_abs(&io["sample"]);
    assert!(
        err <= 1e-4 * scale.max(1.0),
        "50-step sample err {err} (max |x| {scale})"
    );
}

#[test]
fn hybrid_training_loss_matches_the_oracle() {
    let io = io();
    let d = GaussianDiffusion::new("").unwrap();
    let t: Vec<usize> = labels(&io["loss_t"]);
    let x_t = d.q_sample(&io["loss_x0"], &t, &io["loss_noise"]).unwrap();
    assert!(max_abs_diff(&x_t, &io["loss_x_t"]) <= 1e-5);
    let (loss, mse, vb) = d
        .training_losses(&io["loss_out"], &io["loss_x0"], &x_t, &io["loss_noise"], &t)
        .unwrap();
    for (name, ours) in [("loss", &loss), ("loss_mse", &mse), ("loss_vb", &vb)] {
        let err = max_abs_diff(ours, &io[name]);
        let scale = max_abs(&io[name]);
        assert!(
            err <= 1e-4 * scale.max(1.0),
            "{name}: err {err} (max {scale})"
        );
    }
}

/// bf16 sampling's model: the same forward with weights and activations in bfloat16 (8-bit
/// mantissas) stays within bf16's rounding of the f32 oracle, and really is another
/// computation (an f32 run reproduces the oracle to 1e-4).
#[test]
fn a_bf16_forward_stays_within_bf16_rounding_of_the_oracle() {
    let io = io();
    let dit = tiny_dit().to_dtype(candle_core::DType::BF16).unwrap();
    assert_eq!(dit.dtype(), candle_core::DType::BF16);
    let out = dit.forward(&io["x"], &io["t"], &labels(&io["y"])).unwrap();
    assert_eq!(out.dtype(), candle_core::DType::F32);
    let (err, scale) = (max_abs_diff(&out, &io["out"]), max_abs(&io["out"]));
    eprintln!("bf16 forward: max abs err {err}, max |out| {scale}");
    assert!(
        err <= 2e-2 * scale,
        "bf16 forward err {err} (max |out| {scale})"
    );
    assert!(err > 1e-4, "bf16 gave the f32 result: was it run in bf16?");
}
