//! [`NetConfig`]: everything that defines a network except dtype and device, and its checks.

use super::options::{kinds_text, LAYERWISE_NO_FG};
use super::{Arch, LayerKind, NetOptions, PoolKind, Stem, Unit};
use crate::error::{Error, Result};
use crate::layers::GammaInit;
use serde::{Deserialize, Serialize};

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
    /// Input height = width.
    pub input_size: usize,
    /// Classes.
    pub classes: usize,
    /// Seed of the weight initialisation.
    pub seed: u64,
    /// The network options ([`NetOptions`]: stem, poolings, F/G chain, init, ...). Its
    /// `nested` flag is the sweeps' (they set [`NetConfig::nested_depth`]); a network reads
    /// `nested_depth` alone.
    #[serde(default)]
    pub net: NetOptions,
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
            input_size: 16,
            classes: 10,
            seed: 0,
            net: NetOptions::default(),
            nested_depth: None,
        }
    }

    /// Set the network options of `net` on this config, as a network of its architecture takes
    /// them ([`NetOptions::for_arch`]); with `net.nested`, this network is the prefix of the
    /// network of depth `deepest` (the deepest of the sweep, [`NetConfig::nested_depth`]).
    pub fn with_net(mut self, net: &NetOptions, deepest: usize) -> Self {
        self.net = net.for_arch(self.arch);
        self.nested_depth = net.nested.then_some(deepest.max(self.depth));
        self
    }

    /// The gamma init this config draws ([`GammaInit::resolve`]).
    pub fn gamma(&self) -> GammaInit {
        self.net.gamma()
    }

    /// The F/G chain of the blocks: [`NetOptions::fg`] or the architecture's default.
    pub fn fg_kinds(&self) -> Vec<LayerKind> {
        self.net.fg_for(self.arch)
    }

    /// The downsampling between stages (stages = pools + 1): [`NetOptions::pools`] or the
    /// architecture's default.
    pub fn pools(&self) -> Vec<PoolKind> {
        self.net.pools_for(self.arch)
    }

    /// One line describing the initialisation, for result files: conv init scale, gamma
    /// distribution, beta, head.
    pub fn init_description(&self) -> String {
        self.net.init_description()
    }

    /// Check the configuration; every problem is an error naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |c: &str, e: &str, g: String| Err(Error::config(c, e, g));
        if self.depth == 0 {
            return bad("depth", ">= 1", "0".into());
        }
        if self.width == 0 || self.net.in_channels == 0 {
            let got = format!("{} and {}", self.width, self.net.in_channels);
            return bad("width and in_channels", ">= 1 each", got);
        }
        if !(self.slope.is_finite() && self.slope > 0.0) {
            return Err(Error::InvalidSlope { slope: self.slope });
        }
        if !self.eps_i.is_finite() || !(self.bn_eps >= 0.0) {
            let got = format!("{} and {}", self.eps_i, self.bn_eps);
            return bad("eps_i and bn_eps", "a finite eps_i and bn_eps >= 0", got);
        }
        self.net.validate()?;
        if self.classes < 2 {
            return bad("classes", ">= 2", self.classes.to_string());
        }
        if self.net.stem == Stem::Identity && self.net.in_channels != self.width {
            let e = format!(
                "in_channels = width ({}): the input has `width` channels",
                self.width
            );
            return bad(
                "stem = identity",
                &e,
                format!("in_channels = {}", self.net.in_channels),
            );
        }
        let spec = self.arch.spec();
        if let Some(fg) = &self.net.fg {
            if !self.arch.has_blocks() {
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
            if let Unit::Coupling {
                invertible_fg: true,
                ..
            } = spec.unit
            {
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
        let need = spec.width_multiple;
        if self.width % need != 0 {
            return Err(Error::BadChannels {
                layer: format!("{} width", self.arch),
                expected: format!("a multiple of {need}"),
                got: self.width,
            });
        }
        let pools = self.pools();
        let factor = 1usize << pools.len();
        if self.input_size == 0 || self.input_size % factor != 0 {
            return Err(Error::OddSpatial {
                layer: format!(
                    "input of a network with {} poolings (a positive multiple of {factor})",
                    pools.len()
                ),
                height: self.input_size,
                width: self.input_size,
            });
        }
        for p in &pools {
            if !self.arch.takes_pool(*p) {
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
        let stages = self.pools().len() + 1;
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
