//! Benchmark (not a test): one soft-label training step of the RDED protocol on 28 x 28
//! Fashion-MNIST: ConvNet-3 teacher forward (eval mode) + ConvNet-3 student forward, KL at
//! T = 20, backward, AdamW 1e-3 with decay 0.01 on the conv and linear weights only. Batches
//! 50 and 100 (IPC 10 and 50 of the protocol). Median of several steps.
//!
//!     CARGO_TARGET_DIR=target-student cargo bench -p dmgd-student --bench soft_step
//!
//! Compare with benches/student/soft_step.py in the same session (benches/student/run.sh).

use candle_core::{Device, Tensor};
use dmgd_data::fashion_mnist::{self, Split};
use dmgd_student::nets::{Arch, Net, NetSpec, NormKind};
use dmgd_student::protocol::{Protocol, TrainConfig};
use dmgd_student::train::{optimizer_for, soft_train_step, SoftTargets};
use dmgd_student::Normalization;
use std::path::Path;
use std::time::Instant;

const STEPS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let train = fashion_mnist::load(Path::new(fashion_mnist::DEFAULT_DIR), Split::Train)?;
    let spec = NetSpec {
        arch: Arch::ConvNet { depth: 3 },
        norm: NormKind::Instance,
        input: train.shape,
        num_classes: 10,
    };
    // Loaded from a file, as `eval --teacher` loads it (for inference: no graph recorded).
    let dir = std::env::temp_dir().join(format!("dmgd-soft-step-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("teacher.safetensors");
    Net::new(spec, 1)?.save(&file)?;
    let teacher = Net::load(spec, &file)?;
    std::fs::remove_dir_all(&dir)?;
    for batch in [50, 100] {
        let images = train.subset(&(0..batch).collect::<Vec<_>>());
        let normalization = Normalization::for_protocol(Protocol::Rded, 1)?;
        let x = Tensor::from_vec(
            normalization.apply(&images),
            (batch, 1, 28, 28),
            &Device::Cpu,
        )?;
        let cfg = TrainConfig::rded(spec.arch, 10, 10, 0);
        let net = Net::new(spec, 0)?;
        let mut opt = optimizer_for(&cfg, &net)?;
        let soft = SoftTargets {
            teacher: &teacher,
            temperature: 20.0,
        };
        soft_train_step(&net, &mut opt, &x, soft)?; // warm-up
        let mut times = Vec::new();
        let mut loss = 0.0;
        for _ in 0..STEPS {
            let t = Instant::now();
            loss = soft_train_step(&net, &mut opt, &x, soft)?;
            times.push(t.elapsed().as_secs_f64());
        }
        println!(
            "rust  soft_step convnet3 batch {batch}: median {:.4} s over {STEPS} (min {:.4}), loss {loss:.5}",
            median(times.clone()),
            times.iter().cloned().fold(f64::INFINITY, f64::min)
        );
        // Its parts: the teacher's forward alone, and a hard-label step of the student.
        let teacher_forward = median(
            (0..STEPS)
                .map(|_| {
                    let t = Instant::now();
                    teacher.forward(&x, false).unwrap();
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        );
        let y: Vec<u32> = images.labels.iter().map(|&l| l as u32).collect();
        let hard_step = median(
            (0..STEPS)
                .map(|_| {
                    let t = Instant::now();
                    dmgd_student::train::train_step(&net, &mut opt, &x, &y).unwrap();
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        );
        println!("rust    of which: teacher forward {teacher_forward:.4} s; a hard-label step {hard_step:.4} s");
    }
    Ok(())
}
