//! Benchmark (not a test): per-op forward and backward times of ConvNet-3's layers at batch
//! 256, to see where a training step goes.
//!
//!     CARGO_TARGET_DIR=target-student cargo bench -p dmgd-student --bench layer_times

use candle_core::{Device, Tensor, Var};
use dmgd_kernels::{self as ops, ConvParams, NormParams, NormStats};
use std::time::Instant;

#[path = "cpu_time.rs"]
mod cpu_time;
use cpu_time::cpu_seconds;

fn time(label: &str, mut f: impl FnMut()) {
    f();
    const REPS: usize = 5;
    let cpu0 = cpu_seconds();
    let mut v: Vec<f64> = (0..REPS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let cpu_ms = (cpu_seconds() - cpu0) * 1e3 / REPS as f64;
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{label:<42} wall median {:8.1} ms   cpu mean {cpu_ms:8.1} ms",
        v[REPS / 2]
    );
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let n = 256;
    for (c_in, size, pad) in [(1usize, 28usize, 3usize), (128, 16, 1), (128, 8, 1)] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (n, c_in, size, size), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.05, (128, c_in, 3, 3), &dev)?)?;
        let b = Var::from_tensor(&Tensor::zeros(128, candle_core::DType::F32, &dev)?)?;
        let p = ConvParams {
            stride: 1,
            padding: pad,
        };
        let y = ops::conv2d(&x, &w, Some(&b), p)?;
        let tag = format!("{c_in}x{size}x{size}");
        time(&format!("conv fwd {tag}"), || {
            drop(ops::conv2d(&x, &w, Some(&b), p).unwrap())
        });
        time(&format!("conv fwd+bwd {tag}"), || {
            drop(
                ops::conv2d(&x, &w, Some(&b), p)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap(),
            )
        });
        let g = Var::from_tensor(&Tensor::ones(128, candle_core::DType::F32, &dev)?)?;
        let np = NormParams {
            stats: NormStats::Instance,
            eps: 1e-5,
            relu: true,
            pool: 2,
        };
        let yv = Var::from_tensor(&y)?;
        time(&format!("norm+relu+pool fwd {:?}", y.dims()), || {
            drop(ops::norm(&yv, &g, &b, np).unwrap())
        });
        time(&format!("norm+relu+pool fwd+bwd {:?}", y.dims()), || {
            drop(
                ops::norm(&yv, &g, &b, np)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap(),
            )
        });
        time(&format!("avgpool fwd+bwd {:?}", y.dims()), || {
            drop(
                ops::avg_pool2d(&yv, 2)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap(),
            )
        });
        time(&format!("sum_all+backward only {:?}", y.dims()), || {
            drop(yv.sum_all().unwrap().backward().unwrap())
        });
    }
    // The same work with candle's own ops, for comparison.
    let x = Var::from_tensor(&Tensor::randn(0f32, 1., (n, 128, 32, 32), &dev)?)?;
    let g = Var::from_tensor(&Tensor::ones(
        (1, 128, 1, 1),
        candle_core::DType::F32,
        &dev,
    )?)?;
    let b = Var::from_tensor(&Tensor::zeros(
        (1, 128, 1, 1),
        candle_core::DType::F32,
        &dev,
    )?)?;
    let composed = || -> candle_core::Result<Tensor> {
        let mean = x.mean_keepdim((2, 3))?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim((2, 3))?;
        let y = centred
            .broadcast_div(&(var + 1e-5)?.sqrt()?)?
            .broadcast_mul(&g)?
            .broadcast_add(&b)?;
        y.relu()?.avg_pool2d(2)
    };
    time(
        "candle composed norm+relu+pool fwd [256, 128, 32, 32]",
        || drop(composed().unwrap()),
    );
    time("candle composed norm+relu+pool fwd+bwd", || {
        drop(composed().unwrap().sum_all().unwrap().backward().unwrap())
    });
    let small = 8;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1., (small, 128, 16, 16), &dev)?)?;
    let w = Var::from_tensor(&Tensor::randn(0f32, 0.05, (128, 128, 3, 3), &dev)?)?;
    let p = ConvParams {
        stride: 1,
        padding: 1,
    };
    time("ours   conv 128x16x16 batch 8 fwd+bwd", || {
        drop(
            ops::conv2d(&x, &w, None, p)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap(),
        )
    });
    time("candle conv 128x16x16 batch 8 fwd+bwd", || {
        drop(
            x.conv2d(&w, 1, 1, 1, 1)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap(),
        )
    });
    Ok(())
}
