//! Whether a device computes what the CPU computes, and how fast: the check to run on a GPU
//! machine before trusting it (`dmgd device-check`). The same inputs and weights go to the CPU
//! and to the device; each output is compared by its largest absolute difference. Then the
//! paper's workloads are timed on the device alone: ResNetAP-10 / ResNet-18 training steps at
//! 224 px, DiT-XL/2 (random weights) CFG forwards, and whole 50-step plain-DiT and DMGD
//! sampling, for one class and batched across 10 classes.

use crate::EvalError;
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use dmgd_data::ImageShape;
use dmgd_diffusion::dit::{Cfg, CfgChannels, Dit, DitConfig};
use dmgd_diffusion::gaussian::GaussianDiffusion;
use dmgd_distill::config::{DistillConfig, Method};
use dmgd_distill::sampler::{ClassState, Sampler};
use dmgd_kernels::{self as ops, ConvParams, MaxPoolParams, NormParams, NormStats, Precision};
use dmgd_ot::guidance::Memory;
use dmgd_ot::support::Support;
use dmgd_student::nets::{Arch, Net, NetSpec, NormKind};
use dmgd_student::optim::{Optimizer, OptimizerKind};
use dmgd_student::train::train_step;
use rand::SeedableRng;
use serde::Serialize;
use std::time::Instant;

/// One output on the CPU and on the device.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub what: String,
    pub max_abs_diff: f32,
    /// The largest |value| on the CPU, for scale.
    pub max_abs: f32,
}

/// One workload on the device: median seconds per call.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub what: String,
    pub seconds: f64,
    pub repeats: usize,
    /// DiT rows: seconds per image of a 50-step sampling (a forward counts as one step).
    pub per_image: Option<f64>,
}

type Result<T> = std::result::Result<T, EvalError>;

/// Normal values from `seed`, on the CPU (the same on every machine).
fn randn(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let normal = rand_distr::StandardNormal;
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| rand_distr::Distribution::<f32>::sample(&normal, &mut rng))
        .collect();
    Ok(Tensor::from_vec(values, shape, &Device::Cpu)?)
}

fn max_abs(t: &Tensor) -> Result<f32> {
    Ok(t.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

/// Compares `f` on the CPU and on `device` for inputs `inputs` (CPU tensors): the output, and
/// the gradient of `sum(output * probe)` with respect to every input.
fn compare_op(
    what: &str,
    device: &Device,
    inputs: &[Tensor],
    f: &dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>,
    out: &mut Vec<Difference>,
) -> Result<()> {
    let run = |device: &Device| -> Result<(Tensor, Vec<Tensor>)> {
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(&t.to_device(device)?))
            .collect::<candle_core::Result<_>>()?;
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let y = f(&tensors)?;
        let probe = randn(y.dims(), 99)?.to_device(device)?;
        let grads: GradStore = (&y * &probe)?.sum_all()?.backward()?;
        let grads = vars
            .iter()
            .map(|v| match grads.get(v.as_tensor()) {
                Some(g) => g.to_device(&Device::Cpu),
                None => v.as_tensor().zeros_like()?.to_device(&Device::Cpu),
            })
            .collect::<candle_core::Result<_>>()?;
        Ok((y.to_device(&Device::Cpu)?, grads))
    };
    let (cpu_y, cpu_grads) = run(&Device::Cpu)?;
    let (dev_y, dev_grads) = run(device)?;
    let mut push = |name: String, a: &Tensor, b: &Tensor| -> Result<()> {
        out.push(Difference {
            what: name,
            max_abs_diff: max_abs(&(a - b)?)?,
            max_abs: max_abs(a)?,
        });
        Ok(())
    };
    push(format!("{what}: forward"), &cpu_y, &dev_y)?;
    for (k, (a, b)) in cpu_grads.iter().zip(&dev_grads).enumerate() {
        push(format!("{what}: gradient of input {k}"), a, b)?;
    }
    Ok(())
}

/// A DiT with random weights (seeded) as plain tensors on `device`, as a loaded checkpoint is.
fn random_dit(cfg: &DitConfig, seed: u64, device: &Device) -> Result<Dit> {
    let tensors = cfg
        .expected_shapes()
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let t = (randn(&shape, seed + k as u64)? * 0.02)?.to_device(device)?;
            Ok((name, t))
        })
        .collect::<Result<std::collections::HashMap<_, _>>>()?;
    Ok(Dit::load(
        cfg,
        VarBuilder::from_tensors(tensors, DType::F32, device),
    )?)
}

fn cfg_forward(dit: &Dit, n: usize, seed: u64) -> Result<Tensor> {
    let c = &dit.config;
    let device = dit.device().clone();
    let x = randn(&[n, c.in_channels, c.input_size, c.input_size], seed)?.to_device(&device)?;
    let t = Tensor::full(500f32, n, &device)?;
    let y: Vec<usize> = (0..n).map(|i| i % c.num_classes).collect();
    let cfg = Cfg {
        scale: 4.0,
        channels: CfgChannels::FirstThree,
    };
    Ok(dit.forward_with_cfg(&x, &t, &dit.cfg_label_embedding(&y)?, &cfg)?)
}

/// `classes` classes' first image by `method` (DMGD: Semantic Matching and OT guidance towards
/// K = 10 random support points; or plain DiT sampling) in `steps` steps: final latents.
fn guided_sample(dit: &Dit, method: Method, classes: usize, steps: usize) -> Result<Tensor> {
    let config = DistillConfig {
        method,
        steps,
        ..DistillConfig::default()
    };
    let c = &dit.config;
    let d = c.in_channels * c.input_size * c.input_size;
    let device = dit.device();
    let mut states = Vec::with_capacity(classes);
    for class in 0..classes {
        let support = match method {
            Method::Dmgd => {
                let points = randn(&[10, d], 40 + class as u64)?.to_device(device)?;
                let masses = Tensor::full(0.1f32, 10, device)?;
                let support = Support::new(points, masses).map_err(candle_core::Error::wrap)?;
                Some(support)
            }
            _ => None,
        };
        states.push(ClassState {
            class,
            label: class,
            memory: Memory::new(),
            support,
            modes: None,
        });
    }
    let labels: Vec<usize> = (0..classes).collect();
    let diffusion = GaussianDiffusion::new(&config.respacing())?;
    let sampler = Sampler {
        dit,
        diffusion: &diffusion,
        config: &config,
        cfg: config.cfg(),
        run_labels: &labels,
        clip_denoised: false,
    };
    sampler.sample(&states, 0).map_err(sample_error)
}

fn sample_error(e: dmgd_distill::sampler::SampleError) -> EvalError {
    EvalError::Tensor(candle_core::Error::wrap(e))
}

/// A student's parameters after one SGD step from the same initial values, and its loss.
fn student_step(spec: NetSpec, device: &Device) -> Result<(f32, Vec<Tensor>)> {
    let net = Net::new_on(spec, 0, device)?;
    let vars = net.trainable().into_iter().map(|(_, v)| v).collect();
    let kind = OptimizerKind::Sgd {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 5e-4,
    };
    let mut opt = Optimizer::new(kind, vars)?;
    let s = spec.input;
    let x = randn(&[8, s.channels, s.height, s.width], 7)?.to_device(device)?;
    let y: Vec<u32> = (0..8).map(|i| i % spec.num_classes as u32).collect();
    let loss = train_step(&net, &mut opt, &x, &y)?;
    let params = net
        .trainable()
        .into_iter()
        .map(|(_, v)| v.as_tensor().to_device(&Device::Cpu))
        .collect::<candle_core::Result<_>>()?;
    Ok((loss, params))
}

/// Every op of the kernel crate, a small DiT's CFG forward and one training step of two
/// students, on the CPU and on `device`.
pub fn differences(device: &Device) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    for (stride, padding) in [(1, 1), (2, 1), (2, 3)] {
        let p = ConvParams { stride, padding };
        compare_op(
            &format!("conv2d 3->4 k3 stride {stride} padding {padding}"),
            device,
            &[
                randn(&[2, 3, 9, 9], 1)?,
                randn(&[4, 3, 3, 3], 2)?,
                randn(&[4], 3)?,
            ],
            &|t| ops::conv2d(&t[0], &t[1], Some(&t[2]), p),
            &mut out,
        )?;
    }
    for (stats, name) in [
        (NormStats::Instance, "instance"),
        (NormStats::Batch, "batch"),
    ] {
        for (relu, pool) in [(false, 1), (true, 2)] {
            let p = NormParams {
                stats,
                eps: 1e-5,
                relu,
                pool,
            };
            compare_op(
                &format!("{name} norm relu {relu} pool {pool}"),
                device,
                &[randn(&[2, 4, 8, 8], 4)?, randn(&[4], 5)?, randn(&[4], 6)?],
                &|t| ops::norm(&t[0], &t[1], &t[2], p),
                &mut out,
            )?;
        }
    }
    compare_op(
        "avg_pool2d 2",
        device,
        &[randn(&[2, 3, 8, 8], 7)?],
        &|t| ops::avg_pool2d(&t[0], 2),
        &mut out,
    )?;
    let max_pool = MaxPoolParams {
        kernel: 3,
        stride: 2,
        padding: 1,
    };
    compare_op(
        "max_pool2d 3/2/1",
        device,
        &[randn(&[2, 3, 9, 9], 8)?],
        &|t| ops::max_pool2d(&t[0], max_pool),
        &mut out,
    )?;

    // A small DiT, CFG forward at batch 2 (the attention, GELU, LayerNorm and adaLN ops):
    let cfg = DitConfig {
        preset: "custom".into(),
        input_size: 8,
        patch_size: 2,
        in_channels: 4,
        hidden_size: 64,
        depth: 2,
        num_heads: 4,
        mlp_ratio: 4.0,
        num_classes: 10,
        learn_sigma: true,
    };
    let cpu = cfg_forward(&random_dit(&cfg, 11, &Device::Cpu)?, 2, 12)?;
    let dev = cfg_forward(&random_dit(&cfg, 11, device)?, 2, 12)?.to_device(&Device::Cpu)?;
    out.push(Difference {
        what: "DiT (8x8x4, hidden 64, depth 2) CFG forward, batch 2".into(),
        max_abs_diff: max_abs(&(&cpu - &dev)?)?,
        max_abs: max_abs(&cpu)?,
    });
    // The same in bf16 on both (bf16 sampling), and the device's bf16 against the CPU's f32.
    let bf16 = |d: &Device| -> Result<Dit> { Ok(random_dit(&cfg, 11, d)?.to_dtype(DType::BF16)?) };
    let cpu_bf16 = cfg_forward(&bf16(&Device::Cpu)?, 2, 12)?;
    let dev = cfg_forward(&bf16(device)?, 2, 12)?.to_device(&Device::Cpu)?;
    for (what, reference) in [
        ("bf16 on both", &cpu_bf16),
        ("bf16 against the CPU's f32", &cpu),
    ] {
        out.push(Difference {
            what: format!("that DiT's CFG forward, {what}"),
            max_abs_diff: max_abs(&(reference - &dev)?)?,
            max_abs: max_abs(reference)?,
        });
    }
    // The guided loop with that DiT: 5 DMGD steps for 2 classes (noise drawn on the CPU).
    let cpu = guided_sample(&random_dit(&cfg, 11, &Device::Cpu)?, Method::Dmgd, 2, 5)?;
    let dev = guided_sample(&random_dit(&cfg, 11, device)?, Method::Dmgd, 2, 5)?;
    let dev = dev.to_device(&Device::Cpu)?;
    out.push(Difference {
        what: "DMGD sampling with that DiT, 5 steps, 2 classes: final latents".into(),
        max_abs_diff: max_abs(&(&cpu - &dev)?)?,
        max_abs: max_abs(&cpu)?,
    });

    // One SGD step of two students from the same initial weights:
    for (arch, size) in [(Arch::ConvNet { depth: 3 }, 28), (Arch::ResNet18, 32)] {
        let spec = NetSpec {
            arch,
            norm: NormKind::Instance,
            input: ImageShape {
                channels: if size == 28 { 1 } else { 3 },
                height: size,
                width: size,
            },
            num_classes: 10,
        };
        let (cpu_loss, cpu_params) = student_step(spec, &Device::Cpu)?;
        let (dev_loss, dev_params) = student_step(spec, device)?;
        out.push(Difference {
            what: format!("{arch} {size}px training step: loss"),
            max_abs_diff: (cpu_loss - dev_loss).abs(),
            max_abs: cpu_loss.abs(),
        });
        let mut diff: f32 = 0.0;
        let mut scale: f32 = 0.0;
        for (a, b) in cpu_params.iter().zip(&dev_params) {
            diff = diff.max(max_abs(&(a - b)?)?);
            scale = scale.max(max_abs(a)?);
        }
        out.push(Difference {
            what: format!("{arch} {size}px training step: parameters after it"),
            max_abs_diff: diff,
            max_abs: scale,
        });
    }
    Ok(out)
}

fn median_seconds(
    repeats: usize,
    device: &Device,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    f()?; // warm-up (kernel loading, allocator)
    device.synchronize()?;
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        f()?;
        device.synchronize()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

/// The paper's workloads on `device`: ResNetAP-10 and ResNet-18 training steps at 224 px
/// (batch 64, AdamW), and DiT-XL/2 (256 px: 32x32x4 latents, random weights) CFG forwards at
/// batch 1 and 10 and whole 50-step samplings, in f32, with TF32 matmuls and in bf16. `log`
/// hears each result as it comes.
pub fn timings(
    device: &Device,
    repeats: usize,
    log: &mut dyn FnMut(&Timing),
) -> Result<Vec<Timing>> {
    let mut out = Vec::new();
    let mut record = |what, seconds, repeats, per_image, out: &mut Vec<Timing>| {
        let t = Timing {
            what,
            seconds,
            repeats,
            per_image,
        };
        log(&t);
        out.push(t);
    };
    for arch in [Arch::ResNetAp10, Arch::ResNet18] {
        let spec = NetSpec {
            arch,
            norm: NormKind::Instance,
            input: ImageShape {
                channels: 3,
                height: 224,
                width: 224,
            },
            num_classes: 10,
        };
        let net = Net::new_on(spec, 0, device)?;
        let vars = net.trainable().into_iter().map(|(_, v)| v).collect();
        let kind = OptimizerKind::AdamW {
            lr: 1e-3,
            weight_decay: 0.01,
        };
        let mut opt = Optimizer::new(kind, vars)?;
        let x = randn(&[64, 3, 224, 224], 1)?.to_device(device)?;
        let y: Vec<u32> = (0..64).map(|i| i % 10).collect();
        let seconds = median_seconds(repeats, device, || {
            train_step(&net, &mut opt, &x, &y)?;
            Ok(())
        })?;
        let what = format!("{arch} 224px training step, batch 64, AdamW");
        record(what, seconds, repeats, None, &mut out);
    }
    let cfg = DitConfig::preset("DiT-XL/2", 32, 4, 1000)?;
    let dit_f32 = random_dit(&cfg, 21, device)?;
    for precision in [Precision::F32, Precision::Tf32, Precision::Bf16] {
        candle_core::cuda::set_gemm_reduced_precision_f32(precision == Precision::Tf32);
        let dit = dit_f32.to_dtype(precision.dtype())?;
        let name = serde_json::to_value(precision).expect("a name");
        let name = name.as_str().expect("a string");
        for n in [1, 10] {
            let seconds = median_seconds(repeats, device, || {
                cfg_forward(&dit, n, 3)?;
                Ok(())
            })?;
            let what = format!("DiT-XL/2 256px CFG forward ({name}), {n} image(s)");
            record(
                what,
                seconds,
                repeats,
                Some(50.0 * seconds / n as f64),
                &mut out,
            );
        }
        // Whole 50-step sampling: plain DiT and DMGD, one class and ten classes in one batch.
        for classes in [1, 10] {
            for (method, label) in [(Method::Dit, "plain DiT"), (Method::Dmgd, "DMGD")] {
                // One timed run after the warm-up: a whole sampling is long enough to time once.
                let seconds = median_seconds(1, device, || {
                    guided_sample(&dit, method, classes, 50)?;
                    Ok(())
                })?;
                let what =
                    format!("DiT-XL/2 {label} sampling, 50 steps ({name}), {classes} image(s)");
                record(what, seconds, 1, Some(seconds / classes as f64), &mut out);
            }
        }
    }
    candle_core::cuda::set_gemm_reduced_precision_f32(false);
    Ok(out)
}

/// The whole check of `device` (named `name`): the differences, then (`repeats`: Some) the
/// timings, each told to `log` as it comes; the Markdown report.
pub fn check(
    device: &Device,
    name: &str,
    repeats: Option<usize>,
    log: &mut dyn FnMut(&str),
) -> Result<String> {
    let differences = differences(device)?;
    for d in &differences {
        let (what, diff, max) = (&d.what, d.max_abs_diff, d.max_abs);
        log(&format!(
            "{what}: max abs difference {diff:.3e} (values up to {max:.3e})"
        ));
    }
    let timings = match repeats {
        Some(repeats) => timings(device, repeats, &mut |t| {
            log(&format!("{}: {:.4} s", t.what, t.seconds))
        })?,
        None => Vec::new(),
    };
    Ok(markdown(name, &differences, &timings))
}

/// The results as Markdown: differences, then timings with their 50-step cost per image.
pub fn markdown(device: &str, differences: &[Difference], timings: &[Timing]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "### {device} against the CPU\n\n| output | max abs difference | max abs value |\n|---|---|---|");
    for d in differences {
        let _ = writeln!(
            s,
            "| {} | {:.3e} | {:.3e} |",
            d.what, d.max_abs_diff, d.max_abs
        );
    }
    let _ = writeln!(s, "\n### Timings on {device} (median)\n\n| workload | seconds | 50 steps per image |\n|---|---|---|");
    for t in timings {
        let per_image = t.per_image.map_or("-".into(), |p| format!("{p:.3} s"));
        let _ = writeln!(s, "| {} | {:.4} | {per_image} |", t.what, t.seconds);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the CPU against itself every difference is zero: the comparison runs end to end
    /// and compares like with like (same inputs, same weights); bf16 against f32 differs by
    /// bf16's rounding only.
    #[test]
    fn the_cpu_agrees_with_itself() {
        let diffs = differences(&Device::Cpu).unwrap();
        assert!(diffs.len() >= 30, "{}", diffs.len());
        for d in &diffs {
            assert!(d.max_abs > 0.0, "{}", d.what);
            if d.what.contains("against the CPU's f32") {
                let relative = d.max_abs_diff / d.max_abs;
                assert!(relative > 0.0 && relative < 0.05, "{}: {relative}", d.what);
            } else {
                assert_eq!(d.max_abs_diff, 0.0, "{}", d.what);
            }
        }
        let timing = Timing {
            what: "DiT-XL/2 256px CFG forward (f32), 10 image(s)".into(),
            seconds: 0.1,
            repeats: 5,
            per_image: Some(0.5),
        };
        let md = markdown("cpu", &diffs, &[timing]);
        assert!(md.contains("max_pool2d 3/2/1: gradient of input 0"), "{md}");
        assert!(md.contains("| 0.1000 | 0.500 s |"), "{md}");
    }
}
