//! ResNet-18 and ResNetAP-10 with basic blocks, as in the IDC/Minimax evaluation code.
//! ResNetAP replaces every strided conv by a stride-1 conv followed by 2x2 average pooling
//! (in the block after its first norm + ReLU, and in the shortcut after its 1x1 conv).
//! Keys follow those torch modules (`layer0.conv1`, `layer1.0.bn1`, `layer2.0.downsample.0`, `fc`).

use super::layers::{linear, Conv, ConvInit, ConvSpec, Norm, NormKind, Params};
use candle_core::{Module, Result, Tensor};
use dmgd_data::ImageShape;
use dmgd_kernels::{self as ops, MaxPoolParams};

/// Which of the two ResNet families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResNetKind {
    /// Strides replaced by average pooling; IntroBlock stem.
    AvgPool,
    /// Plain strided convs; conv7x7/2 + max-pool stem (torchvision layout).
    Strided,
}

const STEM_WIDTH: usize = 64;

fn conv(p: &Params, c_in: usize, c_out: usize, kernel: usize, stride: usize) -> Result<Conv> {
    let spec = ConvSpec {
        c_in,
        c_out,
        kernel,
        stride,
        padding: kernel / 2,
        bias: false,
        init: ConvInit::HeFanOut,
    };
    Conv::new(p, spec)
}

struct BasicBlock {
    conv1: Conv,
    bn1: Norm,
    conv2: Conv,
    bn2: Norm,
    /// (1x1 conv, norm); the pooling between them (AvgPool kind) is `downsample.1` in torch.
    downsample: Option<(Conv, Norm)>,
    stride: usize,
    kind: ResNetKind,
}

impl BasicBlock {
    fn new(
        p: &Params,
        kind: ResNetKind,
        norm: NormKind,
        c_in: usize,
        planes: usize,
        stride: usize,
    ) -> Result<Self> {
        let conv_stride = match kind {
            ResNetKind::AvgPool => 1,
            ResNetKind::Strided => stride,
        };
        let downsample = if stride != 1 || c_in != planes {
            let ds = p.pp("downsample");
            let norm_index = match kind {
                ResNetKind::AvgPool => 2,
                ResNetKind::Strided => 1,
            };
            Some((
                conv(&ds.pp(0), c_in, planes, 1, conv_stride)?,
                Norm::new(&ds.pp(norm_index), norm, planes)?,
            ))
        } else {
            None
        };
        Ok(BasicBlock {
            conv1: conv(&p.pp("conv1"), c_in, planes, 3, conv_stride)?,
            bn1: Norm::new(&p.pp("bn1"), norm, planes)?,
            conv2: conv(&p.pp("conv2"), planes, planes, 3, 1)?,
            bn2: Norm::new(&p.pp("bn2"), norm, planes)?,
            downsample,
            stride,
            kind,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let pool = match self.kind {
            ResNetKind::AvgPool => self.stride,
            ResNetKind::Strided => 1,
        };
        let pooled = |t: Tensor| {
            if pool > 1 {
                ops::avg_pool2d(&t, pool)
            } else {
                Ok(t)
            }
        };
        let out = self
            .bn1
            .forward(&self.conv1.forward(x)?, true, pool, train)?; // norm -> ReLU -> [pool]
        let out = self
            .bn2
            .forward(&self.conv2.forward(&out)?, false, 1, train)?;
        let shortcut = match &self.downsample {
            Some((conv, norm)) => norm.forward(&pooled(conv.forward(x)?)?, false, 1, train)?,
            None => x.clone(),
        };
        (out + shortcut)?.relu()
    }
}

/// How the stem treats the input size (IDC's `net_size`: 'small' <= 64 px < 'mid' <= 128 px < 'large').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StemSize {
    Small,
    Mid,
    Large,
}

pub struct ResNet {
    kind: ResNetKind,
    stem_size: StemSize,
    stem_conv: Conv,
    stem_norm: Norm,
    layers: Vec<BasicBlock>,
    fc: candle_nn::Linear,
}

impl ResNet {
    /// `blocks_per_stage`: [1, 1, 1, 1] for ResNet-10, [2, 2, 2, 2] for ResNet-18.
    pub fn new(
        p: &Params,
        kind: ResNetKind,
        blocks_per_stage: [usize; 4],
        norm: NormKind,
        input: ImageShape,
        num_classes: usize,
    ) -> Result<Self> {
        let size = input.height.max(input.width);
        let stem_size = match size {
            0..=64 => StemSize::Small,
            65..=128 => StemSize::Mid,
            _ => StemSize::Large,
        };
        let (stem_conv, stem_norm) = match kind {
            // IntroBlock: conv 7x7 (large) or 3x3, stride 1, then pool 4 (large) / 2 (mid) / none.
            ResNetKind::AvgPool => {
                let stem = p.pp("layer0");
                let kernel = if stem_size == StemSize::Large { 7 } else { 3 };
                let c = conv(&stem.pp("conv1"), input.channels, STEM_WIDTH, kernel, 1)?;
                (c, Norm::new(&stem.pp("bn1"), norm, STEM_WIDTH)?)
            }
            // torchvision: conv 7x7/2 + max-pool 3x3/2 from 'mid' up; conv 3x3/1 for small inputs.
            ResNetKind::Strided => {
                let (kernel, stride) = if stem_size == StemSize::Small {
                    (3, 1)
                } else {
                    (7, 2)
                };
                let c = conv(&p.pp("conv1"), input.channels, STEM_WIDTH, kernel, stride)?;
                (c, Norm::new(&p.pp("bn1"), norm, STEM_WIDTH)?)
            }
        };
        let mut layers = Vec::new();
        let mut c_in = STEM_WIDTH;
        for (stage, &count) in blocks_per_stage.iter().enumerate() {
            let planes = STEM_WIDTH << stage;
            for b in 0..count {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                let bp = p.pp(format!("layer{}", stage + 1)).pp(b);
                layers.push(BasicBlock::new(&bp, kind, norm, c_in, planes, stride)?);
                c_in = planes;
            }
        }
        let fc = linear(&p.pp("fc"), c_in, num_classes)?;
        Ok(ResNet {
            kind,
            stem_size,
            stem_conv,
            stem_norm,
            layers,
            fc,
        })
    }

    pub fn feature_dim(&self) -> usize {
        STEM_WIDTH << 3
    }

    /// Globally average-pooled output of the last stage, (N, 512).
    pub fn features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let stem_pool = match (self.kind, self.stem_size) {
            (ResNetKind::AvgPool, StemSize::Large) => 4,
            (ResNetKind::AvgPool, StemSize::Mid) => 2,
            _ => 1,
        };
        let mut x = self
            .stem_norm
            .forward(&self.stem_conv.forward(x)?, true, stem_pool, train)?; // (N, 64, H', W')
        if self.kind == ResNetKind::Strided && self.stem_size != StemSize::Small {
            x = ops::max_pool2d(
                &x,
                MaxPoolParams {
                    kernel: 3,
                    stride: 2,
                    padding: 1,
                },
            )?;
        }
        for block in &self.layers {
            x = block.forward(&x, train)?;
        }
        x.mean((2, 3)) // (N, 512)
    }

    pub fn classify(&self, features: &Tensor) -> Result<Tensor> {
        self.fc.forward(features)
    }
}
