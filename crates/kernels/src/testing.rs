//! Helpers of the tests (the kernels' own, and other crates' with the `testing` feature):
//! seeded inputs and the distance between two results.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};

/// A standard-normal tensor from `seed`.
pub fn randn(shape: &[usize], seed: u64) -> Tensor {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..shape.iter().product())
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// max |t| over every element, in f32.
pub fn max_abs(t: &Tensor) -> f32 {
    let t = t.to_dtype(candle_core::DType::F32).unwrap();
    let abs = t.abs().unwrap().flatten_all().unwrap();
    abs.max(0).unwrap().to_scalar::<f32>().unwrap()
}

/// max |a - b| over every element, in f32; the shapes must agree.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let f32 = |t: &Tensor| t.to_dtype(candle_core::DType::F32).unwrap();
    max_abs(&(f32(a) - f32(b)).unwrap())
}

/// The gradients of sum(y * probe): a backward pass with `probe` as the upstream gradient.
pub fn probe_grads(y: &Tensor, probe: &Tensor) -> GradStore {
    (y * probe).unwrap().sum_all().unwrap().backward().unwrap()
}
