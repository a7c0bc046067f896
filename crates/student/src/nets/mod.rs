//! The student networks and the registry of their names (`convnet3`, `resnetap10`, ...).

mod convnet;
mod layers;
mod resnet;

pub use convnet::CONVNET_WIDTH;
pub use layers::{NormKind, BUFFER_NAMES};

use crate::StudentError;
use candle_core::{Result, Tensor, Var};
use candle_nn::VarMap;
use convnet::ConvNet;
use dmgd_data::ImageShape;
use layers::Params;
use rand::SeedableRng;
use resnet::{ResNet, ResNetKind};
use std::cell::RefCell;
use std::path::Path;

/// Architecture of a student net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// ConvNet-D, width 128.
    ConvNet {
        depth: usize,
    },
    /// ResNet-10 with strides replaced by average pooling.
    ResNetAp10,
    ResNet18,
}

/// The names `Arch::from_str` accepts; `convnetD` stands for any depth, e.g. `convnet4`.
pub const NET_NAMES: [&str; 5] = ["convnet3", "convnet6", "convnetD", "resnetap10", "resnet18"];

impl std::str::FromStr for Arch {
    type Err = StudentError;

    fn from_str(name: &str) -> std::result::Result<Self, StudentError> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "resnetap10" => return Ok(Arch::ResNetAp10),
            "resnet18" => return Ok(Arch::ResNet18),
            _ => {}
        }
        if let Some(depth) = lower
            .strip_prefix("convnet")
            .and_then(|d| d.parse::<usize>().ok())
        {
            if (1..=8).contains(&depth) {
                return Ok(Arch::ConvNet { depth });
            }
        }
        Err(StudentError::UnknownNet {
            name: name.to_string(),
            valid: NET_NAMES.join(", "),
        })
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arch::ConvNet { depth } => write!(f, "convnet{depth}"),
            Arch::ResNetAp10 => write!(f, "resnetap10"),
            Arch::ResNet18 => write!(f, "resnet18"),
        }
    }
}

impl serde::Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Arch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Everything that fixes a net's shape: architecture, normalisation, input and classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetSpec {
    pub arch: Arch,
    pub norm: NormKind,
    pub input: ImageShape,
    pub num_classes: usize,
}

enum Body {
    ConvNet(ConvNet),
    ResNet(ResNet),
}

/// A student network with its variables.
pub struct Net {
    spec: NetSpec,
    vars: VarMap,
    body: Body,
}

impl Net {
    /// A freshly initialised net (PyTorch's default initialisation; the ResNets use the
    /// N(0, sqrt(2 / (k*k*C_out))) conv rule of the IDC code), drawn from `seed`.
    pub fn new(spec: NetSpec, seed: u64) -> Result<Self> {
        Net::new_on(spec, seed, &candle_core::Device::Cpu)
    }

    /// `new` with the parameters on `device` (the same initial values as on the CPU).
    pub fn new_on(spec: NetSpec, seed: u64, device: &candle_core::Device) -> Result<Self> {
        Net::build(spec, seed, device, false)
    }

    fn build(spec: NetSpec, seed: u64, device: &candle_core::Device, frozen: bool) -> Result<Self> {
        let vars = VarMap::new();
        let rng = RefCell::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let p = if frozen {
            Params::frozen(&vars, &rng, device)
        } else {
            Params::new(&vars, &rng, device)
        };
        let (input, classes) = (spec.input, spec.num_classes);
        let body = match spec.arch {
            Arch::ConvNet { depth } => {
                Body::ConvNet(ConvNet::new(&p, depth, spec.norm, input, classes)?)
            }
            Arch::ResNetAp10 => Body::ResNet(ResNet::new(
                &p,
                ResNetKind::AvgPool,
                [1, 1, 1, 1],
                spec.norm,
                input,
                classes,
            )?),
            Arch::ResNet18 => Body::ResNet(ResNet::new(
                &p,
                ResNetKind::Strided,
                [2, 2, 2, 2],
                spec.norm,
                input,
                classes,
            )?),
        };
        Ok(Net { spec, vars, body })
    }

    pub fn spec(&self) -> NetSpec {
        self.spec
    }

    /// Where the parameters are.
    pub fn device(&self) -> candle_core::Device {
        let data = self.vars.data().lock().expect("var map lock");
        data.values()
            .next()
            .map_or(candle_core::Device::Cpu, |v| v.device().clone())
    }

    /// Penultimate-layer embedding, (N, feature_dim). `train` selects batch statistics for
    /// batch norm (and updates its running statistics); instance norm ignores it.
    pub fn features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.body {
            Body::ConvNet(net) => net.features(x, train),
            Body::ResNet(net) => net.features(x, train),
        }
    }

    /// Class logits, (N, num_classes).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let f = self.features(x, train)?;
        match &self.body {
            Body::ConvNet(net) => net.classify(&f),
            Body::ResNet(net) => net.classify(&f),
        }
    }

    pub fn feature_dim(&self) -> usize {
        match &self.body {
            Body::ConvNet(net) => net.feature_dim(),
            Body::ResNet(net) => net.feature_dim(),
        }
    }

    /// Trainable variables, sorted by name (buffers such as BatchNorm running statistics excluded).
    pub fn trainable(&self) -> Vec<(String, Var)> {
        let data = self.vars.data().lock().expect("var map lock");
        let mut vars: Vec<(String, Var)> = data
            .iter()
            .filter(|(name, _)| !BUFFER_NAMES.iter().any(|b| name.ends_with(b)))
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Number of trainable parameters (torch: `sum(p.numel() for p in net.parameters())`).
    pub fn num_params(&self) -> usize {
        self.trainable().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Writes all variables (parameters and buffers) as safetensors, keyed like the torch
    /// module; through a temporary name, so `path` is never half-written.
    pub fn save(&self, path: &Path) -> std::result::Result<(), StudentError> {
        let tmp = dmgd_data::atomic::temp_sibling(path);
        self.vars
            .save(&tmp)
            .map_err(|source| StudentError::Weights {
                path: path.to_path_buf(),
                source,
            })?;
        dmgd_data::atomic::publish(&tmp, path).map_err(|e| StudentError::Weights {
            path: path.to_path_buf(),
            source: candle_core::Error::wrap(e),
        })
    }

    /// Loads weights saved by `save` for a net of the same spec, for inference. Every key must
    /// be present with the right shape, and the file must hold no other keys.
    pub fn load(spec: NetSpec, path: &Path) -> std::result::Result<Self, StudentError> {
        Net::load_on(spec, path, &candle_core::Device::Cpu)
    }

    /// `load` onto `device`.
    pub fn load_on(
        spec: NetSpec,
        path: &Path,
        device: &candle_core::Device,
    ) -> std::result::Result<Self, StudentError> {
        let tensors = dmgd_kernels::weights::load_safetensors(path, &candle_core::Device::Cpu)
            .map_err(|source| StudentError::Weights {
                path: path.to_path_buf(),
                source,
            })?;
        Net::from_tensors(spec, &tensors, path, device)
    }

    /// A net of `spec` on `device` with the weights `tensors` read from `path`, for inference
    /// (its forward records no graph: training it would not move it), strictly: every
    /// variable present with its shape, no other keys, except the batch-norm step counters
    /// `*.num_batches_tracked` of torch state dicts, which carry no weights (torch accepts
    /// state dicts with or without them).
    pub fn from_tensors(
        spec: NetSpec,
        tensors: &std::collections::HashMap<String, Tensor>,
        path: &Path,
        device: &candle_core::Device,
    ) -> std::result::Result<Self, StudentError> {
        let err = |source| StudentError::Weights {
            path: path.to_path_buf(),
            source,
        };
        let net = Net::build(spec, 0, device, true).map_err(err)?;
        let data = net.vars.data().lock().expect("var map lock");
        let counter = |k: &str| {
            k.strip_suffix(".num_batches_tracked")
                .is_some_and(|layer| data.contains_key(&format!("{layer}.running_mean")))
        };
        let mut unexpected: Vec<&String> = tensors
            .keys()
            .filter(|k| !data.contains_key(*k) && !counter(k))
            .collect();
        let mut missing: Vec<&String> = data.keys().filter(|k| !tensors.contains_key(*k)).collect();
        if !unexpected.is_empty() || !missing.is_empty() {
            unexpected.sort();
            missing.sort();
            return Err(StudentError::WeightKeys {
                path: path.to_path_buf(),
                missing: missing.into_iter().cloned().collect(),
                unexpected: unexpected.into_iter().cloned().collect(),
            });
        }
        for (name, var) in data.iter() {
            let t = &tensors[name];
            if t.dims() != var.dims() {
                return Err(StudentError::WeightShape {
                    path: path.to_path_buf(),
                    key: name.clone(),
                    expected: var.dims().to_vec(),
                    found: t.dims().to_vec(),
                });
            }
            let value = t
                .to_dtype(candle_core::DType::F32)
                .and_then(|t| t.to_device(device));
            var.set(&value.map_err(err)?).map_err(err)?;
        }
        drop(data);
        Ok(net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(channels: usize, size: usize) -> ImageShape {
        ImageShape {
            channels,
            height: size,
            width: size,
        }
    }

    fn spec(name: &str, norm: NormKind, input: ImageShape, num_classes: usize) -> NetSpec {
        NetSpec {
            arch: name.parse().unwrap(),
            norm,
            input,
            num_classes,
        }
    }

    /// Numbers printed by oracle/param_counts.py (torch definitions of the same nets).
    #[test]
    fn param_counts_match_pytorch() {
        let cases = [
            ("convnet3", shape(1, 28), 10, NormKind::Instance, 317_706),
            ("convnet3", shape(3, 32), 10, NormKind::Instance, 320_010),
            ("convnet6", shape(3, 224), 10, NormKind::Instance, 754_570),
            (
                "resnetap10",
                shape(3, 224),
                10,
                NormKind::Instance,
                4_910_922,
            ),
            (
                "resnet18",
                shape(3, 224),
                10,
                NormKind::Instance,
                11_181_642,
            ),
            ("resnet18", shape(3, 224), 1000, NormKind::Batch, 11_689_512),
        ];
        for (name, input, classes, norm, expected) in cases {
            let net = Net::new(spec(name, norm, input, classes), 0).unwrap();
            assert_eq!(net.num_params(), expected, "{name} {input} {norm:?}");
        }
    }

    #[test]
    fn keys_equal_the_torch_state_dict() {
        // From oracle/param_counts.py: sorted(ConvNet(1, 10, 3, 28).state_dict().keys())
        let torch_keys = "classifier.bias classifier.weight features.0.bias features.0.weight features.1.bias \
            features.1.weight features.4.bias features.4.weight features.5.bias features.5.weight features.8.bias \
            features.8.weight features.9.bias features.9.weight";
        let net = Net::new(spec("convnet3", NormKind::Instance, shape(1, 28), 10), 0).unwrap();
        let ours: Vec<String> = net.trainable().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            ours.join(" "),
            torch_keys.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let resnet =
            Net::new(spec("resnetap10", NormKind::Instance, shape(3, 224), 10), 0).unwrap();
        let keys: Vec<String> = resnet.trainable().into_iter().map(|(k, _)| k).collect();
        for k in [
            "layer0.conv1.weight",
            "layer2.0.downsample.0.weight",
            "layer2.0.downsample.2.bias",
            "fc.weight",
        ] {
            assert!(keys.iter().any(|x| x == k), "missing {k}");
        }
    }

    #[test]
    fn names_parse_and_unknown_names_list_the_valid_ones() {
        assert_eq!(
            "convnet3".parse::<Arch>().unwrap(),
            Arch::ConvNet { depth: 3 }
        );
        assert_eq!(
            "ConvNet6".parse::<Arch>().unwrap(),
            Arch::ConvNet { depth: 6 }
        );
        assert_eq!(
            "convnet4".parse::<Arch>().unwrap(),
            Arch::ConvNet { depth: 4 }
        );
        assert_eq!("resnetap10".parse::<Arch>().unwrap(), Arch::ResNetAp10);
        assert_eq!("resnet18".parse::<Arch>().unwrap(), Arch::ResNet18);
        let err = "vgg11".parse::<Arch>().unwrap_err().to_string();
        assert!(
            err.contains("vgg11") && err.contains("convnet3") && err.contains("resnetap10"),
            "{err}"
        );
        assert!("convnet".parse::<Arch>().is_err());
        assert_eq!(Arch::ConvNet { depth: 6 }.to_string(), "convnet6");
    }

    #[test]
    fn same_seed_same_net_and_weights_round_trip() {
        let s = spec("convnet3", NormKind::Batch, shape(1, 28), 10);
        let (a, b, c) = (
            Net::new(s, 7).unwrap(),
            Net::new(s, 7).unwrap(),
            Net::new(s, 8).unwrap(),
        );
        let first = |n: &Net| {
            n.trainable()[0]
                .1
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(first(&a), first(&b));
        assert_ne!(first(&a), first(&c));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.safetensors");
        a.save(&path).unwrap();
        let loaded = Net::load(s, &path).unwrap();
        assert_eq!(first(&loaded), first(&a));
        let x = Tensor::randn(0f32, 1., (2, 1, 28, 28), &candle_core::Device::Cpu).unwrap();
        let diff = (a.forward(&x, false).unwrap() - loaded.forward(&x, false).unwrap()).unwrap();
        assert_eq!(
            diff.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );

        // A file for another net names what does not fit.
        let other = spec("convnet3", NormKind::Instance, shape(1, 28), 10);
        let err = match Net::load(other, &path) {
            Ok(_) => panic!("loaded batch-norm weights into an instance-norm net"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("running_mean"), "{err}");
    }
}
