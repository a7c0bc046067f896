//! Benchmark (not a test): one training step of the ImageNet-protocol students at 224 px
//! (random input, AdamW), to size a Minimax run on this CPU. Wall and CPU seconds per step.
//!
//!     CARGO_TARGET_DIR=target-student cargo bench -p dmgd-student --bench imagenet_step -- [BATCH] [NETS...]

use candle_core::{Device, Tensor};
use dmgd_data::ImageShape;
use dmgd_student::nets::{Net, NetSpec, NormKind};
use dmgd_student::optim::{Optimizer, OptimizerKind};
use dmgd_student::train::train_step;
use std::time::Instant;

#[path = "cpu_time.rs"]
mod cpu_time;
use cpu_time::cpu_seconds;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let batch: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(64);
    let names: Vec<&str> = if args.len() > 1 {
        args[1..].iter().map(|s| s.as_str()).collect()
    } else {
        vec!["resnetap10", "resnet18", "convnet6"]
    };
    let input = ImageShape {
        channels: 3,
        height: 224,
        width: 224,
    };
    let x = Tensor::randn(0f32, 1., (batch, 3, 224, 224), &Device::Cpu)?;
    let y: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    for name in names {
        let spec = NetSpec {
            arch: name.parse()?,
            norm: NormKind::Instance,
            input,
            num_classes: 10,
        };
        let net = Net::new(spec, 0)?;
        let vars = net.trainable().into_iter().map(|(_, v)| v).collect();
        let mut opt = Optimizer::new(
            OptimizerKind::AdamW {
                lr: 1e-3,
                weight_decay: 0.01,
            },
            vars,
        )?;
        train_step(&net, &mut opt, &x, &y)?; // warm-up
        let (t, cpu) = (Instant::now(), cpu_seconds());
        let loss = train_step(&net, &mut opt, &x, &y)?;
        println!(
            "{name} ({} params) batch {batch} at 224 px: step {:.1} s wall, {:.1} s CPU, loss {loss:.3}",
            net.num_params(),
            t.elapsed().as_secs_f64(),
            cpu_seconds() - cpu
        );
    }
    Ok(())
}
