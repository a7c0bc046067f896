//! Checks of the OT crate against independent f64 loop implementations written here
//! (cost, Sinkhorn, OT loss) and against central finite differences (the OT gradient).

use candle_core::{DType, Device, Tensor};
use dmgd_ot::cost::{project_to_sphere, sphere_cost};
use dmgd_ot::guidance::{ot_guidance, ot_guidance_batch, Memory};
use dmgd_ot::kmeans::{kmeans, KMeansParams};
use dmgd_ot::sinkhorn::{sinkhorn, SinkhornDomain, SinkhornParams};
use dmgd_ot::support::Support;
use dmgd_ot::OtError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

type Matrix = Vec<Vec<f64>>;

// ---------- f64 references: plain loops, nothing shared with the crate ----------

fn ref_unit(v: &[f64]) -> Vec<f64> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

/// C_ij = || a_i/|a_i| - k_j/|k_j| ||, by explicit differences.
fn ref_cost(a: &Matrix, k: &Matrix) -> Matrix {
    a.iter()
        .map(|ai| {
            let ai = ref_unit(ai);
            k.iter()
                .map(|kj| {
                    let kj = ref_unit(kj);
                    ai.iter()
                        .zip(&kj)
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum::<f64>()
                        .sqrt()
                })
                .collect()
        })
        .collect()
}

/// The reference's Sinkhorn (DESIGN §6) with explicit loops; returns (plan, loss).
fn ref_sinkhorn(c: &Matrix, a: &[f64], b: &[f64], eps: f64, n_iter: usize) -> (Matrix, f64) {
    let (n, k) = (c.len(), c[0].len());
    let mut g: Matrix = c
        .iter()
        .map(|row| row.iter().map(|x| (-x / eps).exp()).collect())
        .collect();
    for _ in 0..n_iter {
        for (row, a_i) in g.iter_mut().zip(a) {
            let s: f64 = row.iter().sum();
            for v in row.iter_mut() {
                *v *= a_i / s;
            }
        }
        for j in 0..k {
            let s: f64 = (0..n).map(|i| g[i][j]).sum();
            for row in g.iter_mut() {
                row[j] *= b[j] / s;
            }
        }
    }
    let loss = (0..n)
        .map(|i| (0..k).map(|j| g[i][j] * c[i][j]).sum::<f64>())
        .sum();
    (g, loss)
}

/// OT loss of the source memory ∪ {x0} (uniform masses) against a support.
fn ref_ot_loss(
    x0: &[f64],
    memory: &Matrix,
    points: &Matrix,
    masses: &[f64],
    eps: f64,
    n_iter: usize,
) -> f64 {
    let mut source = memory.clone();
    source.push(x0.to_vec());
    let a = vec![1.0 / source.len() as f64; source.len()];
    ref_sinkhorn(&ref_cost(&source, points), &a, masses, eps, n_iter).1
}

// ---------- helpers ----------

fn random_matrix(rng: &mut ChaCha20Rng, rows: usize, cols: usize) -> Matrix {
    (0..rows)
        .map(|_| (0..cols).map(|_| rng.gen_range(-1.0..1.0)).collect())
        .collect()
}

fn random_masses(rng: &mut ChaCha20Rng, n: usize) -> Vec<f64> {
    let raw: Vec<f64> = (0..n).map(|_| rng.gen_range(0.2..1.0)).collect();
    let total: f64 = raw.iter().sum();
    raw.iter().map(|x| x / total).collect()
}

fn tensor2(m: &Matrix, dtype: DType) -> Tensor {
    let (r, c) = (m.len(), m[0].len());
    Tensor::from_vec(m.concat(), (r, c), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn tensor1(v: &[f64], dtype: DType) -> Tensor {
    Tensor::from_vec(v.to_vec(), v.len(), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn host2(t: &Tensor) -> Matrix {
    t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap()
}

fn host1(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn params(eps: f64, n_iter: usize, domain: SinkhornDomain) -> SinkhornParams {
    SinkhornParams {
        eps,
        n_iter,
        domain,
    }
}

// ---------- cost ----------

#[test]
fn projection_gives_unit_rows() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let x = random_matrix(&mut rng, 4, 9);
    let p = host2(&project_to_sphere(&tensor2(&x, DType::F64)).unwrap());
    for (row, want) in p.iter().zip(&x) {
        assert!(max_abs_diff(row, &ref_unit(want)) < 1e-12);
    }
}

#[test]
fn cost_matches_f64_loop_in_f64_and_f32() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let a = random_matrix(&mut rng, 5, 7);
    let k = random_matrix(&mut rng, 3, 7);
    let want = ref_cost(&a, &k).concat();
    let c64 =
        host2(&sphere_cost(&tensor2(&a, DType::F64), &tensor2(&k, DType::F64)).unwrap()).concat();
    assert!(
        max_abs_diff(&c64, &want) < 1e-10,
        "f64 cost off by {}",
        max_abs_diff(&c64, &want)
    );
    let c32 =
        host2(&sphere_cost(&tensor2(&a, DType::F32), &tensor2(&k, DType::F32)).unwrap()).concat();
    assert!(
        max_abs_diff(&c32, &want) < 1e-5,
        "f32 cost off by {}",
        max_abs_diff(&c32, &want)
    );
}

#[test]
fn batched_cost_equals_per_problem_cost() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let (a0, a1) = (random_matrix(&mut rng, 4, 5), random_matrix(&mut rng, 4, 5));
    let (k0, k1) = (random_matrix(&mut rng, 2, 5), random_matrix(&mut rng, 2, 5));
    let a = Tensor::stack(&[tensor2(&a0, DType::F64), tensor2(&a1, DType::F64)], 0).unwrap();
    let k = Tensor::stack(&[tensor2(&k0, DType::F64), tensor2(&k1, DType::F64)], 0).unwrap();
    let c = sphere_cost(&a, &k).unwrap();
    assert_eq!(c.dims(), &[2, 4, 2]);
    assert!(
        max_abs_diff(
            &host2(&c.get(0).unwrap()).concat(),
            &ref_cost(&a0, &k0).concat()
        ) < 1e-10
    );
    assert!(
        max_abs_diff(
            &host2(&c.get(1).unwrap()).concat(),
            &ref_cost(&a1, &k1).concat()
        ) < 1e-10
    );
}

#[test]
fn cost_at_a_coincident_point_is_near_zero_with_finite_gradient() {
    // A source point equal (up to scale) to a support point: the sqrt sits at its kink.
    let k = Tensor::new(&[[1.0f32, 2.0, 3.0], [0.0, -1.0, 0.5]], &Device::Cpu).unwrap();
    let x = candle_core::Var::new(&[[2.0f32, 4.0, 6.0]], &Device::Cpu).unwrap();
    let c = sphere_cost(x.as_tensor(), &k).unwrap();
    let c_host = host2(&c);
    assert!(c_host[0][0] < 1e-3, "distance to itself {}", c_host[0][0]);
    assert!(c_host[0][1] > 0.5);
    let grads = c.sum_all().unwrap().backward().unwrap();
    let g = host2(grads.get(x.as_tensor()).unwrap()).concat();
    assert!(g.iter().all(|v| v.is_finite()), "gradient {g:?}");
}

// ---------- Sinkhorn ----------

#[test]
fn sinkhorn_matches_f64_loop_and_column_marginal_is_exact() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let c = ref_cost(
        &random_matrix(&mut rng, 6, 4),
        &random_matrix(&mut rng, 3, 4),
    );
    let a = random_masses(&mut rng, 6);
    let b = random_masses(&mut rng, 3);
    for n_iter in [1, 5, 20] {
        let (want_plan, want_loss) = ref_sinkhorn(&c, &a, &b, 0.1, n_iter);
        let t = sinkhorn(
            &tensor2(&c, DType::F64),
            &tensor1(&a, DType::F64),
            &tensor1(&b, DType::F64),
            &params(0.1, n_iter, SinkhornDomain::Plain),
        )
        .unwrap();
        let plan = host2(&t.plan);
        assert!(max_abs_diff(&plan.concat(), &want_plan.concat()) < 1e-14);
        let loss = t.loss.to_scalar::<f64>().unwrap();
        assert!(
            (loss - want_loss).abs() < 1e-13,
            "loss {loss} vs {want_loss}"
        );
        let col_sums: Vec<f64> = (0..3)
            .map(|j| plan.iter().map(|row| row[j]).sum())
            .collect();
        assert!(
            max_abs_diff(&col_sums, &b) < 1e-15,
            "column sums {col_sums:?} vs {b:?}"
        );
    }
}

#[test]
fn sinkhorn_row_marginal_approaches_a() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let c = ref_cost(
        &random_matrix(&mut rng, 5, 4),
        &random_matrix(&mut rng, 4, 4),
    );
    let a = random_masses(&mut rng, 5);
    let b = random_masses(&mut rng, 4);
    let row_error = |n_iter| {
        let t = sinkhorn(
            &tensor2(&c, DType::F64),
            &tensor1(&a, DType::F64),
            &tensor1(&b, DType::F64),
            &params(0.5, n_iter, SinkhornDomain::Plain),
        )
        .unwrap();
        let rows: Vec<f64> = host2(&t.plan).iter().map(|r| r.iter().sum()).collect();
        max_abs_diff(&rows, &a)
    };
    let (e1, e5, e200) = (row_error(1), row_error(5), row_error(200));
    assert!(
        e1 > 1e-4,
        "one round should leave a visible row error, got {e1}"
    );
    assert!(e5 < e1 && e200 < e5, "row errors {e1} {e5} {e200}");
    assert!(e200 < 1e-10, "row error after 200 rounds {e200}");
}

#[test]
fn sinkhorn_f32_matches_f64_loop() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let c = ref_cost(
        &random_matrix(&mut rng, 8, 6),
        &random_matrix(&mut rng, 5, 6),
    );
    let a = vec![1.0 / 8.0; 8];
    let b = random_masses(&mut rng, 5);
    let (want_plan, want_loss) = ref_sinkhorn(&c, &a, &b, 0.1, 5);
    let t = sinkhorn(
        &tensor2(&c, DType::F32),
        &tensor1(&a, DType::F32),
        &tensor1(&b, DType::F32),
        &SinkhornParams::default(),
    )
    .unwrap();
    assert!(max_abs_diff(&host2(&t.plan).concat(), &want_plan.concat()) < 1e-6);
    assert!(
        (t.loss
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            - want_loss)
            .abs()
            < 1e-5
    );
}

#[test]
fn log_domain_agrees_with_plain_at_moderate_eps() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let c = ref_cost(
        &random_matrix(&mut rng, 7, 5),
        &random_matrix(&mut rng, 4, 5),
    );
    let a = random_masses(&mut rng, 7);
    let b = random_masses(&mut rng, 4);
    let (c, a, b) = (
        tensor2(&c, DType::F64),
        tensor1(&a, DType::F64),
        tensor1(&b, DType::F64),
    );
    for eps in [0.5, 0.1, 0.05] {
        for n_iter in [1, 5, 30] {
            let plain = sinkhorn(&c, &a, &b, &params(eps, n_iter, SinkhornDomain::Plain)).unwrap();
            let log = sinkhorn(&c, &a, &b, &params(eps, n_iter, SinkhornDomain::Log)).unwrap();
            let diff = max_abs_diff(&host2(&plain.plan).concat(), &host2(&log.plan).concat());
            assert!(
                diff < 1e-12,
                "eps {eps} n_iter {n_iter}: plans differ by {diff}"
            );
        }
    }
}

#[test]
fn log_domain_survives_small_eps_where_plain_underflows() {
    // Costs near 2 with eps 0.002: exp(-C/eps) = exp(-1000) underflows to 0 even in f64.
    let c = Tensor::new(&[[1.9f64, 2.0], [1.95, 1.99], [2.0, 1.97]], &Device::Cpu).unwrap();
    let a = Tensor::new(&[0.2f64, 0.3, 0.5], &Device::Cpu).unwrap();
    let b = Tensor::new(&[0.6f64, 0.4], &Device::Cpu).unwrap();
    let plain = sinkhorn(&c, &a, &b, &params(0.002, 5, SinkhornDomain::Plain)).unwrap();
    assert!(
        host2(&plain.plan).concat().iter().any(|v| !v.is_finite()),
        "plain should break down here"
    );
    let log = sinkhorn(&c, &a, &b, &params(0.002, 5, SinkhornDomain::Log)).unwrap();
    let plan = host2(&log.plan);
    assert!(plan.concat().iter().all(|v| v.is_finite()));
    let col_sums: Vec<f64> = (0..2)
        .map(|j| plan.iter().map(|row| row[j]).sum())
        .collect();
    assert!(max_abs_diff(&col_sums, &[0.6, 0.4]) < 1e-12);
}

#[test]
fn batched_sinkhorn_equals_per_problem() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let cs: Vec<Matrix> = (0..3)
        .map(|_| {
            ref_cost(
                &random_matrix(&mut rng, 4, 3),
                &random_matrix(&mut rng, 2, 3),
            )
        })
        .collect();
    let as_: Vec<Vec<f64>> = (0..3).map(|_| random_masses(&mut rng, 4)).collect();
    let bs: Vec<Vec<f64>> = (0..3).map(|_| random_masses(&mut rng, 2)).collect();
    let stack2 = |ms: &[Matrix]| {
        Tensor::stack(
            &ms.iter()
                .map(|m| tensor2(m, DType::F64))
                .collect::<Vec<_>>(),
            0,
        )
        .unwrap()
    };
    let stack1 = |vs: &[Vec<f64>]| {
        Tensor::stack(
            &vs.iter()
                .map(|v| tensor1(v, DType::F64))
                .collect::<Vec<_>>(),
            0,
        )
        .unwrap()
    };
    for domain in [SinkhornDomain::Plain, SinkhornDomain::Log] {
        let t = sinkhorn(
            &stack2(&cs),
            &stack1(&as_),
            &stack1(&bs),
            &params(0.1, 5, domain),
        )
        .unwrap();
        let losses = host1(&t.loss);
        for i in 0..3 {
            let (want_plan, want_loss) = ref_sinkhorn(&cs[i], &as_[i], &bs[i], 0.1, 5);
            assert!(
                max_abs_diff(
                    &host2(&t.plan.get(i).unwrap()).concat(),
                    &want_plan.concat()
                ) < 1e-12
            );
            assert!((losses[i] - want_loss).abs() < 1e-12);
        }
    }
}

#[test]
fn sinkhorn_rejects_bad_shapes_and_params() {
    let c = Tensor::zeros((3, 2), DType::F64, &Device::Cpu).unwrap();
    let a = Tensor::ones(3, DType::F64, &Device::Cpu).unwrap();
    let b = Tensor::ones(3, DType::F64, &Device::Cpu).unwrap();
    assert!(matches!(
        sinkhorn(&c, &a, &b, &SinkhornParams::default()),
        Err(OtError::Shape { .. })
    ));
    let b = Tensor::ones(2, DType::F64, &Device::Cpu).unwrap();
    assert!(matches!(
        sinkhorn(&c, &a, &b, &params(0.0, 5, SinkhornDomain::Plain)),
        Err(OtError::InvalidParam { .. })
    ));
    assert!(matches!(
        sinkhorn(&c, &a, &b, &params(0.1, 0, SinkhornDomain::Plain)),
        Err(OtError::InvalidParam { .. })
    ));
}

// ---------- OT guidance ----------

struct Problem {
    x0: Vec<f64>,
    memory: Matrix,
    points: Matrix,
    masses: Vec<f64>,
}

fn random_problem(rng: &mut ChaCha20Rng, m: usize, k: usize, d: usize) -> Problem {
    Problem {
        x0: random_matrix(rng, 1, d).remove(0),
        memory: random_matrix(rng, m, d),
        points: random_matrix(rng, k, d),
        masses: random_masses(rng, k),
    }
}

fn to_parts(p: &Problem, dtype: DType) -> (Tensor, Memory, Support) {
    let mut memory = Memory::new();
    for row in &p.memory {
        memory.push(&tensor1(row, dtype)).unwrap();
    }
    let support = Support::new(tensor2(&p.points, dtype), tensor1(&p.masses, dtype)).unwrap();
    (tensor1(&p.x0, dtype), memory, support)
}

fn central_difference_gradient(p: &Problem, eps: f64, n_iter: usize) -> Vec<f64> {
    let h = 1e-6;
    (0..p.x0.len())
        .map(|i| {
            let (mut plus, mut minus) = (p.x0.clone(), p.x0.clone());
            plus[i] += h;
            minus[i] -= h;
            let f = |x: &[f64]| ref_ot_loss(x, &p.memory, &p.points, &p.masses, eps, n_iter);
            (f(&plus) - f(&minus)) / (2.0 * h)
        })
        .collect()
}

#[test]
fn ot_gradient_matches_central_differences() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for (m, k, d) in [(0, 4, 6), (3, 4, 6), (5, 2, 3)] {
        let p = random_problem(&mut rng, m, k, d);
        let (x0, memory, support) = to_parts(&p, DType::F64);
        for domain in [SinkhornDomain::Plain, SinkhornDomain::Log] {
            let g = ot_guidance(&x0, &memory, &support, &params(0.1, 5, domain)).unwrap();
            let loss = g.loss.to_scalar::<f64>().unwrap();
            let want_loss = ref_ot_loss(&p.x0, &p.memory, &p.points, &p.masses, 0.1, 5);
            assert!(
                (loss - want_loss).abs() < 1e-12,
                "M={m}: loss {loss} vs {want_loss}"
            );
            let grad = host1(&g.grad);
            let fd = central_difference_gradient(&p, 0.1, 5);
            let scale = fd.iter().map(|v| v.abs()).fold(0.0, f64::max);
            assert!(scale > 1e-3, "M={m}: gradient too small to test ({scale})");
            assert!(
                max_abs_diff(&grad, &fd) < 1e-6 * scale.max(1.0),
                "M={m} {domain:?}: autodiff {grad:?} vs FD {fd:?}"
            );
        }
    }
}

#[test]
fn ot_guidance_keeps_the_shape_of_x0_hat_and_works_in_f32() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let p = random_problem(&mut rng, 2, 3, 12);
    let (x0, memory, support) = to_parts(&p, DType::F32);
    let x0 = x0.reshape((3, 2, 2)).unwrap();
    let g = ot_guidance(&x0, &memory, &support, &SinkhornParams::default()).unwrap();
    assert_eq!(g.grad.dims(), &[3, 2, 2]);
    assert_eq!(g.loss.dims(), &[] as &[usize]);
    let fd = central_difference_gradient(&p, 0.1, 5);
    let grad = host1(&g.grad.flatten_all().unwrap());
    assert!(
        max_abs_diff(&grad, &fd) < 1e-4,
        "f32 gradient {grad:?} vs FD {fd:?}"
    );
}

#[test]
fn batched_guidance_equals_single_problems_with_mixed_memory_sizes() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    // Rows 0 and 2 share (M, K) = (2, 3); row 1 has an empty memory; row 3 has K = 2.
    let problems = [
        random_problem(&mut rng, 2, 3, 5),
        random_problem(&mut rng, 0, 3, 5),
        random_problem(&mut rng, 2, 3, 5),
        random_problem(&mut rng, 1, 2, 5),
    ];
    let parts: Vec<(Tensor, Memory, Support)> =
        problems.iter().map(|p| to_parts(p, DType::F64)).collect();
    let x0 = Tensor::stack(
        &parts.iter().map(|(x, _, _)| x.clone()).collect::<Vec<_>>(),
        0,
    )
    .unwrap();
    let memories: Vec<&Memory> = parts.iter().map(|(_, m, _)| m).collect();
    let supports: Vec<&Support> = parts.iter().map(|(_, _, s)| s).collect();
    let batch = ot_guidance_batch(&x0, &memories, &supports, &SinkhornParams::default()).unwrap();
    assert_eq!(batch.grad.dims(), &[4, 5]);
    let losses = host1(&batch.loss);
    for (i, (p, (x, memory, support))) in problems.iter().zip(&parts).enumerate() {
        let single = ot_guidance(x, memory, support, &SinkhornParams::default()).unwrap();
        assert!((losses[i] - single.loss.to_scalar::<f64>().unwrap()).abs() < 1e-14);
        assert!(max_abs_diff(&host1(&batch.grad.get(i).unwrap()), &host1(&single.grad)) < 1e-14);
        let want = ref_ot_loss(&p.x0, &p.memory, &p.points, &p.masses, 0.1, 5);
        assert!((losses[i] - want).abs() < 1e-12);
    }
}

#[test]
fn guidance_rejects_mismatched_dimensions() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let p = random_problem(&mut rng, 1, 2, 4);
    let (_, memory, support) = to_parts(&p, DType::F64);
    let x0 = Tensor::zeros(5, DType::F64, &Device::Cpu).unwrap();
    assert!(matches!(
        ot_guidance(&x0, &memory, &support, &SinkhornParams::default()),
        Err(OtError::Shape { .. })
    ));
}

// ---------- k-means and the support file ----------

/// Three tight blobs far apart, `per_blob` points each, in D = 16; blob of row i is i % 3.
fn three_blobs(per_blob: usize) -> Tensor {
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let centres = [-20.0, 0.0, 20.0];
    let mut data = Vec::new();
    for i in 0..3 * per_blob {
        for j in 0..16 {
            let base = if j % 2 == 0 {
                centres[i % 3]
            } else {
                -centres[i % 3]
            };
            data.push(base + rng.gen_range(-1.0f32..1.0));
        }
    }
    Tensor::from_vec(data, (3 * per_blob, 16), &Device::Cpu).unwrap()
}

#[test]
fn kmeans_recovers_separated_clusters_with_correct_masses() {
    // Uneven blob sizes: 40 + 40 + 40 points plus 30 extra points in blob 0 -> masses 70/150, 40/150, 40/150.
    let base = three_blobs(40);
    let extra = three_blobs(30)
        .narrow(0, 0, 90)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let extra: Vec<f32> = extra
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
        .flat_map(|(_, r)| r.clone())
        .collect();
    let x = Tensor::cat(
        &[
            base,
            Tensor::from_vec(extra, (30, 16), &Device::Cpu).unwrap(),
        ],
        0,
    )
    .unwrap();
    let fit = kmeans(
        &x,
        &KMeansParams {
            k: 3,
            seed: 7,
            ..KMeansParams::default()
        },
    )
    .unwrap();
    assert!(fit.converged);
    let truth: Vec<usize> = (0..150).map(|i| if i < 120 { i % 3 } else { 0 }).collect();
    // Same partition as the truth (up to renaming the clusters).
    for i in 0..150 {
        for j in 0..150 {
            assert_eq!(
                truth[i] == truth[j],
                fit.labels[i] == fit.labels[j],
                "points {i} and {j}"
            );
        }
    }
    let masses = host1(fit.support.masses());
    let total: f64 = masses.iter().sum();
    assert!((total - 1.0).abs() < 1e-6, "masses sum to {total}");
    let mut sorted = masses.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(max_abs_diff(&sorted, &[40.0 / 150.0, 40.0 / 150.0, 70.0 / 150.0]) < 1e-7);
    // Centres are the blob means.
    let points = host2(fit.support.points());
    let data = host2(&x);
    for (c, centre) in points.iter().enumerate() {
        let members: Vec<&Vec<f64>> = data
            .iter()
            .zip(&fit.labels)
            .filter(|(_, &l)| l == c)
            .map(|(r, _)| r)
            .collect();
        let mean: Vec<f64> = (0..16)
            .map(|j| members.iter().map(|r| r[j]).sum::<f64>() / members.len() as f64)
            .collect();
        assert!(max_abs_diff(centre, &mean) < 1e-4);
    }
}

#[test]
fn kmeans_is_deterministic_per_seed() {
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let data: Vec<f32> = (0..200 * 8).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let x = Tensor::from_vec(data, (200, 8), &Device::Cpu).unwrap();
    let run = |seed| {
        kmeans(
            &x,
            &KMeansParams {
                k: 6,
                seed,
                ..KMeansParams::default()
            },
        )
        .unwrap()
    };
    let (a, b, c) = (run(1), run(1), run(2));
    assert_eq!(a.labels, b.labels);
    assert_eq!(host2(a.support.points()), host2(b.support.points()));
    assert_eq!(host1(a.support.masses()), host1(b.support.masses()));
    // Uniform noise has no clear clusters: another seed lands elsewhere.
    assert_ne!(a.labels, c.labels);
    let total: f64 = host1(a.support.masses()).iter().sum();
    assert!((total - 1.0).abs() < 1e-6);
}

#[test]
fn kmeans_fills_empty_clusters_when_points_repeat() {
    // 6 points but only 2 distinct values, K = 4: duplicates force empty clusters.
    let x = Tensor::new(
        &[
            [0.0f64, 0.0],
            [0.0, 0.0],
            [0.0, 0.0],
            [0.0, 0.0],
            [5.0, 5.0],
            [5.0, 5.0],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let fit = kmeans(
        &x,
        &KMeansParams {
            k: 4,
            seed: 3,
            ..KMeansParams::default()
        },
    )
    .unwrap();
    let masses = host1(fit.support.masses());
    assert!(masses.iter().all(|&m| m > 0.0), "masses {masses:?}");
    assert!((masses.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let mut counts = vec![0; 4];
    for &l in &fit.labels {
        counts[l] += 1;
    }
    assert!(counts.iter().all(|&c| c >= 1), "cluster sizes {counts:?}");
}

#[test]
fn kmeans_with_more_clusters_than_points_names_both_numbers() {
    let x = Tensor::zeros((4, 3), DType::F32, &Device::Cpu).unwrap();
    let err = kmeans(
        &x,
        &KMeansParams {
            k: 7,
            ..KMeansParams::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, OtError::TooManyClusters { k: 7, n: 4 }));
    let message = err.to_string();
    assert!(message.contains('7') && message.contains('4'), "{message}");
}

#[test]
fn support_round_trips_through_safetensors() {
    let fit = kmeans(
        &three_blobs(10),
        &KMeansParams {
            k: 3,
            ..KMeansParams::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("support.safetensors");
    fit.support.save(&path).unwrap();
    let loaded = Support::load(&path, &Device::Cpu).unwrap();
    assert_eq!(host2(loaded.points()), host2(fit.support.points()));
    assert_eq!(host1(loaded.masses()), host1(fit.support.masses()));
    assert_eq!((loaded.len(), loaded.dim()), (3, 16));

    let other = dir.path().join("other.safetensors");
    let only_points = std::collections::HashMap::from([("points", fit.support.points().clone())]);
    candle_core::safetensors::save(&only_points, &other).unwrap();
    assert!(matches!(
        Support::load(&other, &Device::Cpu),
        Err(OtError::MissingKey { key: "masses", .. })
    ));
}

// ---------- PyTorch parity (oracle: oracle/ot_guidance.py, torch 2.15, float64) ----------
//
// The oracle, in short (inputs are closed-form, rebuilt below):
//     source = torch.cat([memory, x0[None]]); source = source / source.norm(dim=1, keepdim=True)
//     cost = torch.cdist(source, points / points.norm(dim=1, keepdim=True), p=2)
//     g = exp(-cost / 0.1); 5 x { g *= (a / g.sum(1))[:, None]; g *= (masses / g.sum(0))[None, :] }
//     loss = (g * cost).sum(); loss.backward(); x0.grad

// with_memory
const TORCH_LOSS_WITH_MEMORY: f64 = 1.1049321327667703;
const TORCH_GRAD_WITH_MEMORY: [f64; 6] = [
    0.027247456285109453,
    0.023015903025397452,
    -0.029333645570150266,
    -0.05232261408088028,
    -0.045273725361956285,
    -0.07553278810669369,
];
// empty_memory
const TORCH_LOSS_EMPTY_MEMORY: f64 = 1.2055517456365008;
const TORCH_GRAD_EMPTY_MEMORY: [f64; 6] = [
    -0.05824666868299513,
    -0.016384154626990888,
    -0.16037023404829082,
    -0.17428355194162784,
    -0.06843290597325699,
    -0.14009229509500543,
];

fn torch_oracle_problem() -> Problem {
    let (m, k, d) = (3, 4, 6);
    let memory = (0..m)
        .map(|i| {
            (0..d)
                .map(|j| (1.3 * i as f64 + 0.7 * j as f64 + 0.1).sin())
                .collect()
        })
        .collect();
    let points = (0..k)
        .map(|k| {
            (0..d)
                .map(|j| (0.9 * k as f64 - 0.4 * j as f64 + 0.3).cos())
                .collect()
        })
        .collect();
    let raw: Vec<f64> = (0..k).map(|k| 1.0 + 0.5 * (k as f64 + 1.0).sin()).collect();
    let total: f64 = raw.iter().sum();
    let masses = raw.iter().map(|v| v / total).collect();
    let x0 = (0..d).map(|j| (2.1 * j as f64 - 0.5).sin() + 0.3).collect();
    Problem {
        x0,
        memory,
        points,
        masses,
    }
}

#[test]
fn ot_guidance_matches_pytorch_autograd() {
    let mut p = torch_oracle_problem();
    for (loss_want, grad_want) in [
        (TORCH_LOSS_WITH_MEMORY, TORCH_GRAD_WITH_MEMORY),
        (TORCH_LOSS_EMPTY_MEMORY, TORCH_GRAD_EMPTY_MEMORY),
    ] {
        let (x0, memory, support) = to_parts(&p, DType::F64);
        let g = ot_guidance(&x0, &memory, &support, &SinkhornParams::default()).unwrap();
        let loss = g.loss.to_scalar::<f64>().unwrap();
        assert!(
            (loss - loss_want).abs() < 1e-12,
            "M={}: loss {loss} vs torch {loss_want}",
            p.memory.len()
        );
        let grad = host1(&g.grad);
        assert!(
            max_abs_diff(&grad, &grad_want) < 1e-12,
            "M={}: {grad:?} vs torch {grad_want:?}",
            p.memory.len()
        );
        p.memory.clear();
    }
}
