//! Benchmark (not a test): one ConvNet-3 training step at batch 256 on 28 x 28 Fashion-MNIST
//! (forward + backward + SGD update) and the 10,000-image test pass. Median of several runs.
//!
//!     CARGO_TARGET_DIR=target-student cargo bench -p dmgd-student --bench train_step
//!
//! Compare with benches/student/train_step.py in the same session (benches/student/run.sh).

use candle_core::{Device, Tensor};
use dmgd_data::fashion_mnist::{self, Split};
use dmgd_student::nets::{Arch, Net, NetSpec, NormKind};
use dmgd_student::optim::{Optimizer, OptimizerKind};
use dmgd_student::protocol::Protocol;
use dmgd_student::train::train_step;
use dmgd_student::{Classifier, Normalization};
use std::path::Path;
use std::time::Instant;

const BATCH: usize = 256;
const STEPS: usize = 7;
const TEST_PASSES: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(fashion_mnist::DEFAULT_DIR);
    let train = fashion_mnist::load(dir, Split::Train)?;
    let test = fashion_mnist::load(dir, Split::Test)?;
    let batch = train.subset(&(0..BATCH).collect::<Vec<_>>());
    let normalization = Normalization::for_protocol(Protocol::Dc, 1)?;
    let x = Tensor::from_vec(
        normalization.apply(&batch),
        (BATCH, 1, 28, 28),
        &Device::Cpu,
    )?;
    let y: Vec<u32> = batch.labels.iter().map(|&l| l as u32).collect();

    let spec = NetSpec {
        arch: Arch::ConvNet { depth: 3 },
        norm: NormKind::Instance,
        input: train.shape,
        num_classes: 10,
    };
    let net = Net::new(spec, 0)?;
    let vars = net.trainable().into_iter().map(|(_, v)| v).collect();
    let mut opt = Optimizer::new(
        OptimizerKind::Sgd {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
        },
        vars,
    )?;

    train_step(&net, &mut opt, &x, &y)?; // warm-up
    let mut times = Vec::new();
    let mut last_loss = 0.0;
    for _ in 0..STEPS {
        let t = Instant::now();
        last_loss = train_step(&net, &mut opt, &x, &y)?;
        times.push(t.elapsed().as_secs_f64());
    }
    println!(
        "rust  train_step convnet3 batch {BATCH}: median {:.3} s over {STEPS} (min {:.3}, max {:.3}), loss {last_loss:.3}",
        median(times.clone()),
        times.iter().cloned().fold(f64::INFINITY, f64::min),
        times.iter().cloned().fold(0.0, f64::max)
    );

    let classifier = Classifier::new(net, normalization);
    let mut times = Vec::new();
    let mut acc = 0.0;
    for _ in 0..TEST_PASSES {
        let t = Instant::now();
        acc = classifier.accuracy(&test)?;
        times.push(t.elapsed().as_secs_f64());
    }
    println!(
        "rust  test_pass {} images: median {:.2} s over {TEST_PASSES} ({:.0} img/s), accuracy {acc:.2} %",
        test.len(),
        median(times.clone()),
        test.len() as f64 / median(times)
    );
    Ok(())
}
