//! Pretraining a class-conditional DiT (docs/METHOD.md §4, as DiT's `train.py`): hybrid loss,
//! label dropout to the null class, AdamW, EMA of the weights, checkpoints that resume exactly.
//!
//! A run directory holds:
//! - `model.json` + `ema.safetensors`: the EMA weights under the official DiT key names (what
//!   `checkpoint::load_dit` and `dmgd sample` read);
//! - `train-state.json` + `train-state.safetensors`: step, settings, raw weights and AdamW moments.

use crate::dit::{Dit, DitConfig};
use crate::error::{DiffusionError, Result};
use crate::gaussian::{randn, GaussianDiffusion};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use dmgd_data::{pixels::u8_to_model, ImageSet};
use dmgd_kernels::adamw::{self as optim, AdamW};
use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const EMA_FILE: &str = "ema.safetensors";
pub const MODEL_CONFIG_FILE: &str = "model.json";
pub const STATE_FILE: &str = "train-state.safetensors";
pub const STATE_CONFIG_FILE: &str = "train-state.json";
/// Folder of a run directory that holds the EMA snapshots (`TrainConfig::snapshot_every`).
pub const SNAPSHOT_DIR: &str = "snapshots";

/// AdamW betas and epsilon of PyTorch's defaults (DiT uses them).
const ADAM_BETA1: f64 = 0.9;
const ADAM_BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

/// Training settings (the resolved form of `dmgd pretrain`'s flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: DitConfig,
    pub batch_size: usize,
    pub steps: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// EMA decay; the effective decay is min(ema_decay, (1 + step) / (10 + step)) so that short
    /// runs are not dominated by the initial weights.
    pub ema_decay: f64,
    pub class_dropout_prob: f64,
    pub horizontal_flip: bool,
    pub seed: u64,
    pub checkpoint_every: usize,
    /// Keep a copy of the EMA weights every this many steps in `snapshots/` (0: none), for
    /// choosing a checkpoint afterwards by a held-out Fréchet distance.
    #[serde(default)]
    pub snapshot_every: usize,
    /// Images per class held out of training (the last ones of each class,
    /// `ImageSet::split_validation`): the validation images that choose the checkpoint.
    #[serde(default)]
    pub holdout_per_class: usize,
    /// Fingerprint of the training set (`ImageSet::fingerprint`), checked on resume.
    pub dataset_fingerprint: String,
    /// The checkpoint the weights started from, when not from scratch (`Trainer::init_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitCheckpoint>,
}

/// A checkpoint a run started from: continued pretraining or fine-tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitCheckpoint {
    pub path: String,
    pub sha256: String,
}

/// Batch means of one step's losses.
#[derive(Debug, Clone, Copy)]
pub struct StepLosses {
    pub loss: f32,
    pub mse: f32,
    pub vb: f32,
}

/// What `train` reports after each step.
#[derive(Debug, Clone, Copy)]
pub struct StepReport {
    pub step: usize,
    pub loss: f32,
    pub mse: f32,
    pub vb: f32,
    pub seconds: f64,
    /// True when a checkpoint was written after this step.
    pub checkpointed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    config: TrainConfig,
    /// Steps done.
    step: usize,
}

pub struct Trainer {
    pub config: TrainConfig,
    pub dit: Dit,
    pub step: usize,
    varmap: VarMap,
    /// (name, var) sorted by name: the order of `ema`, `adam_m`, `adam_v`.
    vars: Vec<(String, Var)>,
    ema: Vec<Tensor>,
    adam_m: Vec<Tensor>,
    adam_v: Vec<Tensor>,
    diffusion: GaussianDiffusion,
    device: Device,
    /// The dataset order of the current epoch (epoch, permutation).
    epoch_order: Option<(usize, Vec<usize>)>,
}

impl Trainer {
    /// A fresh model, initialised as DiT does, from `config.seed`.
    pub fn new(config: TrainConfig, device: &Device) -> Result<Self> {
        config.model.validate()?;
        // candle's CPU initialisers cannot be seeded: fill the VarMap from our own generator
        // first (the model then finds every weight there).
        let varmap = VarMap::new();
        {
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            let mut data = varmap.data().lock().expect("varmap lock");
            for (name, shape) in config.model.expected_shapes() {
                if name == "pos_embed" {
                    continue;
                }
                let init = initial_values(&config.model, &name, &shape, &mut rng);
                let t =
                    Tensor::from_vec(init, shape.as_slice(), &Device::Cpu)?.to_device(device)?;
                data.insert(name, Var::from_tensor(&t)?);
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let dit = Dit::init(&config.model, vb)?;
        let mut vars: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .expect("varmap lock")
            .clone()
            .into_iter()
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        // `copy` records a Copy op from the Var: detach, or every EMA update would chain onto
        // the previous one and keep all of them alive (3 model copies per step, measured).
        let ema = vars
            .iter()
            .map(|(_, v)| v.as_tensor().copy().map(|t| t.detach()))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        let adam_m = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let adam_v = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Trainer {
            config,
            dit,
            step: 0,
            varmap,
            vars,
            ema,
            adam_m,
            adam_v,
            diffusion: GaussianDiffusion::new("")?,
            device: device.clone(),
            epoch_order: None,
        })
    }

    /// Replaces the initial weights (and the EMA) by those of a DiT checkpoint of the same
    /// configuration, strictly checked; the optimizer state stays fresh. For a step-0 trainer.
    pub fn init_from(&mut self, path: &Path) -> Result<()> {
        let tensors = crate::checkpoint::read_tensors(path, &self.device)?;
        crate::checkpoint::check_keys(&self.config.model, &tensors, path)?;
        for k in 0..self.vars.len() {
            let (name, var) = &self.vars[k];
            var.set(&tensors[name])?;
            self.ema[k] = tensors[name].copy()?.detach();
        }
        Ok(())
    }

    /// Reopens a run directory written by `save`; the settings come from the directory, except
    /// `steps` (a new total) and `checkpoint_every` when given.
    pub fn resume(
        dir: &Path,
        steps: Option<usize>,
        checkpoint_every: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        let state_json = dir.join(STATE_CONFIG_FILE);
        let text =
            std::fs::read_to_string(&state_json).map_err(|e| DiffusionError::io(&state_json, e))?;
        let state: TrainState =
            serde_json::from_str(&text).map_err(|source| DiffusionError::Json {
                path: state_json.clone(),
                source,
            })?;
        let mut config = state.config;
        config.steps = steps.unwrap_or(config.steps);
        config.checkpoint_every = checkpoint_every.unwrap_or(config.checkpoint_every);
        let mut trainer = Trainer::new(config, device)?;
        let path = dir.join(STATE_FILE);
        let tensors = dmgd_kernels::weights::load_safetensors(&path, device).map_err(|source| {
            DiffusionError::Candle {
                context: path.display().to_string(),
                source,
            }
        })?;
        let get = |prefix: &str, name: &str, like: &Tensor| -> Result<Tensor> {
            let key = format!("{prefix}{name}");
            let t = tensors
                .get(&key)
                .ok_or_else(|| DiffusionError::CheckpointMismatch {
                    path: path.clone(),
                    problems: format!("missing key {key}"),
                })?;
            if t.dims() != like.dims() {
                return Err(DiffusionError::CheckpointMismatch {
                    path: path.clone(),
                    problems: format!(
                        "{key}: expected shape {:?}, found {:?}",
                        like.dims(),
                        t.dims()
                    ),
                });
            }
            Ok(t.clone())
        };
        for k in 0..trainer.vars.len() {
            let (name, var) = &trainer.vars[k];
            var.set(&get("model.", name, var.as_tensor())?)?;
            trainer.ema[k] = get("ema.", name, var.as_tensor())?;
            trainer.adam_m[k] = get("adam_m.", name, var.as_tensor())?;
            trainer.adam_v[k] = get("adam_v.", name, var.as_tensor())?;
        }
        trainer.step = state.step;
        Ok(trainer)
    }

    /// Runs steps until `config.steps`, checkpointing into `dir` every `checkpoint_every`
    /// steps and at the end. `on_step` sees every step.
    pub fn train(
        &mut self,
        data: &ImageSet,
        dir: &Path,
        mut on_step: impl FnMut(&StepReport),
    ) -> Result<()> {
        let cfg = self.config.clone();
        if data.shape.channels != cfg.model.in_channels
            || data.shape.height != cfg.model.input_size
            || data.shape.width != cfg.model.input_size
        {
            return Err(DiffusionError::InputShape {
                found: vec![data.shape.channels, data.shape.height, data.shape.width],
                expected: format!(
                    "images {}x{}x{} for {}",
                    cfg.model.in_channels,
                    cfg.model.input_size,
                    cfg.model.input_size,
                    cfg.model.preset
                ),
            });
        }
        while self.step < cfg.steps {
            let started = std::time::Instant::now();
            let losses = self.train_step(data)?;
            let checkpointed =
                self.step % cfg.checkpoint_every.max(1) == 0 || self.step == cfg.steps;
            if checkpointed {
                self.save(dir)?;
            }
            if cfg.snapshot_every > 0 && self.step % cfg.snapshot_every == 0 {
                self.save_snapshot(dir)?;
            }
            on_step(&StepReport {
                step: self.step,
                loss: losses.loss,
                mse: losses.mse,
                vb: losses.vb,
                seconds: started.elapsed().as_secs_f64(),
                checkpointed,
            });
        }
        Ok(())
    }

    /// One optimizer step on the batch that (seed, step) selects: forward, hybrid loss,
    /// backward, AdamW, EMA. Returns the batch means (loss, mse, vb).
    pub fn train_step(&mut self, data: &ImageSet) -> Result<StepLosses> {
        let cfg = self.config.clone();
        // Every random draw of a step comes from (seed, step): resuming replays exactly.
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(self.step as u64 + 1);
        let indices: Vec<usize> = (0..cfg.batch_size)
            .map(|k| {
                let g = self.step * cfg.batch_size + k;
                let (epoch, pos) = (g / data.len(), g % data.len());
                if self.epoch_order.as_ref().map(|(e, _)| *e) != Some(epoch) {
                    self.epoch_order =
                        Some((epoch, epoch_permutation(cfg.seed, epoch, data.len())));
                }
                self.epoch_order.as_ref().expect("set above").1[pos]
            })
            .collect();
        let x0 = self.batch(data, &indices, &mut rng)?; // (B, C, H, W)
        let labels: Vec<usize> = indices
            .iter()
            .map(|&i| {
                if rng.gen::<f64>() < cfg.class_dropout_prob {
                    cfg.model.null_class()
                } else {
                    data.labels[i]
                }
            })
            .collect();
        let t_idx: Vec<usize> = (0..cfg.batch_size)
            .map(|_| rng.gen_range(0..self.diffusion.num_steps()))
            .collect();
        let noise = randn(&mut rng, x0.dims(), &self.device)?;
        let x_t = self.diffusion.q_sample(&x0, &t_idx, &noise)?;
        let t = Tensor::from_vec(
            t_idx.iter().map(|&i| i as f32).collect::<Vec<_>>(),
            cfg.batch_size,
            &self.device,
        )?;
        let model_out = self.dit.forward(&x_t, &t, &labels)?; // (B, 2C, H, W)
        let (loss, mse, vb) = self
            .diffusion
            .training_losses(&model_out, &x0, &x_t, &noise, &t_idx)?;
        let loss = loss.mean_all()?;
        let grads = loss.backward()?;
        self.step += 1;
        self.adamw_update(&grads)?;
        self.ema_update()?;
        Ok(StepLosses {
            loss: loss.to_scalar::<f32>()?,
            mse: mse.mean_all()?.to_scalar::<f32>()?,
            vb: vb.mean_all()?.to_scalar::<f32>()?,
        })
    }

    /// Images `indices` in [-1, 1], randomly flipped left-right when enabled. (B, C, H, W).
    fn batch(&self, data: &ImageSet, indices: &[usize], rng: &mut impl Rng) -> Result<Tensor> {
        let s = data.shape;
        let mut v = Vec::with_capacity(indices.len() * s.numel());
        for &i in indices {
            let img = data.image(i);
            let flip = self.config.horizontal_flip && rng.gen::<bool>();
            for row in img.chunks_exact(s.width) {
                if flip {
                    v.extend(row.iter().rev().map(|&p| u8_to_model(p)));
                } else {
                    v.extend(row.iter().map(|&p| u8_to_model(p)));
                }
            }
        }
        Ok(Tensor::from_vec(
            v,
            (indices.len(), s.channels, s.height, s.width),
            &self.device,
        )?)
    }

    /// AdamW (decoupled weight decay); the moments hold detached values only.
    fn adamw_update(&mut self, grads: &candle_core::backprop::GradStore) -> Result<()> {
        let adamw = AdamW {
            lr: self.config.lr,
            weight_decay: self.config.weight_decay,
            beta1: ADAM_BETA1,
            beta2: ADAM_BETA2,
            eps: ADAM_EPS,
            step: self.step as i32,
        };
        for (k, (_, var)) in self.vars.iter().enumerate() {
            if let Some(g) = grads.get(var.as_tensor()) {
                adamw.update(var, &mut self.adam_m[k], &mut self.adam_v[k], &g.detach())?;
            }
        }
        Ok(())
    }

    fn ema_update(&mut self) -> Result<()> {
        let s = self.step as f64;
        let decay = self.config.ema_decay.min((1.0 + s) / (10.0 + s));
        for (ema, (_, var)) in self.ema.iter_mut().zip(&self.vars) {
            optim::ema_update(ema, var.as_tensor(), decay)?;
        }
        Ok(())
    }

    /// The EMA weights as a state dict under the official key names (with `pos_embed`).
    pub fn ema_state_dict(&self) -> Result<HashMap<String, Tensor>> {
        let mut out: HashMap<String, Tensor> = self
            .vars
            .iter()
            .zip(&self.ema)
            .map(|((name, _), t)| (name.clone(), t.clone()))
            .collect();
        out.insert("pos_embed".into(), self.dit.pos_embed.clone());
        Ok(out)
    }

    /// Writes the four files of a run directory, each atomically (temporary name, rename).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| DiffusionError::io(dir, e))?;
        save_safetensors(&self.ema_state_dict()?, &dir.join(EMA_FILE))?;
        write_json(&dir.join(MODEL_CONFIG_FILE), &self.config.model)?;
        let mut state = HashMap::new();
        for (k, (name, var)) in self.vars.iter().enumerate() {
            state.insert(format!("model.{name}"), var.as_tensor().detach());
            state.insert(format!("ema.{name}"), self.ema[k].clone());
            state.insert(format!("adam_m.{name}"), self.adam_m[k].clone());
            state.insert(format!("adam_v.{name}"), self.adam_v[k].clone());
        }
        save_safetensors(&state, &dir.join(STATE_FILE))?;
        write_json(
            &dir.join(STATE_CONFIG_FILE),
            &TrainState {
                config: self.config.clone(),
                step: self.step,
            },
        )
    }

    /// Copies the EMA weights to `snapshots/ema-step<step>.safetensors` (atomically).
    fn save_snapshot(&self, dir: &Path) -> Result<()> {
        let snapshots = dir.join(SNAPSHOT_DIR);
        std::fs::create_dir_all(&snapshots).map_err(|e| DiffusionError::io(&snapshots, e))?;
        let path = snapshots.join(format!("ema-step{:07}.safetensors", self.step));
        save_safetensors(&self.ema_state_dict()?, &path)
    }

    /// Number of trained parameters.
    pub fn num_parameters(&self) -> usize {
        let _ = &self.varmap;
        self.vars
            .iter()
            .map(|(_, v)| v.as_tensor().elem_count())
            .sum()
    }
}

/// DiT's initialisation of the weight `name`: adaLN modulation and the final linear layer
/// zero, the label table and timestep MLP N(0, 0.02), other weights Xavier-uniform (the patch
/// conv over its (D, C*p*p) view), biases zero.
fn initial_values(cfg: &DitConfig, name: &str, shape: &[usize], rng: &mut impl Rng) -> Vec<f32> {
    const EMBEDDING_STD: f64 = 0.02;
    let n: usize = shape.iter().product();
    let zero = name.ends_with(".bias")
        || name.contains("adaLN_modulation")
        || name.starts_with("final_layer.linear");
    if zero {
        return vec![0.0; n];
    }
    if name.starts_with("y_embedder") || name.starts_with("t_embedder") {
        return (0..n)
            .map(|_| (rng.sample::<f64, _>(rand_distr::StandardNormal) * EMBEDDING_STD) as f32)
            .collect();
    }
    let (fan_out, fan_in) = if name == "x_embedder.proj.weight" {
        (
            cfg.hidden_size,
            cfg.in_channels * cfg.patch_size * cfg.patch_size,
        )
    } else {
        (shape[0], shape[1])
    };
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..n)
        .map(|_| rng.gen_range(-bound..bound) as f32)
        .collect()
}

/// The order of the dataset in `epoch`: a permutation drawn from (seed, epoch).
fn epoch_permutation(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6570_6f63_6873); // "epochs": a different stream family
    rng.set_stream(epoch as u64);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}

fn temp_path(path: &Path) -> PathBuf {
    dmgd_data::atomic::temp_sibling(path)
}

/// Saves tensors as safetensors, atomically.
pub fn save_safetensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let tmp = temp_path(path);
    candle_core::safetensors::save(tensors, &tmp).map_err(|source| DiffusionError::Candle {
        context: tmp.display().to_string(),
        source,
    })?;
    Ok(dmgd_data::atomic::publish(&tmp, path)?)
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|source| DiffusionError::Json {
        path: path.into(),
        source,
    })?;
    Ok(dmgd_data::atomic::write_file(path, text.as_bytes())?)
}
