//! ConvNet-D of the DC/DSA/DM/MTT code: D blocks of conv3x3 (width 128) -> norm -> ReLU ->
//! avg-pool 2, then one linear classifier on the flattened features.
//! Keys as torch `nn.Sequential`: block d is `features.{4d}` (conv) and `features.{4d+1}` (norm).

use super::layers::{linear, Conv, ConvInit, ConvSpec, Norm, NormKind, Params};
use candle_core::{Module, Result, Tensor};
use dmgd_data::ImageShape;

/// Channels of every conv layer (DC code's `net_width`).
pub const CONVNET_WIDTH: usize = 128;

pub struct ConvNet {
    blocks: Vec<(Conv, Norm)>,
    classifier: candle_nn::Linear,
    feature_dim: usize,
}

impl ConvNet {
    pub fn new(
        p: &Params,
        depth: usize,
        norm: NormKind,
        input: ImageShape,
        num_classes: usize,
    ) -> Result<Self> {
        // DC code: 28 x 28 (Fashion-)MNIST is seen as 32 x 32 through padding 3 on the first conv.
        let first_padding = if input.height == 28 && input.width == 28 {
            3
        } else {
            1
        };
        let (mut c, mut h, mut w) = (input.channels, input.height, input.width);
        let mut blocks = Vec::with_capacity(depth);
        for d in 0..depth {
            let padding = if d == 0 { first_padding } else { 1 };
            let spec = ConvSpec {
                c_in: c,
                c_out: CONVNET_WIDTH,
                kernel: 3,
                stride: 1,
                padding,
                bias: true,
                init: ConvInit::TorchDefault,
            };
            let features = p.pp("features");
            let conv = Conv::new(&features.pp(4 * d), spec)?;
            let norm = Norm::new(&features.pp(4 * d + 1), norm, CONVNET_WIDTH)?;
            blocks.push((conv, norm));
            (c, h, w) = (
                CONVNET_WIDTH,
                (h + 2 * padding - 2) / 2,
                (w + 2 * padding - 2) / 2,
            );
            if h == 0 || w == 0 {
                candle_core::bail!(
                    "ConvNet-{depth}: a {input} input is too small for {depth} pooling blocks"
                );
            }
        }
        let feature_dim = c * h * w;
        let classifier = linear(&p.pp("classifier"), feature_dim, num_classes)?;
        Ok(ConvNet {
            blocks,
            classifier,
            feature_dim,
        })
    }

    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    /// Flattened output of the last block, (N, feature_dim).
    pub fn features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.clone(); // (N, C, H, W)
        for (conv, norm) in &self.blocks {
            x = conv.forward(&x)?; // (N, 128, H, W)
            x = norm.forward(&x, true, 2, train)?; // norm -> ReLU -> avg-pool 2: (N, 128, H/2, W/2)
        }
        x.flatten_from(1)
    }

    pub fn classify(&self, features: &Tensor) -> Result<Tensor> {
        self.classifier.forward(features)
    }
}
