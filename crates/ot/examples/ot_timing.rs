//! Times the OT pieces at DMGD's real sizes on the CPU: k-means over one ImageNet class
//! (N = 1300 latents of D = 4 x 32 x 32 = 4096; `--large` for N = 13,000) and one OT guidance
//! call for a batch of B = 10 classes with M = 49 earlier images and K = 10 support points.
//!
//! Run: `cargo run --release -p dmgd-ot --example ot_timing [-- --large]`

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use dmgd_ot::guidance::{ot_guidance_batch, Memory};
use dmgd_ot::kmeans::{kmeans, KMeansParams};
use dmgd_ot::sinkhorn::SinkhornParams;
use dmgd_ot::support::Support;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::Cpu;
    let n = if std::env::args().any(|a| a == "--large") {
        13_000
    } else {
        1_300
    };
    let d = 4096;

    // k-means on one class's latents:
    let latents = Tensor::randn(0f32, 1.0, (n, d), &device)?; // (N, D)
    let start = Instant::now();
    let fit = kmeans(&latents, &KMeansParams::default())?;
    println!(
        "k-means N={n} D={d} K=10: {:.2} s, {} iterations, converged {}",
        start.elapsed().as_secs_f64(),
        fit.iterations,
        fit.converged
    );

    // OT guidance for a batch of classes:
    let (b, m) = (10, 49);
    let supports: Vec<Support> = (0..b)
        .map(|_| {
            Support::new(
                Tensor::randn(0f32, 1.0, (10, d), &device)?,
                Tensor::full(0.1f32, 10, &device)?,
            )
        })
        .collect::<Result<_, _>>()?;
    let mut memories = vec![Memory::new(); b];
    for memory in &mut memories {
        for _ in 0..m {
            memory.push(&Tensor::randn(0f32, 1.0, (4, 32, 32), &device)?)?;
        }
    }
    let x0_hat = Tensor::randn(0f32, 1.0, (b, 4, 32, 32), &device)?; // (B, C, H, W)
    let memory_refs: Vec<&Memory> = memories.iter().collect();
    let support_refs: Vec<&Support> = supports.iter().collect();
    let params = SinkhornParams::default();
    ot_guidance_batch(&x0_hat, &memory_refs, &support_refs, &params)?; // warm-up
    let reps = 10;
    let start = Instant::now();
    for _ in 0..reps {
        let out = ot_guidance_batch(&x0_hat, &memory_refs, &support_refs, &params)?;
        assert_eq!(out.grad.dtype(), DType::F32);
    }
    println!(
        "OT guidance B={b} M={m} K=10 D={d}: {:.1} ms per call",
        start.elapsed().as_secs_f64() * 1e3 / reps as f64
    );
    Ok(())
}
