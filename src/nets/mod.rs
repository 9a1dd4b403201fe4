//! The five networks of docs/design.md section 2, built from one [`NetConfig`], and the training step with
//! the one backward (docs/design.md section 3).
//!
//! | arch | units | downsampling | reconstruction |
//! |---|---|---|---|
//! | `layerwise` | `[InvConv, InvBN, InvLeakyReLU]` (Fig. 7) | P_c / P_b | every unit input by layer-wise inverses |
//! | `hybrid` | reversible block, F = G = `[InvConv, InvBN, InvLeakyReLU, InvConv, InvBN]` (Fig. 8-9) | P_c / P_b | block input by the block inverse, hidden layer-wise |
//! | `revnet` | reversible block, F = G = `[conv, BN, ReLU, conv, BN]` (Gomez) | max pool + 1x1 conv (stored) | block input by the block inverse, hidden recomputed |
//! | `irevnet` | RevNet blocks | P_c (fully invertible) | as RevNet |
//! | `resnet` | residual `x + F(x)`, F = `[conv, BN, ReLU, conv, BN]` | max pool + 1x1 conv | none: everything stored |
//!
//! Every network has a stem (3x3 conv from the image to `width` channels; its input, the image,
//! is already in memory; or none, [`Stem::Identity`], for inputs that already have `width`
//! channels) and a head (global average pool + linear; its small input is stored). The F/G
//! chains in the table are the defaults ([`Arch::default_fg`]); [`NetConfig::fg`] sets another,
//! [`NetConfig::pools`] another downsampling (or none), [`NetConfig::gamma_init`] the gamma
//! distribution and [`NetConfig::nested_depth`] makes the network a prefix of a deeper one.
//! Depth = number of units (layer-wise) or blocks (others), spread over the stages as evenly as
//! possible (earlier stages take the remainder). Stage `s + 1` starts after pooling `s`.

use crate::backend::Backend;
use crate::backprop::{forward_checkpointed, Backward, Grads, Held};
use crate::error::{Error, Result};
use crate::layers::{
    AdditiveCoupling, BatchNormConfig, BatchPool, Chain, ChannelPool, Conv2d, Head, InnerRebuild,
    InvBatchNorm, InvLeakyReLU, Layer, MaxPool2, ParamStore, Pass, Relu, Residual, Role, Tape,
    TraceEntry,
};
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Network architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Layer-wise invertible network (Hascoet et al. Fig. 7).
    Layerwise,
    /// Hybrid network (Hascoet et al. Fig. 8-9).
    Hybrid,
    /// RevNet (Gomez et al.).
    Revnet,
    /// i-RevNet-like: RevNet blocks with channel-pooling downsampling.
    Irevnet,
    /// ResNet baseline (everything stored).
    Resnet,
}

impl Arch {
    /// All architectures.
    pub const ALL: [Arch; 5] = [
        Arch::Layerwise,
        Arch::Hybrid,
        Arch::Revnet,
        Arch::Irevnet,
        Arch::Resnet,
    ];

    /// Name used in configs and result files.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Layerwise => "layerwise",
            Arch::Hybrid => "hybrid",
            Arch::Revnet => "revnet",
            Arch::Irevnet => "irevnet",
            Arch::Resnet => "resnet",
        }
    }

    /// A leaky ReLU with slope `n`: layer-wise and hybrid (RevNet, i-RevNet, ResNet: plain ReLU).
    pub fn has_slope(self) -> bool {
        matches!(self, Arch::Layerwise | Arch::Hybrid)
    }

    /// A result row's slope field: `slope` as text, empty without [`Arch::has_slope`].
    pub fn slope_field(self, slope: f64) -> String {
        if self.has_slope() {
            crate::results::text::num_text(slope)
        } else {
            String::new()
        }
    }

    /// Parse a name (case-insensitive; `layer-wise`, `i-revnet` accepted).
    pub fn parse(name: &str) -> Result<Arch> {
        match name
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "layerwise" => Ok(Arch::Layerwise),
            "hybrid" => Ok(Arch::Hybrid),
            "revnet" => Ok(Arch::Revnet),
            "irevnet" => Ok(Arch::Irevnet),
            "resnet" => Ok(Arch::Resnet),
            _ => Err(Error::Unknown {
                kind: "architecture",
                got: name.into(),
                expected: "layerwise, hybrid, revnet, irevnet, resnet".into(),
            }),
        }
    }

    /// Default downsampling between stages: `[P_c, P_c, P_b]` (layer-wise, hybrid),
    /// `[P_c, P_c, P_c]` (i-RevNet), max pooling (RevNet, ResNet).
    pub fn default_pools(self) -> Vec<PoolKind> {
        match self {
            Arch::Layerwise | Arch::Hybrid => {
                vec![PoolKind::Channel, PoolKind::Channel, PoolKind::Batch]
            }
            Arch::Irevnet => vec![PoolKind::Channel, PoolKind::Channel, PoolKind::Channel],
            Arch::Revnet | Arch::Resnet => vec![PoolKind::Max, PoolKind::Max, PoolKind::Max],
        }
    }

    /// The default F (= G) chain of a block: `[conv, bn, lrelu, conv, bn]` (hybrid, Fig. 8-9),
    /// `[conv, bn, relu, conv, bn]` (RevNet, i-RevNet, ResNet); layer-wise networks have none
    /// (their unit is fixed), and this returns the hybrid's.
    pub fn default_fg(self) -> Vec<LayerKind> {
        use LayerKind::{Bn, Conv, Lrelu, Relu};
        match self {
            Arch::Layerwise | Arch::Hybrid => vec![Conv, Bn, Lrelu, Conv, Bn],
            Arch::Revnet | Arch::Irevnet | Arch::Resnet => vec![Conv, Bn, Relu, Conv, Bn],
        }
    }

    /// Whether activations can be reconstructed (false for the ResNet baseline).
    pub fn reconstructable(self) -> bool {
        self != Arch::Resnet
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Downsampling between stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolKind {
    /// Channel pooling P_c (space-to-depth, 4x channels).
    #[serde(rename = "c")]
    Channel,
    /// Batch pooling P_b (space-to-batch, channels kept).
    #[serde(rename = "b")]
    Batch,
    /// 2x2 max pooling then a 1x1 convolution doubling the channels (stored input).
    #[serde(rename = "max")]
    Max,
}

pub use crate::backprop::{Rebuild, Source};
pub use crate::layers::GammaInit;

/// The first layer of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// A 3x3 convolution (no bias) from `in_channels` to `width` channels, weights
    /// `N(0, (init_scale sqrt(2 / fan_in))^2)`; its input, the image, is already in memory.
    #[default]
    Conv,
    /// No stem: the input already has `width` channels (`in_channels == width`), and the
    /// lowest reconstructed activation is the network input itself.
    Identity,
}

impl Stem {
    /// Whether this is the default ([`Stem::Conv`]): left out of serialised configs.
    pub fn is_default(&self) -> bool {
        *self == Stem::Conv
    }
}

/// One layer of a reversible block's F or G chain ([`NetConfig::fg`]).
///
/// | kind | hybrid (rebuilt layer-wise) | revnet, irevnet, resnet (recomputed) |
/// |---|---|---|
/// | `conv` | invertible convolution (additive coupling of two 3x3 convolutions) | 3x3 convolution |
/// | `bn` | invertible batch norm (`|gamma + eps_i|`) | plain batch norm |
/// | `lrelu` | invertible leaky ReLU (slope `n`) | leaky ReLU (slope `n`) |
/// | `relu` | not invertible: rejected | ReLU |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// Convolution.
    Conv,
    /// Batch norm.
    Bn,
    /// Leaky ReLU with the network's slope.
    Lrelu,
    /// ReLU.
    Relu,
}

impl LayerKind {
    /// Name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Conv => "conv",
            LayerKind::Bn => "bn",
            LayerKind::Lrelu => "lrelu",
            LayerKind::Relu => "relu",
        }
    }

    /// Whether a hybrid block can rebuild this layer's input with its inverse.
    pub fn invertible(self) -> bool {
        self != LayerKind::Relu
    }
}

impl std::fmt::Display for LayerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that defines a network except dtype and device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Architecture.
    pub arch: Arch,
    /// Units (layer-wise) or blocks (others).
    pub depth: usize,
    /// Channels after the stem (layer-wise/hybrid need a multiple of 2/4).
    pub width: usize,
    /// Leaky-ReLU slope `n > 0` (layer-wise, hybrid).
    pub slope: f64,
    /// The batch-norm reparameterisation's `eps_i` (invertible batch norms).
    pub eps_i: f64,
    /// Batch-norm `eps` inside the square root.
    pub bn_eps: f64,
    /// Downsampling between stages (stages = pools + 1).
    pub pools: Vec<PoolKind>,
    /// Input height = width.
    pub input_size: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Classes.
    pub classes: usize,
    /// Convolution init: `N(0, (init_scale sqrt(2 / fan_in))^2)` (1 = Kaiming normal).
    pub init_scale: f64,
    /// Batch-norm gamma init `exp(gamma_spread N(0,1))` (0 = ones), when `gamma_init` is unset.
    pub gamma_spread: f64,
    /// Seed of the weight initialisation.
    pub seed: u64,
    /// The first layer (default: a 3x3 convolution).
    #[serde(default, skip_serializing_if = "Stem::is_default")]
    pub stem: Stem,
    /// The F (= G) chain of every reversible or residual block (`None`: the architecture's,
    /// [`Arch::default_fg`]). The layer-wise network has no blocks: it rejects one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fg: Option<Vec<LayerKind>>,
    /// The batch-norm gamma init (`None`: log-normal with `gamma_spread`, ones for 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma_init: Option<GammaInit>,
    /// Nested depths: this network is the first `depth` units (or blocks) of the network of
    /// depth `nested_depth`, with the same weights bit for bit (`None`: a network of its own).
    ///
    /// The units are laid out over the stages as in the deepest network
    /// ([`NetConfig::units_per_stage`] of `nested_depth`) and the prefix takes the first
    /// `depth` of them in order. A pooling is kept only when a unit above it is kept (the
    /// prefix ends with its last unit, not with a pooling); the head follows the last kept unit
    /// (its weights come from the same stream as the deep network's head and equal them when
    /// the prefix ends in the last stage). `pools` must still suit `input_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested_depth: Option<usize>,
}

impl NetConfig {
    /// A small default for `arch`: depth 4, width 8, slope 0.2, 16x16 inputs, 10 classes,
    /// Kaiming-normal convolutions (`init_scale = 1`), BN gamma = 1, beta = 0.
    pub fn new(arch: Arch) -> Self {
        NetConfig {
            arch,
            depth: 4,
            width: 8,
            slope: 0.2,
            eps_i: 0.0,
            bn_eps: 1e-5,
            pools: arch.default_pools(),
            input_size: 16,
            in_channels: 3,
            classes: 10,
            init_scale: 1.0,
            gamma_spread: 0.0,
            seed: 0,
            stem: Stem::Conv,
            fg: None,
            gamma_init: None,
            nested_depth: None,
        }
    }

    /// The gamma init this config draws ([`GammaInit::resolve`]).
    pub fn gamma(&self) -> GammaInit {
        GammaInit::resolve(self.gamma_init, self.gamma_spread)
    }

    /// The F/G chain of the blocks: [`NetConfig::fg`] or the architecture's default.
    pub fn fg_kinds(&self) -> Vec<LayerKind> {
        self.fg.clone().unwrap_or_else(|| self.arch.default_fg())
    }

    /// One line describing the initialisation, for result files: conv init scale, gamma
    /// distribution, beta, head.
    pub fn init_description(&self) -> String {
        let gamma = match self.gamma() {
            GammaInit::Ones => "1".to_string(),
            GammaInit::LogNormal { spread } => format!("exp({spread} N(0,1))"),
            GammaInit::AbsNormal { std, offset } => format!("|N(1, {std}^2)| + {offset}"),
        };
        format!(
            "conv weights N(0, ({} * sqrt(2/fan_in))^2), BN gamma {gamma}, beta 0, head N(0, 1/c)",
            self.init_scale
        )
    }

    /// Check the configuration; every problem is an error naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |c: &str, e: &str, g: String| Err(Error::config(c, e, g));
        if self.depth == 0 {
            return bad("depth", ">= 1", "0".into());
        }
        if self.width == 0 || self.in_channels == 0 {
            let got = format!("{} and {}", self.width, self.in_channels);
            return bad("width and in_channels", ">= 1 each", got);
        }
        if !(self.slope.is_finite() && self.slope > 0.0) {
            return Err(Error::InvalidSlope { slope: self.slope });
        }
        if !self.eps_i.is_finite() || !(self.bn_eps >= 0.0) {
            let got = format!("{} and {}", self.eps_i, self.bn_eps);
            return bad("eps_i and bn_eps", "a finite eps_i and bn_eps >= 0", got);
        }
        if !(self.init_scale.is_finite() && self.init_scale > 0.0)
            || !(self.gamma_spread.is_finite() && self.gamma_spread >= 0.0)
        {
            let got = format!("{} and {}", self.init_scale, self.gamma_spread);
            return bad("init_scale and gamma_spread", "> 0 and >= 0 (finite)", got);
        }
        if self.classes < 2 {
            return bad("classes", ">= 2", self.classes.to_string());
        }
        self.gamma().validate()?;
        if self.stem == Stem::Identity && self.in_channels != self.width {
            let e = format!(
                "in_channels = width ({}): the input has `width` channels",
                self.width
            );
            return bad(
                "stem = identity",
                &e,
                format!("in_channels = {}", self.in_channels),
            );
        }
        if let Some(fg) = &self.fg {
            if self.arch == Arch::Layerwise {
                return bad("fg", LAYERWISE_NO_FG, format!("fg = {}", kinds_text(fg)));
            }
            if fg.is_empty() {
                let c = format!("fg of {}", self.arch);
                return bad(
                    &c,
                    "at least one layer (e.g. conv,bn,lrelu,conv)",
                    "none".into(),
                );
            }
            if self.arch == Arch::Hybrid {
                if let Some(k) = fg.iter().find(|k| !k.invertible()) {
                    let e = "invertible layers (conv, bn, lrelu): hybrid rebuilds F/G by inverses";
                    return bad(
                        "fg",
                        e,
                        format!("fg = {} (`{k}` is not invertible)", kinds_text(fg)),
                    );
                }
            }
        }
        if let Some(n) = self.nested_depth {
            if n < self.depth {
                let e = format!(
                    ">= depth ({}): a nested network is a prefix of the deeper one",
                    self.depth
                );
                return bad("nested_depth", &e, n.to_string());
            }
        }
        let need = match self.arch {
            Arch::Hybrid => 4,
            _ => 2,
        };
        if self.width % need != 0 {
            return Err(Error::BadChannels {
                layer: format!("{} width", self.arch),
                expected: format!("a multiple of {need}"),
                got: self.width,
            });
        }
        let factor = 1usize << self.pools.len();
        if self.input_size == 0 || self.input_size % factor != 0 {
            return Err(Error::OddSpatial {
                layer: format!(
                    "input of a network with {} poolings (a positive multiple of {factor})",
                    self.pools.len()
                ),
                height: self.input_size,
                width: self.input_size,
            });
        }
        for p in &self.pools {
            let ok = match self.arch {
                Arch::Revnet | Arch::Resnet => *p == PoolKind::Max,
                _ => *p != PoolKind::Max,
            };
            if !ok {
                let (c, e) = (
                    format!("pools of {}", self.arch),
                    format!("{:?}", self.arch.default_pools()),
                );
                return bad(&c, &e, format!("{p:?} pooling"));
            }
        }
        Ok(())
    }

    /// Units/blocks per stage: `depth` spread as evenly as possible over the stages, earlier
    /// stages taking the remainder; with [`NetConfig::nested_depth`], the spread of the deepest
    /// network cut to its first `depth` units (later stages may then be empty).
    pub fn units_per_stage(&self) -> Vec<usize> {
        let stages = self.pools.len() + 1;
        let deepest = self.nested_depth.unwrap_or(self.depth).max(self.depth);
        let mut left = self.depth;
        (0..stages)
            .map(|s| {
                let n = (deepest / stages + usize::from(s < deepest % stages)).min(left);
                left -= n;
                n
            })
            .collect()
    }

    /// Whether the pooling after stage `s` is part of the network: always, except in a nested
    /// prefix, which ends with its last unit (a pooling is kept only below a kept unit).
    pub fn keeps_pool(&self, s: usize) -> bool {
        self.nested_depth.is_none() || self.units_per_stage()[s + 1..].iter().sum::<usize>() > 0
    }
}

/// The network options every tool shares beside architecture, depth, width, slope and `eps_i`
/// (which sweeps take as lists): the same keys in every tool's TOML config and the same flags
/// (`revstab::cli::NetArgs`) on every command line. Every field has a default that builds
/// the networks the tools built before these options existed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetOptions {
    /// Input channels (3: RGB images; training takes its data's).
    pub in_channels: usize,
    /// The first layer.
    pub stem: Stem,
    /// Downsampling between stages (`None`: the architecture's, [`Arch::default_pools`]; an
    /// empty list: one stage, no pooling).
    pub pools: Option<Vec<PoolKind>>,
    /// The F (= G) chain of every block (`None`: [`Arch::default_fg`]); the layer-wise network
    /// has no blocks and ignores it (a tool whose only architecture is layer-wise rejects it).
    pub fg: Option<Vec<LayerKind>>,
    /// Convolution init `N(0, (init_scale sqrt(2 / fan_in))^2)`: 1 = Kaiming normal, the one
    /// default of every tool.
    pub init_scale: f64,
    /// Batch-norm gamma init (`None`: log-normal with `gamma_spread`, ones for 0).
    pub gamma_init: Option<GammaInit>,
    /// Spread of the log-normal gamma init (the older spelling of `gamma_init =
    /// "lognormal:S"`; used when `gamma_init` is unset).
    pub gamma_spread: f64,
    /// Nested depths (sweeps): every depth is a prefix of the deepest network of the sweep,
    /// with the same weights ([`NetConfig::nested_depth`]).
    pub nested: bool,
}

/// The default convolution init scale of every tool: Kaiming normal (`N(0, 2 / fan_in)`).
pub const DEFAULT_INIT_SCALE: f64 = 1.0;

/// The `expected` of the error for an `fg` given to the layer-wise network.
const LAYERWISE_NO_FG: &str =
    "no fg (the layer-wise network has no F/G blocks; its units are [InvConv, InvBN, InvLeakyReLU])";

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            in_channels: 3,
            stem: Stem::Conv,
            pools: None,
            fg: None,
            init_scale: DEFAULT_INIT_SCALE,
            gamma_init: None,
            gamma_spread: 0.0,
            nested: false,
        }
    }
}

impl NetOptions {
    /// Reject an F/G chain when no architecture of `archs` has blocks (all layer-wise).
    pub fn check_fg_for(&self, archs: &[Arch]) -> Result<()> {
        match &self.fg {
            Some(fg) if !archs.is_empty() && archs.iter().all(|a| *a == Arch::Layerwise) => Err(
                Error::config("fg", LAYERWISE_NO_FG, format!("fg = {}", kinds_text(fg))),
            ),
            _ => Ok(()),
        }
    }

    /// Set these options on `c`; `deepest` is the deepest network of the sweep (used when
    /// `nested`).
    pub fn apply(&self, c: &mut NetConfig, deepest: usize) {
        c.in_channels = self.in_channels;
        c.stem = self.stem;
        if let Some(pools) = &self.pools {
            c.pools = pools.clone();
        }
        // The chain of the blocks: the layer-wise network has none, so a tool measuring several
        // architectures applies it to the others (a layer-wise `NetConfig` with one is an error).
        c.fg = if c.arch == Arch::Layerwise {
            None
        } else {
            self.fg.clone()
        };
        c.init_scale = self.init_scale;
        c.gamma_init = self.gamma_init;
        c.gamma_spread = self.gamma_spread;
        c.nested_depth = self.nested.then_some(deepest.max(c.depth));
    }
}

/// `a,b,c` for error messages.
fn kinds_text(kinds: &[LayerKind]) -> String {
    let v: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    format!("[{}]", v.join(", "))
}

/// A built network: its parameters and its chain of layers (stem first, head last).
pub struct Network {
    /// The configuration.
    pub config: NetConfig,
    /// Storage dtype.
    pub dtype: DType,
    /// Device.
    pub device: Device,
    /// Parameters (a candle `VarMap`; `params.varmap.save(path)` writes safetensors).
    pub params: ParamStore,
    /// The layers.
    pub chain: Chain,
    /// Number of primitive layers with a trainable or invertible role (reported with depth).
    pub num_layers: usize,
    /// The backend every layer is computed by.
    pub backend: Backend,
    /// Index in `chain.layers` of the first layer of every unit (layer-wise) or block, bottom
    /// to top (`config.depth` entries): where checkpointed segments may start.
    pub unit_starts: Vec<usize>,
}

/// What a training step computed.
pub struct StepOutput {
    /// Mean cross-entropy of the batch.
    pub loss: f64,
    /// The logits (compute dtype).
    pub logits: Tensor,
    /// Parameter gradients by name (empty when not requested).
    pub grads: HashMap<String, Tensor>,
    /// Every activation the backward visited, top down (empty when not requested).
    pub trace: Vec<TraceEntry>,
    /// Bytes the forward kept on the tape for the backward.
    pub tape_bytes: usize,
    /// The input of the head (the output of the invertible part), as the backward started from.
    pub head_input: Option<Tensor>,
    /// From [`Network::step_with_grad_norm`] off the CPU: the sum of squares of every parameter
    /// gradient (reduced on the device in f64, f32 on Metal; non-finite when a gradient is),
    /// read with the loss so that the training loop needs no read of its own. `None` otherwise
    /// (on the CPU reading the gradients costs no transfer: [`crate::train::grad_sq_norm`]).
    pub grad_sq_norm: Option<f64>,
}

/// Options of [`Network::step`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StepOptions {
    /// Compute parameter gradients.
    pub grads: bool,
    /// Record every activation the backward visits.
    pub trace: bool,
    /// Add white Gaussian noise of this std (absolute) to the head's stored input before the
    /// backward starts reconstructing (reconstructed mode), drawn from `noise_seed`.
    pub output_noise: Option<f64>,
    /// Seed of the output noise.
    pub noise_seed: u64,
    /// How reversible blocks rebuild their input in reconstructed mode.
    pub rebuild: Rebuild,
    /// Checkpointed mode: units or blocks per segment, `1..=depth` (`None`:
    /// `ceil(sqrt(depth))`, [`crate::backprop::default_segment`]).
    pub segment: Option<usize>,
}

fn boxed<L: Layer + 'static>(l: L) -> Box<dyn Layer> {
    Box::new(l)
}

impl Network {
    /// Build `config` in `dtype` on `device` with the default backend
    /// ([`Backend::Kernels`]); weights from `config.seed`.
    pub fn build(config: &NetConfig, dtype: DType, device: &Device) -> Result<Network> {
        Network::build_with(config, dtype, device, Backend::default())
    }

    /// Build `config` in `dtype` on `device`, every layer computed by `backend`; weights from
    /// `config.seed` (the same for every backend).
    pub fn build_with(
        config: &NetConfig,
        dtype: DType,
        device: &Device,
        backend: Backend,
    ) -> Result<Network> {
        config.validate()?;
        let store = ParamStore::new(config.seed, dtype, device);
        let bn_inv = BatchNormConfig {
            eps: config.bn_eps,
            eps_i: config.eps_i,
            reparam: true,
            momentum: 0.1,
            gamma_spread: config.gamma_spread,
            gamma_init: config.gamma_init,
        };
        let bn_plain = BatchNormConfig {
            reparam: false,
            eps_i: 0.0,
            ..bn_inv
        };
        let mut layers: Vec<Box<dyn Layer>> = Vec::new();
        let mut c = config.width;
        let mut groups = 1usize;
        let mut num_layers = 0;
        let mut unit_starts = Vec::with_capacity(config.depth);
        if config.stem == Stem::Conv {
            layers.push(boxed(
                Conv2d::new(
                    &store,
                    "stem",
                    config.in_channels,
                    c,
                    3,
                    1,
                    false,
                    config.init_scale,
                )?
                .with_backend(backend),
            ));
            num_layers += 1;
        }
        let fg = config.fg_kinds();
        // The F (or G) chain named `q` on `ch` channels: convolutions `conv1, conv2, ...`, batch
        // norms `bn1, bn2, ...`, activations `act` (`relu`), `act2` (`relu2`), ... (the names of
        // the default chains, so their weights do not change).
        let block_chain = |q: &str, ch: usize, invertible: bool| -> Result<Vec<Box<dyn Layer>>> {
            let (mut convs, mut bns, mut acts, mut relus) = (0, 0, 0, 0);
            let numbered = |base: &str, k: usize| {
                if k == 1 {
                    format!("{q}.{base}")
                } else {
                    format!("{q}.{base}{k}")
                }
            };
            let mut l: Vec<Box<dyn Layer>> = Vec::with_capacity(fg.len());
            for kind in &fg {
                match (kind, invertible) {
                    (LayerKind::Conv, true) => {
                        convs += 1;
                        l.push(boxed(AdditiveCoupling::inv_conv_with(
                            &store,
                            &format!("{q}.conv{convs}"),
                            ch,
                            config.init_scale,
                            backend,
                        )?));
                    }
                    (LayerKind::Conv, false) => {
                        convs += 1;
                        l.push(boxed(
                            Conv2d::new(
                                &store,
                                &format!("{q}.conv{convs}"),
                                ch,
                                ch,
                                3,
                                1,
                                false,
                                config.init_scale,
                            )?
                            .with_backend(backend),
                        ));
                    }
                    (LayerKind::Bn, _) => {
                        bns += 1;
                        let bn = if invertible { bn_inv } else { bn_plain };
                        l.push(boxed(
                            InvBatchNorm::new(&store, &format!("{q}.bn{bns}"), ch, bn)?
                                .with_backend(backend),
                        ));
                    }
                    (LayerKind::Lrelu, _) => {
                        acts += 1;
                        l.push(boxed(
                            InvLeakyReLU::new(&numbered("act", acts), config.slope)?
                                .with_backend(backend),
                        ));
                    }
                    (LayerKind::Relu, false) => {
                        relus += 1;
                        l.push(boxed(
                            Relu::new(&numbered("relu", relus)).with_backend(backend),
                        ));
                    }
                    (LayerKind::Relu, true) => {
                        let d = "relu is not invertible (validated configs never get here)";
                        return Err(Error::internal(q, d));
                    }
                }
            }
            Ok(l)
        };
        let layout = config.units_per_stage();
        for (s, &units) in layout.iter().enumerate() {
            for u in 0..units {
                unit_starts.push(layers.len());
                match config.arch {
                    Arch::Layerwise => {
                        let p = format!("s{s}.u{u}");
                        layers.push(boxed(AdditiveCoupling::inv_conv_with(
                            &store,
                            &format!("{p}.conv"),
                            c,
                            config.init_scale,
                            backend,
                        )?));
                        layers.push(boxed(
                            InvBatchNorm::new(&store, &format!("{p}.bn"), c, bn_inv)?
                                .with_backend(backend),
                        ));
                        layers.push(boxed(
                            InvLeakyReLU::new(&format!("{p}.act"), config.slope)?
                                .with_backend(backend),
                        ));
                        num_layers += 3;
                    }
                    Arch::Hybrid | Arch::Revnet | Arch::Irevnet => {
                        let p = format!("s{s}.b{u}");
                        let half = c / 2;
                        let (invertible, rebuild) = if config.arch == Arch::Hybrid {
                            (true, InnerRebuild::LayerwiseInverse)
                        } else {
                            (false, InnerRebuild::Recompute)
                        };
                        let chain = |side: &str| -> Result<Chain> {
                            let q = format!("{p}.{side}");
                            let l = block_chain(&q, half, invertible)?;
                            Chain::new(q, l, rebuild, Some(Role::Hidden))
                        };
                        let (f, g) = (chain("F")?, chain("G")?);
                        layers.push(boxed(
                            AdditiveCoupling::new(&p, c, f, g, Role::BlockInput)?
                                .with_backend(backend),
                        ));
                        num_layers += 2 * fg.len();
                    }
                    Arch::Resnet => {
                        let p = format!("s{s}.b{u}");
                        let l = block_chain(&p, c, false)?;
                        let f = Chain::new(
                            format!("{p}.F"),
                            l,
                            InnerRebuild::Recompute,
                            Some(Role::Hidden),
                        )?;
                        layers.push(boxed(Residual::new(&p, f)));
                        num_layers += fg.len();
                    }
                }
            }
            if s >= config.pools.len() || !config.keeps_pool(s) {
                continue;
            }
            let name = format!("pool{s}");
            match config.pools[s] {
                PoolKind::Channel => {
                    layers.push(boxed(ChannelPool::new(&name)));
                    c *= 4;
                }
                PoolKind::Batch => {
                    layers.push(boxed(BatchPool::new(&name)));
                    groups *= 4;
                }
                PoolKind::Max => {
                    layers.push(boxed(MaxPool2::new(&format!("{name}.max"))));
                    layers.push(boxed(
                        Conv2d::new(&store, &format!("{name}.proj"), c, 2 * c, 1, 1, false, 1.0)?
                            .with_backend(backend),
                    ));
                    c *= 2;
                    num_layers += 1;
                }
            }
            num_layers += 1;
        }
        layers.push(boxed(Head::new(&store, "head", c, config.classes, groups)?));
        num_layers += 1;
        let chain = Chain::new("net", layers, InnerRebuild::LayerwiseInverse, None)?;
        Ok(Network {
            config: config.clone(),
            dtype,
            device: device.clone(),
            params: store,
            chain,
            num_layers,
            backend,
            unit_starts,
        })
    }

    /// The same network in another dtype with the same weights (cast) and the same backend:
    /// e.g. the f64 shadow of an f32 network, whose weights are exactly the f32 values.
    pub fn cast(&self, dtype: DType) -> Result<Network> {
        self.cast_with(dtype, self.backend)
    }

    /// The f64 shadow of this network ([`Network::cast`] to f64) on the device that computes
    /// f64: this network's device, or the CPU when it has no f64 (Metal;
    /// [`crate::device::has_f64`]). Feed it batches on [`Network::device`] of the shadow.
    pub fn f64_shadow(&self) -> Result<Network> {
        self.f64_shadow_on(crate::device::has_f64(&self.device))
    }

    /// [`Network::f64_shadow`] with the device's f64 support given: `device_has_f64 = false`
    /// builds the shadow on the CPU whatever this network's device (the path Metal takes; tests
    /// drive it with this flag).
    pub fn f64_shadow_on(&self, device_has_f64: bool) -> Result<Network> {
        let device = crate::device::f64_device(&self.device, device_has_f64);
        let other = Network::build_with(&self.config, DType::F64, &device, self.backend)?;
        other.params.copy_from(&self.params)?;
        Ok(other)
    }

    /// The same network in another dtype with the same weights (cast), computed by `backend`:
    /// e.g. the same network on the other backend (`dtype` = [`Network::dtype`]).
    pub fn cast_with(&self, dtype: DType, backend: Backend) -> Result<Network> {
        let other = Network::build_with(&self.config, dtype, &self.device, backend)?;
        other.params.copy_from(&self.params)?;
        Ok(other)
    }

    /// Check an input batch: shape `(B, in_channels, size, size)`, finite values (off the CPU
    /// a device-side count, [`crate::util::ensure_finite`]).
    pub fn check_input(&self, x: &Tensor) -> Result<()> {
        let c = &self.config;
        let ok = matches!(x.dims4(), Ok((b, ch, h, w)) if b > 0 && ch == c.in_channels && h == c.input_size && w == c.input_size);
        if !ok {
            return Err(Error::ShapeMismatch {
                context: "network input".into(),
                expected: format!(
                    "(batch, {}, {}, {})",
                    c.in_channels, c.input_size, c.input_size
                ),
                got: x.dims().to_vec(),
            });
        }
        crate::util::ensure_finite(x, "network input")
    }

    /// Differentiable forward (whole-network autograd reference): logits.
    pub fn forward_graph(&self, x: &Tensor) -> Result<Tensor> {
        self.chain
            .forward_pass(&x.to_dtype(self.dtype)?, Pass::Graph)
    }

    /// Inference logits with running statistics.
    pub fn eval_logits(&self, x: &Tensor) -> Result<Tensor> {
        self.chain
            .forward_pass(&x.to_dtype(self.dtype)?, Pass::Eval)
    }

    /// Whole-network candle autograd: loss and gradients (the reference for the backward).
    pub fn autograd_grads(
        &self,
        x: &Tensor,
        labels: &Tensor,
    ) -> Result<(f64, HashMap<String, Tensor>)> {
        let logits = self.forward_graph(x)?;
        let loss = candle_nn::loss::cross_entropy(&logits, labels)?;
        let store = loss.backward()?;
        let mut grads = HashMap::new();
        for p in self.chain.params() {
            if let Some(g) = store.get(p.var.as_tensor()) {
                grads.insert(p.name.clone(), g.clone());
            }
        }
        Ok((loss.to_dtype(DType::F64)?.to_scalar::<f64>()?, grads))
    }

    /// The checkpointed segments for `every` units or blocks per segment (`None`: the default
    /// `ceil(sqrt(depth))`): the index in `chain.layers` of the first layer of each segment.
    /// The first segment starts at the stem (its checkpoint is the image); segment `j > 0`
    /// starts at unit `j * every` (the poolings between stages belong to the segment of the
    /// unit below them). Errors: `every` is 0 or more than the depth.
    pub fn checkpoint_segments(&self, every: Option<usize>) -> Result<Vec<usize>> {
        let depth = self.unit_starts.len();
        let k = crate::backprop::segment_length(every, depth)?;
        let mut segments = vec![0];
        segments.extend(self.unit_starts.iter().skip(k).step_by(k).copied());
        Ok(segments)
    }

    /// One training step's forward and backward with activations from `source`. ResNet has no
    /// inverse, so its reconstructed mode is its stored mode. The checkpointed source stores
    /// the segment inputs of [`Network::checkpoint_segments`] (`opts.segment`) and the
    /// top segment whole.
    ///
    /// Host reads: one per step. The loss and, on a GPU, the device-side checks of the step
    /// (finite input, batch-norm zero scales) are read together at the end
    /// ([`crate::device::with_deferred_checks`]); a failed check is then the step's error. On
    /// the CPU the checks run at once, as before.
    pub fn step(
        &self,
        x: &Tensor,
        labels: &Tensor,
        source: Source,
        opts: StepOptions,
    ) -> Result<StepOutput> {
        self.step_reading(x, labels, source, opts, false)
    }

    /// [`Network::step`] that, off the CPU and with gradients, also reduces the gradients' sum
    /// of squares on the device and reads it with the loss ([`StepOutput::grad_sq_norm`]):
    /// what the training loop's clipping and divergence check need, without a read of its own.
    pub fn step_with_grad_norm(
        &self,
        x: &Tensor,
        labels: &Tensor,
        source: Source,
        opts: StepOptions,
    ) -> Result<StepOutput> {
        self.step_reading(x, labels, source, opts, opts.grads && !self.device.is_cpu())
    }

    fn step_reading(
        &self,
        x: &Tensor,
        labels: &Tensor,
        source: Source,
        opts: StepOptions,
        want_norm: bool,
    ) -> Result<StepOutput> {
        let ((mut out, loss), values) = crate::device::with_deferred_checks(
            &self.device,
            || self.step_unread(x, labels, source, opts),
            |(out, loss)| {
                let mut reads = vec![loss.clone()];
                if want_norm {
                    reads.push(grad_sq_norm_tensor(&out.grads, &self.device)?);
                }
                Ok(reads)
            },
        )?;
        drop(loss);
        out.loss = values[0];
        out.grad_sq_norm = want_norm.then(|| values[1]);
        Ok(out)
    }

    /// [`Network::step`] without its host read: the output (loss NaN) and the loss tensor.
    fn step_unread(
        &self,
        x: &Tensor,
        labels: &Tensor,
        source: Source,
        opts: StepOptions,
    ) -> Result<(StepOutput, Tensor)> {
        self.check_input(x)?;
        let segments = match source {
            Source::Checkpointed => Some(self.checkpoint_segments(opts.segment)?),
            Source::Stored | Source::Reconstructed => None,
        };
        let store_all = source != Source::Reconstructed || !self.config.arch.reconstructable();
        let mut tape = Tape::for_trace(store_all, opts.trace);
        let x = x.to_dtype(self.dtype)?;
        let logits = match &segments {
            Some(segments) => forward_checkpointed(&self.chain, &x, segments, &mut tape)?,
            None => self.chain.forward_tape(&x, &mut tape, true)?,
        };
        // The head pushed its input last: the output of the invertible part.
        let mut head_input = tape.pop("head")?;
        if let (Some(std), false) = (opts.output_noise, store_all) {
            let mut rng = crate::util::rng_for(opts.noise_seed, "output-noise");
            let noise = crate::util::randn(
                &mut rng,
                head_input.dims(),
                0.0,
                std,
                head_input.dtype(),
                head_input.device(),
            )?;
            head_input = (&head_input + noise)?;
        }
        let tape_bytes = tape.bytes() + bytes_of(&head_input);
        // The step keeps the head input for the caller only when tracing: otherwise the tape
        // holds it alone and the backward may overwrite it in place (crate::backprop).
        let kept_head_input = opts.trace.then(|| head_input.clone());
        tape.push(head_input);
        let (loss, grad_logits) = cross_entropy_unread(&logits, labels, opts.grads)?;
        let backward_source = match (&segments, store_all) {
            (Some(_), _) => Source::Checkpointed,
            (None, true) => Source::Stored,
            (None, false) => Source::Reconstructed,
        };
        let mut backward =
            Backward::new(backward_source, opts.rebuild, tape, opts.grads, opts.trace)
                .with_segments(segments.unwrap_or_default());
        let back = backward.step(
            &self.chain,
            Some(Held::shared(logits.clone())),
            grad_logits.map(Held::owned),
            None,
        )?;
        drop(back);
        let out = StepOutput {
            loss: f64::NAN,
            logits,
            grads: backward.grads.map(Grads::into_map).unwrap_or_default(),
            trace: backward.trace.unwrap_or_default(),
            tape_bytes,
            head_input: kept_head_input,
            grad_sq_norm: None,
        };
        Ok((out, loss))
    }
}

/// Sum of squares of every gradient in `grads`, as a scalar tensor on `device`, reduced there
/// in f64 where `device` has it (f32 on Metal).
fn grad_sq_norm_tensor(grads: &HashMap<String, Tensor>, device: &Device) -> Result<Tensor> {
    let dtype = if crate::device::has_f64(device) {
        DType::F64
    } else {
        DType::F32
    };
    let mut total = Tensor::zeros((), dtype, device)?;
    for g in grads.values() {
        total = (total + g.to_dtype(dtype)?.sqr()?.sum_all()?)?;
    }
    Ok(total)
}

fn bytes_of(t: &Tensor) -> usize {
    t.elem_count() * t.dtype().size_in_bytes()
}

/// Mean cross-entropy of `logits (B, classes)` (compute dtype) against `labels (B,)` (u32),
/// and, when `grad`, its gradient in closed form: `(softmax(logits) - onehot(labels)) / B`.
pub fn cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    grad: bool,
) -> Result<(f64, Option<Tensor>)> {
    let (loss, g) = cross_entropy_unread(logits, labels, grad)?;
    Ok((loss.to_dtype(DType::F64)?.to_scalar::<f64>()?, g))
}

/// [`cross_entropy`] with the loss left on the device (a scalar tensor in the logits' dtype).
fn cross_entropy_unread(
    logits: &Tensor,
    labels: &Tensor,
    grad: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let (b, classes) = logits.dims2()?;
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    // The loss as candle_nn's `cross_entropy` computes it (same rounding).
    let loss = candle_nn::loss::nll(&log_p, labels)?;
    let g = if grad {
        let onehot = labels
            .to_dtype(DType::U32)?
            .reshape((b, 1))?
            .broadcast_eq(
                &Tensor::arange(0u32, classes as u32, labels.device())?.reshape((1, classes))?,
            )?
            .to_dtype(logits.dtype())?;
        Some(((log_p.exp()? - onehot)? / b as f64)?)
    } else {
        None
    };
    Ok((loss, g))
}

impl Network {
    /// Parameters by name, in layer order.
    pub fn named_params(&self) -> Vec<(String, Var)> {
        self.chain
            .params()
            .into_iter()
            .map(|p| (p.name, p.var))
            .collect()
    }

    /// Number of scalar parameters (every element of every parameter tensor).
    pub fn num_params(&self) -> usize {
        self.named_params()
            .iter()
            .map(|(_, v)| v.as_tensor().elem_count())
            .sum()
    }

    /// Number of parameter tensors.
    pub fn chain_params_len(&self) -> usize {
        self.chain.params().len()
    }
}

impl Network {
    /// Save the parameters as safetensors (candle `VarMap::save`).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        self.params
            .varmap
            .save(path)
            .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))
    }

    /// Load parameters saved by [`Network::save`] from a network of the same config.
    pub fn load(&mut self, path: &std::path::Path) -> Result<()> {
        if !path.exists() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        self.params
            .varmap
            .load(path)
            .map_err(|e| Error::CorruptData {
                path: path.display().to_string(),
                offset: 0,
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GPU's gradient norm (summed on the device, read once with the loss) equals the
    /// training loop's host sum, here on CPU tensors; `step_with_grad_norm` on the CPU leaves
    /// it to the host (nothing to save there).
    #[test]
    fn device_side_gradient_norm_equals_the_host_sum() {
        let mut cfg = NetConfig::new(Arch::Hybrid);
        cfg.depth = 2;
        let net = Network::build(&cfg, DType::F32, &Device::Cpu).unwrap();
        let x = crate::util::randn(
            &mut crate::util::rng_for(0, "norm-test"),
            &[4, cfg.in_channels, cfg.input_size, cfg.input_size],
            0.0,
            1.0,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let labels = Tensor::new(&[0u32, 1, 2, 3], &Device::Cpu).unwrap();
        let opts = StepOptions {
            grads: true,
            ..StepOptions::default()
        };
        let out = net
            .step_with_grad_norm(&x, &labels, Source::Reconstructed, opts)
            .unwrap();
        assert!(out.grad_sq_norm.is_none());
        assert!(!out.grads.is_empty());
        let host = crate::train::grad_sq_norm(&out.grads).unwrap();
        let device = grad_sq_norm_tensor(&out.grads, &Device::Cpu)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(host > 0.0 && host.is_finite(), "{host}");
        assert!(
            (device - host).abs() <= 1e-12 * host,
            "device {device} vs host {host}"
        );
        let plain = net.step(&x, &labels, Source::Reconstructed, opts).unwrap();
        assert_eq!(plain.loss, out.loss);
        assert!(plain.grad_sq_norm.is_none());
    }
}
