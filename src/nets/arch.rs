//! The architectures as data: one [`ArchSpec`] per [`Arch`], in one table ([`Arch::spec`]).
//!
//! Everything that differs between the five networks is a field of the table: the unit a
//! network repeats ([`Unit`]), its default poolings and which poolings it takes, its default
//! F/G chain, whether it has a leaky-ReLU slope, whether its activations can be reconstructed,
//! the channel multiple its couplings need, and its entry in the analytic memory model
//! ([`Accounting`]). Building ([`crate::nets::Network::build_with`]), validation
//! ([`crate::nets::NetConfig::validate`]), the memory model ([`crate::measure::memory`]) and the
//! figures read these fields; no other code compares architectures. Adding an architecture is
//! adding a variant and its row (docs/extending.md).

use crate::error::{Error, Result};
use crate::layers::InnerRebuild;
use serde::{Deserialize, Serialize};

/// Network architecture: a name for one row of the architecture table ([`Arch::spec`]).
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

impl PoolKind {
    /// The symbol of the paper's Table 1: `P_c`, `P_b`, `Max`.
    pub fn symbol(self) -> &'static str {
        match self {
            PoolKind::Channel => "P_c",
            PoolKind::Batch => "P_b",
            PoolKind::Max => "Max",
        }
    }

    /// Whether the pooling has an inverse (P_c, P_b; max pooling stores its input).
    pub fn invertible(self) -> bool {
        self != PoolKind::Max
    }
}

/// One layer of a reversible block's F or G chain ([`crate::nets::NetOptions::fg`]).
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

/// The unit an architecture repeats `depth` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `[InvConv, InvBN, InvLeakyReLU]` on the whole tensor, each layer inverted on its own
    /// (no F/G chain).
    Layerwise,
    /// A reversible block `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)` on the two channel halves. Its
    /// F and G chains are built from invertible layers when `invertible_fg` (the hybrid), and
    /// their hidden activations are rebuilt in the backward as `inner` says.
    Coupling {
        /// F and G made of invertible layers (every kind must be invertible).
        invertible_fg: bool,
        /// How the hidden activations of F and G are rebuilt.
        inner: InnerRebuild,
    },
    /// A residual block `x + F(x)`: no inverse, everything stored.
    Residual,
}

/// Which accounting of the analytic memory model ([`crate::measure::memory`]) describes an
/// architecture trained in its own mode (reconstructed for the reversible ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Accounting {
    /// Every convolution and batch norm stores its input (eq. 7-10): the ResNet, and every
    /// network trained in stored mode.
    StoredInputs,
    /// Reversible blocks with ordinary F and G, hidden values recomputed (local bottleneck,
    /// sec. 3.4-3.5): RevNet, i-RevNet.
    ReversibleBlock,
    /// Layer-wise inverses (eq. 34).
    Layerwise,
    /// Reversible blocks whose F and G are inverted layer-wise (eq. 35).
    Hybrid,
}

impl Accounting {
    /// The channel multiple the accounting's splits need: 1 (stored inputs), 2 (reversible,
    /// layer-wise), 4 (hybrid: halves of halves).
    pub fn channel_divisor(self) -> usize {
        match self {
            Accounting::StoredInputs => 1,
            Accounting::ReversibleBlock | Accounting::Layerwise => 2,
            Accounting::Hybrid => 4,
        }
    }
}

/// The memory-model entry of an architecture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEntry {
    /// The accounting of the architecture in its own mode.
    pub accounting: Accounting,
    /// Name in the paper's Table 1.
    pub paper_name: &'static str,
    /// Family name in the analytic model's result files (`table1.csv`).
    pub family: &'static str,
    /// Convolutions per unit or F/G module that store their input in stored mode (the
    /// [`Accounting::StoredInputs`] model of a reversible network): one for a layer-wise unit,
    /// the module's own count (`None`) for a block.
    pub stored_convs_per_unit: Option<usize>,
    /// Every pooling must be invertible (the model rejects max pooling).
    pub fully_invertible: bool,
}

/// One row of the architecture table: everything that defines an architecture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchSpec {
    /// The architecture this row describes.
    pub arch: Arch,
    /// Name used in configs and result files.
    pub name: &'static str,
    /// Name in captions ("layer-wise invertible", "hybrid", ...).
    pub long_name: &'static str,
    /// The unit repeated `depth` times.
    pub unit: Unit,
    /// Default downsampling between stages.
    pub default_pools: &'static [PoolKind],
    /// Whether the architecture takes max pooling (and only it) or the invertible poolings.
    pub max_pooling: bool,
    /// Default F (= G) chain of a block (empty: no blocks).
    pub default_fg: &'static [LayerKind],
    /// A leaky ReLU with slope `n` (otherwise plain ReLU: a sweep uses one slope).
    pub has_slope: bool,
    /// Whether activations can be reconstructed (otherwise the reconstructed step is the
    /// stored step).
    pub reconstructs: bool,
    /// `width` must be a multiple of this (channel splits of the couplings).
    pub width_multiple: usize,
    /// SNR falls linearly in dB with depth (fits in dB per unit) rather than with log depth
    /// (fits in dB per doubling).
    pub snr_linear_in_depth: bool,
    /// Relative cost of one unit in a training step (ordering of parallel work only).
    pub unit_cost: usize,
    /// The architecture this one equals with one stage (no pooling), if any.
    pub one_stage_twin: Option<Arch>,
    /// The analytic memory model's entry.
    pub memory: MemoryEntry,
}

use LayerKind::{Bn, Conv, Lrelu, Relu};
use PoolKind::{Batch, Channel, Max};

const INVERTIBLE_FG: &[LayerKind] = &[Conv, Bn, Lrelu, Conv, Bn];
const PLAIN_FG: &[LayerKind] = &[Conv, Bn, Relu, Conv, Bn];

/// The architecture table.
const TABLE: [ArchSpec; 5] = [
    ArchSpec {
        arch: Arch::Layerwise,
        name: "layerwise",
        long_name: "layer-wise invertible",
        unit: Unit::Layerwise,
        default_pools: &[Channel, Channel, Batch],
        max_pooling: false,
        default_fg: &[],
        has_slope: true,
        reconstructs: true,
        width_multiple: 2,
        snr_linear_in_depth: true,
        unit_cost: 1,
        one_stage_twin: None,
        memory: MemoryEntry {
            accounting: Accounting::Layerwise,
            paper_name: "Layer-wise",
            family: "LayerWise",
            stored_convs_per_unit: Some(1),
            fully_invertible: true,
        },
    },
    ArchSpec {
        arch: Arch::Hybrid,
        name: "hybrid",
        long_name: "hybrid",
        unit: Unit::Coupling {
            invertible_fg: true,
            inner: InnerRebuild::LayerwiseInverse,
        },
        default_pools: &[Channel, Channel, Batch],
        max_pooling: false,
        default_fg: INVERTIBLE_FG,
        has_slope: true,
        reconstructs: true,
        width_multiple: 4,
        snr_linear_in_depth: false,
        unit_cost: 3,
        one_stage_twin: None,
        memory: MemoryEntry {
            accounting: Accounting::Hybrid,
            paper_name: "Hybrid",
            family: "Hybrid",
            stored_convs_per_unit: None,
            fully_invertible: true,
        },
    },
    ArchSpec {
        arch: Arch::Revnet,
        name: "revnet",
        long_name: "RevNet",
        unit: Unit::Coupling {
            invertible_fg: false,
            inner: InnerRebuild::Recompute,
        },
        default_pools: &[Max, Max, Max],
        max_pooling: true,
        default_fg: PLAIN_FG,
        has_slope: false,
        reconstructs: true,
        width_multiple: 2,
        snr_linear_in_depth: false,
        unit_cost: 1,
        one_stage_twin: None,
        memory: MemoryEntry {
            accounting: Accounting::ReversibleBlock,
            paper_name: "RevNet",
            family: "RevNet",
            stored_convs_per_unit: None,
            fully_invertible: false,
        },
    },
    ArchSpec {
        arch: Arch::Irevnet,
        name: "irevnet",
        long_name: "i-RevNet",
        unit: Unit::Coupling {
            invertible_fg: false,
            inner: InnerRebuild::Recompute,
        },
        default_pools: &[Channel, Channel, Channel],
        max_pooling: false,
        default_fg: PLAIN_FG,
        has_slope: false,
        reconstructs: true,
        width_multiple: 2,
        snr_linear_in_depth: false,
        unit_cost: 1,
        one_stage_twin: Some(Arch::Revnet),
        memory: MemoryEntry {
            accounting: Accounting::ReversibleBlock,
            paper_name: "i-RevNet",
            family: "IRevNet",
            stored_convs_per_unit: None,
            fully_invertible: true,
        },
    },
    ArchSpec {
        arch: Arch::Resnet,
        name: "resnet",
        long_name: "ResNet",
        unit: Unit::Residual,
        default_pools: &[Max, Max, Max],
        max_pooling: true,
        default_fg: PLAIN_FG,
        has_slope: false,
        reconstructs: false,
        width_multiple: 2,
        snr_linear_in_depth: false,
        unit_cost: 1,
        one_stage_twin: None,
        memory: MemoryEntry {
            accounting: Accounting::StoredInputs,
            paper_name: "ResNet",
            family: "ResNet",
            stored_convs_per_unit: None,
            fully_invertible: false,
        },
    },
];

impl Arch {
    /// All architectures, in table order.
    pub const ALL: [Arch; 5] = [
        Arch::Layerwise,
        Arch::Hybrid,
        Arch::Revnet,
        Arch::Irevnet,
        Arch::Resnet,
    ];

    /// This architecture's row of the table.
    pub fn spec(self) -> &'static ArchSpec {
        let spec = &TABLE[self as usize];
        debug_assert_eq!(spec.arch, self);
        spec
    }

    /// Name used in configs and result files.
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// A leaky ReLU with slope `n` ([`ArchSpec::has_slope`]).
    pub fn has_slope(self) -> bool {
        self.spec().has_slope
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
        let key = name.trim().to_ascii_lowercase().replace(['-', '_'], "");
        TABLE
            .iter()
            .find(|s| s.name == key)
            .map(|s| s.arch)
            .ok_or_else(|| Error::Unknown {
                kind: "architecture",
                got: name.into(),
                expected: TABLE.map(|s| s.name).join(", "),
            })
    }

    /// Default downsampling between stages ([`ArchSpec::default_pools`]).
    pub fn default_pools(self) -> Vec<PoolKind> {
        self.spec().default_pools.to_vec()
    }

    /// The default F (= G) chain of a block ([`ArchSpec::default_fg`]); the layer-wise network
    /// has none, and this returns the hybrid's.
    pub fn default_fg(self) -> Vec<LayerKind> {
        if self.has_blocks() {
            self.spec().default_fg.to_vec()
        } else {
            INVERTIBLE_FG.to_vec()
        }
    }

    /// Whether activations can be reconstructed (false for the ResNet baseline).
    pub fn reconstructable(self) -> bool {
        self.spec().reconstructs
    }

    /// Whether the unit is a block with an F/G chain (not the layer-wise unit).
    pub fn has_blocks(self) -> bool {
        self.spec().unit != Unit::Layerwise
    }

    /// What a depth counts: `unit` (layer-wise) or `block`.
    pub fn depth_noun(self) -> &'static str {
        if self.has_blocks() {
            "block"
        } else {
            "unit"
        }
    }

    /// Whether `pool` suits this architecture ([`ArchSpec::max_pooling`]).
    pub fn takes_pool(self, pool: PoolKind) -> bool {
        self.spec().max_pooling != pool.invertible()
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_its_own_architecture_and_parses_back() {
        for a in Arch::ALL {
            assert_eq!(a.spec().arch, a);
            assert_eq!(Arch::parse(a.as_str()).unwrap(), a);
            assert!(a.default_pools().iter().all(|&p| a.takes_pool(p)));
            assert!(a.default_fg().iter().all(|k| a.spec().unit
                != Unit::Coupling {
                    invertible_fg: true,
                    inner: InnerRebuild::LayerwiseInverse
                }
                || k.invertible()));
        }
        assert_eq!(Arch::parse("i-RevNet").unwrap(), Arch::Irevnet);
        assert!(Arch::parse("vgg").is_err());
    }
}
