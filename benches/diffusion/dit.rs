//! DiT benchmark (docs/BENCH-diffusion.md): forward and training-step times at the shipped
//! model's size (DiT-Ti/4, 28x28x1, 10 classes) and at DiT-S/2 (32x32x4, 1000 classes), and
//! the peak RSS of DiT-XL/2 CFG sampling at batch 2 with random weights.
//!
//!     cargo bench -p dmgd-diffusion --bench dit -- forward-ti4|train-ti4|forward-s2|train-s2|xl2-sample
//!
//! Prints one JSON line per workload: median seconds over the repeats.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use dmgd_data::{ImageSet, ImageShape};
use dmgd_diffusion::dit::{Cfg, CfgChannels, Dit, DitConfig};
use dmgd_diffusion::gaussian::GaussianDiffusion;
use dmgd_diffusion::train::{TrainConfig, Trainer};
use rand::SeedableRng;
use std::time::Instant;

// The dmgd binary's allocator and settings, so that the timings are the product's.
#[path = "../../crates/cli/src/allocator.rs"]
mod allocator;
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn model(name: &str) -> DitConfig {
    match name {
        "ti4" => DitConfig::preset("DiT-Ti/4", 28, 1, 10).unwrap(),
        "s2" => DitConfig::preset("DiT-S/2", 32, 4, 1000).unwrap(),
        _ => panic!("unknown model {name}"),
    }
}

fn batch_size(name: &str) -> usize {
    if name == "ti4" {
        32
    } else {
        8
    }
}

/// A DiT with random weights held as plain tensors, as a loaded checkpoint holds them (weights
/// that are `Var`s make every op record its graph, which sampling would keep alive).
fn random_dit(cfg: &DitConfig) -> Dit {
    let varmap = VarMap::new();
    let init = Dit::init(
        cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let tensors = init
        .state_dict()
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.detach().copy().unwrap()))
        .collect();
    drop(init);
    drop(varmap);
    Dit::load(
        cfg,
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
    )
    .unwrap()
}

fn forward(name: &str, repeats: usize) -> f64 {
    let cfg = model(name);
    let n = batch_size(name);
    let dit = random_dit(&cfg);
    let x = Tensor::randn(
        0f32,
        1.,
        (n, cfg.in_channels, cfg.input_size, cfg.input_size),
        &Device::Cpu,
    )
    .unwrap();
    let t = Tensor::full(500f32, n, &Device::Cpu).unwrap();
    let y: Vec<usize> = (0..n).map(|i| i % cfg.num_classes).collect();
    dit.forward(&x, &t, &y).unwrap(); // warm-up
    median(
        (0..repeats)
            .map(|_| {
                let s = Instant::now();
                dit.forward(&x, &t, &y).unwrap();
                s.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn train(name: &str, repeats: usize) -> f64 {
    let cfg = model(name);
    let n = batch_size(name);
    let shape = ImageShape {
        channels: cfg.in_channels,
        height: cfg.input_size,
        width: cfg.input_size,
    };
    let count = 64;
    let data = ImageSet {
        shape,
        pixels: (0..count * shape.numel())
            .map(|i| (i * 31 % 256) as u8)
            .collect(),
        labels: (0..count).map(|i| i % cfg.num_classes).collect(),
        class_names: (0..cfg.num_classes).map(|k| k.to_string()).collect(),
    };
    let tc = TrainConfig {
        model: cfg,
        batch_size: n,
        steps: usize::MAX,
        lr: 1e-4,
        weight_decay: 0.0,
        ema_decay: 0.9999,
        class_dropout_prob: 0.1,
        horizontal_flip: true,
        seed: 0,
        checkpoint_every: usize::MAX,
        snapshot_every: 0,
        holdout_per_class: 0,
        dataset_fingerprint: String::new(),
        init: None,
    };
    let mut trainer = Trainer::new(tc, &Device::Cpu).unwrap();
    trainer.train_step(&data).unwrap(); // warm-up
    median(
        (0..repeats)
            .map(|_| {
                let s = Instant::now();
                trainer.train_step(&data).unwrap();
                s.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Fused ops (dmgd_diffusion::ops) against candle's composed ops, forward + backward, at the
/// activation sizes of a DiT-Ti/4 training step at batch 32: one line per op.
fn ops(repeats: usize) {
    use candle_core::{Var, D};
    use dmgd_kernels::dit::{gelu_tanh, layer_norm_no_affine, softmax_last_dim};
    let time = |shape: (usize, usize), f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>| {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., shape, &Device::Cpu).unwrap()).unwrap();
        let g = Tensor::randn(0f32, 1., shape, &Device::Cpu).unwrap();
        median(
            (0..repeats + 1)
                .map(|_| {
                    let s = Instant::now();
                    let y = f(x.as_tensor()).unwrap();
                    (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                    s.elapsed().as_secs_f64()
                })
                .collect(),
        )
    };
    let composed_ln = |x: &Tensor| {
        let mean = x.mean_keepdim(D::Minus1)?;
        let xc = x.broadcast_sub(&mean)?;
        let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
        xc.broadcast_div(&(var + 1e-6)?.sqrt()?)
    };
    let composed_softmax = |x: &Tensor| {
        let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
        e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
    };
    let tokens = 32 * 49;
    let rows: [(&str, (usize, usize), f64, f64); 3] = [
        (
            "gelu-tanh (1568x1024)",
            (tokens, 1024),
            time((tokens, 1024), &gelu_tanh),
            time((tokens, 1024), &|x: &Tensor| x.gelu()),
        ),
        (
            "layer-norm (1568x256)",
            (tokens, 256),
            time((tokens, 256), &|x: &Tensor| layer_norm_no_affine(x, 1e-6)),
            time((tokens, 256), &composed_ln),
        ),
        (
            "softmax (6272x49)",
            (32 * 4 * 49, 49),
            time((32 * 4 * 49, 49), &softmax_last_dim),
            time((32 * 4 * 49, 49), &composed_softmax),
        ),
    ];
    for (name, _, fused, composed) in rows {
        println!("{{\"impl\": \"candle\", \"workload\": \"op {name} fwd+bwd\", \"fused_s\": {fused:.5}, \"composed_s\": {composed:.5}}}");
    }
}

/// VmHWM (peak resident set) of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1024.0
}

fn main() {
    allocator::keep_freed_memory();
    let workload = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "forward-ti4".into());
    let repeats: usize = std::env::var("REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let threads = std::env::var("CANDLE_NUM_THREADS").unwrap_or_else(|_| "default".into());
    let (seconds, extra) = match workload.as_str() {
        "forward-ti4" => (forward("ti4", repeats), String::new()),
        "train-ti4" => (train("ti4", repeats), String::new()),
        "forward-s2" => (forward("s2", repeats), String::new()),
        "train-s2" => (train("s2", repeats), String::new()),
        "ops" => {
            ops(repeats);
            return;
        }
        "xl2-sample" => {
            // Two CFG model calls at batch 2 (model batch 4), random weights: the cost of two
            // sampling steps (the step arithmetic around them is negligible at this size).
            let cfg = DitConfig::preset("DiT-XL/2", 32, 4, 1000).unwrap();
            let dit = random_dit(&cfg);
            let after_init = peak_rss_mib();
            let diffusion = GaussianDiffusion::new("2").unwrap();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            let guidance = Cfg {
                scale: 4.0,
                channels: CfgChannels::FirstThree,
            };
            let x =
                dmgd_diffusion::gaussian::randn(&mut rng, &[2, 4, 32, 32], dit.device()).unwrap();
            let y = dit.cfg_label_embedding(&[1, 2]).unwrap();
            let s = Instant::now();
            for i in (0..diffusion.num_steps()).rev() {
                let t = diffusion.model_timesteps(i, 2, dit.device()).unwrap();
                dit.forward_with_cfg(&x, &t, &y, &guidance).unwrap();
            }
            (
                s.elapsed().as_secs_f64() / 2.0,
                format!(
                    ", \"peak_rss_mib_after_init\": {after_init:.0}, \"peak_rss_mib\": {:.0}",
                    peak_rss_mib()
                ),
            )
        }
        other => panic!("unknown workload {other}"),
    };
    println!("{{\"impl\": \"candle\", \"workload\": \"{workload}\", \"threads\": \"{threads}\", \"median_s\": {seconds:.4}{extra}}}");
}
