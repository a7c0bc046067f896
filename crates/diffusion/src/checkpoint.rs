//! Loading DiT checkpoints: `.safetensors` or PyTorch `.pt` (zip + pickle, read as data and
//! refused when the pickle names anything but tensor-rebuild globals), a state dict or a
//! training checkpoint (`{"model", "ema", "opt", "args"}`: its `ema` entry, or a named one),
//! strict key and shape checks, and the model configuration inferred from the shapes.

use crate::dit::{preset_names, Dit, DitConfig};
use crate::error::{DiffusionError, Result};
use candle_core::pickle::Object;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// The pickle globals a state dict of tensors needs (torch.save of an OrderedDict of tensors
/// or parameters), and `argparse.Namespace`, the `args` of a training checkpoint (an attribute
/// bag; candle's reader only builds a tree of values, so it is read as data and ignored).
/// Anything else (os.system, builtins.eval, ...) is refused.
pub const ALLOWED_PICKLE_GLOBALS: [&str; 17] = [
    "collections.OrderedDict",
    "argparse.Namespace",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
    "torch.UntypedStorage",
    "torch.storage.UntypedStorage",
];

/// Every tensor of a `.safetensors` or `.pt`/`.pth`/`.bin` file (of a training checkpoint:
/// of its `ema` entry), as f32 on `device`.
pub fn read_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    read_entry(path, None, device)
}

/// The entry of a training checkpoint that holds the weights to load: `entry` when given,
/// else `ema` (else `model`); None for a plain state dict or a `.safetensors` file.
pub fn resolve_entry(path: &Path, entry: Option<&str>) -> Result<Option<String>> {
    let is_pt = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pt" | "pth" | "bin")
    );
    let entries = if is_pt { training_entries(path)? } else { None };
    let Some(entries) = entries else {
        return match entry {
            None => Ok(None),
            Some(e) => Err(DiffusionError::NotATrainingCheckpoint {
                path: path.into(),
                entry: e.into(),
            }),
        };
    };
    let has = |name: &str| entries.iter().any(|e| e == name);
    let chosen = entry.unwrap_or(if has("ema") { "ema" } else { "model" });
    if !has(chosen) {
        return Err(DiffusionError::NoSuchEntry {
            path: path.into(),
            entry: chosen.into(),
            entries,
        });
    }
    Ok(Some(chosen.to_string()))
}

/// Every tensor of a checkpoint file, or of its entry `entry` (`resolve_entry`), as f32 on
/// `device`.
pub fn read_entry(
    path: &Path,
    entry: Option<&str>,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let candle_err = |source| DiffusionError::Candle {
        context: path.display().to_string(),
        source,
    };
    if !path.is_file() {
        return Err(DiffusionError::io(
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let tensors: Vec<(String, Tensor)> = match ext {
        "safetensors" => dmgd_kernels::weights::load_safetensors(path, &Device::Cpu)
            .map_err(candle_err)?
            .into_iter()
            .collect(),
        "pt" | "pth" | "bin" => {
            check_pickle_globals(path)?;
            let entry = resolve_entry(path, entry)?;
            candle_core::pickle::read_all_with_key(path, entry.as_deref()).map_err(candle_err)?
        }
        _ if entry.is_some() => {
            return Err(DiffusionError::NotATrainingCheckpoint {
                path: path.into(),
                entry: entry.unwrap_or_default().into(),
            })
        }
        _ => return Err(DiffusionError::UnsupportedCheckpoint { path: path.into() }),
    };
    tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?.to_device(device)?)))
        .collect()
}

/// Scans every pickle of a PyTorch zip archive, opcode by opcode, and refuses the file when a
/// GLOBAL / STACK_GLOBAL (or a memo copy of one) names a global outside the allow-list.
/// Nothing is executed: candle's pickle reader only builds a tree of values.
pub fn check_pickle_globals(path: &Path) -> Result<()> {
    let bad = |reason: String| DiffusionError::BadCheckpoint {
        path: path.into(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| DiffusionError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
        bad(format!(
            "not a PyTorch zip archive (legacy .pt files are not supported): {e}"
        ))
    })?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .filter(|n| n.ends_with(".pkl"))
        .collect();
    if names.is_empty() {
        return Err(bad("no data.pkl in the archive".into()));
    }
    for name in names {
        let mut bytes = Vec::new();
        zip.by_name(&name)
            .map_err(|e| bad(format!("{name}: {e}")))?
            .read_to_end(&mut bytes)
            .map_err(|e| DiffusionError::io(path, e))?;
        let mut reader = std::io::BufReader::new(bytes.as_slice());
        let mut stack = candle_core::pickle::Stack::empty();
        loop {
            let done = stack
                .read(&mut reader)
                .map_err(|e| bad(format!("{name}: unreadable pickle: {e}")))?;
            // GLOBAL, STACK_GLOBAL and memo gets push the class onto the top of the stack.
            if let Some(Object::Class {
                module_name,
                class_name,
            }) = stack.stack().last()
            {
                let full = format!("{module_name}.{class_name}");
                if !ALLOWED_PICKLE_GLOBALS.contains(&full.as_str()) {
                    return Err(DiffusionError::ForbiddenPickleGlobal {
                        path: path.into(),
                        module: module_name.clone(),
                        name: class_name.clone(),
                        allowed: ALLOWED_PICKLE_GLOBALS.join(", "),
                    });
                }
            }
            if done {
                break;
            }
        }
    }
    Ok(())
}

/// The entries of a training checkpoint: `torch.save` of a dict whose values include state
/// dicts, as DiT's `train.py` and MinimaxDiffusion's fine-tuning write
/// `{"model", "ema", "opt", "args"}`. None for a plain state dict (its values are tensors,
/// beside the `_metadata` dict that `Module.state_dict()` attaches and torch.save keeps).
pub fn training_entries(path: &Path) -> Result<Option<Vec<String>>> {
    let bad = |reason: String| DiffusionError::BadCheckpoint {
        path: path.into(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| DiffusionError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(format!("not a PyTorch zip archive: {e}")))?;
    let name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n.ends_with("data.pkl"))
        .ok_or_else(|| bad("no data.pkl in the archive".into()))?;
    let mut bytes = Vec::new();
    zip.by_name(&name)
        .map_err(|e| bad(format!("{name}: {e}")))?
        .read_to_end(&mut bytes)
        .map_err(|e| DiffusionError::io(path, e))?;
    let mut stack = candle_core::pickle::Stack::empty();
    let top = stack
        .read_loop(&mut std::io::BufReader::new(bytes.as_slice()))
        .and_then(|()| stack.finalize())
        .map_err(|e| bad(format!("{name}: unreadable pickle: {e}")))?;
    let Object::Dict(items) = top else {
        return Ok(None);
    };
    let mut entries: Vec<String> = items
        .iter()
        .filter_map(|(key, value)| match (key, value) {
            (Object::Unicode(k), Object::Dict(_)) if k != "_metadata" => Some(k.clone()),
            _ => None,
        })
        .collect();
    entries.sort();
    Ok((!entries.is_empty()).then_some(entries))
}

/// Checks `tensors` against the keys and shapes of `cfg`; the error lists every missing,
/// unexpected and mis-shaped key (with expected and found shapes) and the file.
pub fn check_keys(cfg: &DitConfig, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let expected = cfg.expected_shapes();
    let mut problems = Vec::new();
    for (key, shape) in &expected {
        match tensors.get(key) {
            None => problems.push(format!("missing key {key} (expected shape {shape:?})")),
            Some(t) if t.dims() != shape.as_slice() => problems.push(format!(
                "key {key}: expected shape {shape:?}, found {:?}",
                t.dims()
            )),
            Some(_) => {}
        }
    }
    let known: std::collections::HashSet<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
    let mut unexpected: Vec<&String> = tensors
        .keys()
        .filter(|k| !known.contains(k.as_str()))
        .collect();
    unexpected.sort();
    for key in unexpected {
        problems.push(format!(
            "unexpected key {key} (shape {:?})",
            tensors[key].dims()
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(DiffusionError::CheckpointMismatch {
        path: path.into(),
        problems: format!(
            "{} problem(s) for {}: {}",
            problems.len(),
            cfg.preset,
            problems.join("; ")
        ),
    })
}

/// The configuration a DiT state dict implies: hidden size, depth, patch, channels, classes,
/// input size (from `pos_embed`) and learned sigma from the shapes; the number of heads (no
/// shape shows it) from the official family with that depth and width, else `num_heads`.
pub fn infer_config(
    tensors: &HashMap<String, Tensor>,
    path: &Path,
    num_heads: Option<usize>,
) -> Result<DitConfig> {
    let cannot = |reason: String| DiffusionError::CannotInferConfig {
        path: path.into(),
        reason,
    };
    let dims = |key: &str| -> Result<Vec<usize>> {
        tensors
            .get(key)
            .map(|t| t.dims().to_vec())
            .ok_or_else(|| cannot(format!("missing key {key}")))
    };
    let proj = dims("x_embedder.proj.weight")?;
    if proj.len() != 4 || proj[2] != proj[3] {
        return Err(cannot(format!(
            "x_embedder.proj.weight has shape {proj:?}, expected (D, C, p, p)"
        )));
    }
    let (hidden_size, in_channels, patch_size) = (proj[0], proj[1], proj[2]);
    let pos = dims("pos_embed")?;
    let tokens = *pos
        .get(1)
        .ok_or_else(|| cannot(format!("pos_embed has shape {pos:?}")))?;
    let grid = (tokens as f64).sqrt().round() as usize;
    if grid * grid != tokens {
        return Err(cannot(format!(
            "pos_embed has {tokens} tokens, not a square grid"
        )));
    }
    let table = dims("y_embedder.embedding_table.weight")?;
    let num_classes = table[0]
        .checked_sub(1)
        .ok_or_else(|| cannot("empty label-embedding table".into()))?;
    let depth = (0..)
        .take_while(|i| tensors.contains_key(&format!("blocks.{i}.attn.qkv.weight")))
        .count();
    let fc1 = dims("blocks.0.mlp.fc1.weight")?;
    let out = dims("final_layer.linear.weight")?[0] / (patch_size * patch_size);
    let learn_sigma = out == 2 * in_channels;
    let family = preset_names().into_iter().find_map(|name| {
        let cfg = DitConfig::preset(&name, grid * patch_size, in_channels, num_classes).ok()?;
        (cfg.depth == depth && cfg.hidden_size == hidden_size && cfg.patch_size == patch_size)
            .then_some(cfg)
    });
    // A head count that agrees with the family keeps its name; another one makes a custom model.
    let (preset, heads) = match (family, num_heads) {
        (Some(cfg), h) if h.is_none_or(|h| h == cfg.num_heads) => (cfg.preset, cfg.num_heads),
        (_, Some(h)) => ("custom".to_string(), h),
        (_, None) => {
            return Err(cannot(format!(
                "depth {depth} x width {hidden_size} is no preset, so the number of heads is unknown: give it"
            )))
        }
    };
    let cfg = DitConfig {
        preset,
        input_size: grid * patch_size,
        patch_size,
        in_channels,
        hidden_size,
        depth,
        num_heads: heads,
        mlp_ratio: fc1[0] as f64 / hidden_size as f64,
        num_classes,
        learn_sigma,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Loads a DiT checkpoint strictly. The configuration is `config` when given, else
/// `model.json` beside the file when present, else inferred from the shapes.
pub fn load_dit(path: &Path, config: Option<&DitConfig>, device: &Device) -> Result<Dit> {
    load_dit_entry(path, None, config, device)
}

/// `load_dit` of the entry `entry` of a training checkpoint (`resolve_entry`).
pub fn load_dit_entry(
    path: &Path,
    entry: Option<&str>,
    config: Option<&DitConfig>,
    device: &Device,
) -> Result<Dit> {
    let tensors = read_entry(path, entry, device)?;
    let cfg = match config {
        Some(cfg) => cfg.clone(),
        None => {
            let beside = path.with_file_name(crate::train::MODEL_CONFIG_FILE);
            if beside.is_file() {
                let text =
                    std::fs::read_to_string(&beside).map_err(|e| DiffusionError::io(&beside, e))?;
                serde_json::from_str(&text).map_err(|source| DiffusionError::Json {
                    path: beside,
                    source,
                })?
            } else {
                infer_config(&tensors, path, None)?
            }
        }
    };
    check_keys(&cfg, &tensors, path)?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Dit::load(&cfg, vb)
}
