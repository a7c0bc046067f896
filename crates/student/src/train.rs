//! Training a fresh student on a (distilled) set and testing it: the recipe every protocol
//! shares, with augmentation and schedule taken from the `TrainConfig`, and hard labels or a
//! teacher's soft ones.

use crate::augment::{dsa, minimax, rded};
use crate::classifier::{Classifier, Normalization};
use crate::nets::{Net, NetSpec};
use crate::protocol::{Augment, Protocol, TrainConfig};
use crate::report::{Progress, RunReport};
use crate::soft_label::soft_label_kl;
use crate::StudentError;
use candle_core::{Device, Tensor};
use dmgd_data::preprocess::Resize;
use dmgd_data::{ImageSet, ImageShape};
use dmgd_kernels::optim::Optimizer;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::time::Instant;

/// A trained student and the report of its run.
pub struct Trained {
    pub report: RunReport,
    pub classifier: Classifier,
}

/// The input the net sees: the training images' shape (DC), 224 x 224 crops (Minimax), or
/// crops of `rded::crop_size` (RDED). The test images must have this shape.
pub fn net_input(cfg: &TrainConfig, train: ImageShape) -> ImageShape {
    let square = |size| ImageShape {
        channels: train.channels,
        height: size,
        width: size,
    };
    match cfg.augment {
        Augment::Minimax => square(minimax::CROP_SIZE),
        Augment::Rded => square(rded::crop_size(train.height.min(train.width))),
        Augment::None | Augment::Dsa => train,
    }
}

/// How the test images reach `net_input`'s shape: the Minimax protocol resizes and crops
/// them to 224 px; RDED's crops of ImageNet size come from a 256 px short side; else they
/// are read as they are (and must have the net's shape).
pub fn test_resize(cfg: &TrainConfig, train: ImageShape) -> Option<Resize> {
    let size = net_input(cfg, train).height;
    match cfg.protocol {
        Protocol::Minimax => Some(Resize::CenterCrop(size)),
        Protocol::Rded => {
            rded::test_short_side(size).map(|short| Resize::CenterCropOf { short, size })
        }
        Protocol::Dc => None,
    }
}

/// One training batch: normalised, augmented input and the label weights for the loss.
struct Batch {
    x: Tensor,
    /// Labels, and for CutMix the partner labels with the weight of the original ones.
    y: Vec<u32>,
    mix: Option<(Vec<u32>, f32)>,
}

fn make_batch(
    cfg: &TrainConfig,
    train: &ImageSet,
    normalization: &Normalization,
    normalized: &[f32],
    indices: &[usize],
    input: ImageShape,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<Batch, StudentError> {
    let n = indices.len();
    let (c, h, w) = (input.channels, input.height, input.width);
    let y: Vec<u32> = indices.iter().map(|&i| train.labels[i] as u32).collect();
    let image = input.numel();
    let (x, mix) = match cfg.augment {
        Augment::None | Augment::Dsa => {
            let mut x = Vec::with_capacity(n * image);
            for &i in indices {
                x.extend_from_slice(&normalized[i * image..(i + 1) * image]);
            }
            if cfg.augment == Augment::Dsa {
                dsa::augment_batch(&mut x, n, c, h, w, rng);
            }
            (x, None)
        }
        Augment::Minimax | Augment::Rded => {
            let s = train.shape;
            let seeds: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
            let images: Vec<Vec<f32>> = indices
                .par_iter()
                .zip(seeds)
                .map(|(&i, seed)| {
                    let rng = &mut ChaCha8Rng::seed_from_u64(seed);
                    let (c, h, w) = (s.channels, s.height, s.width);
                    match cfg.augment {
                        Augment::Rded => rded::transform(
                            train.image(i),
                            (c, h, w),
                            input.height,
                            normalization,
                            rng,
                        ),
                        _ => minimax::transform(train.image(i), c, h, w, rng),
                    }
                })
                .collect();
            let mut x = images.concat();
            let (partner, ratio) = minimax::cutmix(&mut x, n, c, h, w, rng);
            let y_b = partner.iter().map(|&j| y[j]).collect();
            (x, Some((y_b, ratio)))
        }
    };
    Ok(Batch {
        x: Tensor::from_vec(x, (n, c, h, w), device)?,
        y,
        mix,
    })
}

/// The frozen teacher of soft-label training and its temperature.
#[derive(Clone, Copy)]
pub struct SoftTargets<'a> {
    pub teacher: &'a Net,
    pub temperature: f64,
}

/// Soft labels: KL to the teacher's tempered softmax of the same (mixed) batch. Hard labels:
/// cross-entropy, or for CutMix ratio * CE(y) + (1 - ratio) * CE(y_partner).
fn loss(logits: &Tensor, batch: &Batch, soft: Option<SoftTargets>) -> candle_core::Result<Tensor> {
    if let Some(soft) = soft {
        let teacher = soft.teacher.forward(&batch.x, false)?.detach();
        return soft_label_kl(logits, &teacher, soft.temperature);
    }
    let targets = |y: &[u32]| Tensor::new(y, logits.device());
    let ce = candle_nn::loss::cross_entropy(logits, &targets(&batch.y)?)?;
    match &batch.mix {
        None => Ok(ce),
        Some((y_b, ratio)) => {
            let ce_b = candle_nn::loss::cross_entropy(logits, &targets(y_b)?)?;
            (ce * *ratio as f64)? + (ce_b * (1.0 - *ratio as f64))?
        }
    }
}

/// One optimisation step on a batch; returns the loss.
pub fn train_step(
    net: &Net,
    optimizer: &mut Optimizer,
    x: &Tensor,
    y: &[u32],
) -> Result<f32, StudentError> {
    let batch = Batch {
        x: x.clone(),
        y: y.to_vec(),
        mix: None,
    };
    step(net, optimizer, &batch, None)
}

/// One soft-label step on a batch: the teacher labels `x`, the student matches its tempered
/// softmax; returns the loss.
pub fn soft_train_step(
    net: &Net,
    optimizer: &mut Optimizer,
    x: &Tensor,
    soft: SoftTargets,
) -> Result<f32, StudentError> {
    let batch = Batch {
        x: x.clone(),
        y: Vec::new(),
        mix: None,
    };
    step(net, optimizer, &batch, Some(soft))
}

fn step(
    net: &Net,
    optimizer: &mut Optimizer,
    batch: &Batch,
    soft: Option<SoftTargets>,
) -> Result<f32, StudentError> {
    let logits = net.forward(&batch.x, true)?; // (N, classes)
    let loss = loss(&logits, batch, soft)?;
    let grads = loss.backward()?;
    optimizer.step(&grads)?;
    Ok(loss.to_scalar::<f32>()?)
}

/// The optimiser of `cfg` over the trainable variables of `net`, decaying those the protocol
/// decays (`TrainConfig::decays`).
pub fn optimizer_for(cfg: &TrainConfig, net: &Net) -> Result<Optimizer, StudentError> {
    let (vars, decays) = net
        .trainable()
        .into_iter()
        .map(|(name, v)| {
            let decay = cfg.decays(&name, v.rank());
            (v, decay)
        })
        .unzip();
    Ok(Optimizer::with_decays(cfg.optimizer, vars, decays)?)
}

/// Trains a fresh `cfg.net` on `train` with hard labels and measures its accuracy on `test`
/// when `cfg.tests_after` says (always after the last epoch).
pub fn train_and_test(
    train: &ImageSet,
    test: &ImageSet,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Trained, StudentError> {
    train_and_test_with(train, test, cfg, None, progress)
}

/// `train_and_test`, with the soft labels of `teacher` when `cfg.soft_labels` asks for them
/// (the teacher must take the student's input and classes, on the student's device).
pub fn train_and_test_with(
    train: &ImageSet,
    test: &ImageSet,
    cfg: &TrainConfig,
    teacher: Option<&Net>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Trained, StudentError> {
    cfg.validate()?;
    let started = Instant::now();
    let input = net_input(cfg, train.shape);
    let mismatch = |reason: &str| StudentError::MismatchedSets {
        train: format!("{} x {}", train.len(), train.shape),
        test: format!("{} x {}", test.len(), test.shape),
        reason: reason.to_string(),
    };
    if test.shape != input {
        return Err(mismatch("the test images must have the shape the net sees"));
    }
    if train.class_names != test.class_names {
        return Err(mismatch("the class lists differ"));
    }
    if train.is_empty() {
        return Err(mismatch("the training set is empty"));
    }
    let soft = match (&cfg.soft_labels, teacher) {
        (None, None) => None,
        (Some(soft), Some(teacher)) => {
            let want = (input, train.num_classes());
            let spec = teacher.spec();
            if (spec.input, spec.num_classes) != want {
                return Err(StudentError::InvalidConfig {
                    reason: format!(
                        "the teacher takes {} images of {} classes; the student {} images of {}",
                        spec.input, spec.num_classes, want.0, want.1
                    ),
                });
            }
            Some(SoftTargets {
                teacher,
                temperature: soft.temperature,
            })
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(StudentError::InvalidConfig {
                reason: "soft labels need both the config's soft-labels and a teacher".into(),
            })
        }
    };

    // Build the net and optimiser:
    let spec = NetSpec {
        arch: cfg.net,
        norm: cfg.norm,
        input,
        num_classes: train.num_classes(),
    };
    let device = cfg.device.open()?;
    let net = Net::new_on(spec, cfg.seed, &device)?;
    let mut optimizer = optimizer_for(cfg, &net)?;
    let normalization = Normalization::for_protocol(cfg.protocol, input.channels)?;
    let normalized = match cfg.augment {
        Augment::Minimax | Augment::Rded => Vec::new(), // normalised per crop
        Augment::None | Augment::Dsa => normalization.apply(train),
    };
    let classifier = Classifier::new(net, normalization);
    // Shuffling and augmentation draw from their own stream, independent of the initialisation.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(1);

    // Train, testing on the way:
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut curve = Vec::new();
    for epoch in 0..cfg.epochs {
        let lr = cfg.lr_at(epoch);
        optimizer.set_lr(lr);
        order.shuffle(&mut rng);
        let mut loss_sum = 0f64;
        let batches = order.chunks(cfg.batch_size);
        let n_batches = batches.len();
        for indices in batches {
            let batch = make_batch(
                cfg,
                train,
                classifier.normalization(),
                &normalized,
                indices,
                input,
                &mut rng,
                &device,
            )?;
            loss_sum += step(classifier.net(), &mut optimizer, &batch, soft)? as f64;
        }
        let done = epoch + 1;
        let test_accuracy = if cfg.tests_after(done) {
            let acc = classifier.accuracy(test)?;
            curve.push((done, acc));
            Some(acc)
        } else {
            None
        };
        progress(&Progress {
            epoch: done,
            epochs: cfg.epochs,
            lr,
            train_loss: loss_sum / n_batches as f64,
            test_accuracy,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    // Report:
    let final_accuracy = curve.last().map(|&(_, a)| a).unwrap_or(f64::NAN);
    let &(best_epoch, best_accuracy) = curve
        .iter()
        .fold(None, |best: Option<&(usize, f64)>, p| match best {
            Some(b) if b.1 >= p.1 => Some(b),
            _ => Some(p),
        })
        .expect("the last epoch is always tested");
    let report = RunReport {
        config: cfg.clone(),
        num_params: classifier.net().num_params(),
        train_images: train.len(),
        test_images: test.len(),
        final_accuracy,
        best_accuracy,
        best_epoch,
        curve,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(Trained { report, classifier })
}
