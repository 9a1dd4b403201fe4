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
//! chains in the table are the defaults ([`Arch::default_fg`]); the network options
//! ([`NetOptions`], the `[net]` table of every config) set another chain, another downsampling
//! (or none), the stem and the initialisation, and [`NetConfig::nested_depth`] makes the
//! network a prefix of a deeper one. Each architecture is one row of a table ([`ArchSpec`],
//! `nets/arch.rs`) that building, validation and the memory model read.
//! Depth = number of units (layer-wise) or blocks (others), spread over the stages as evenly as
//! possible (earlier stages take the remainder). Stage `s + 1` starts after pooling `s`.
//!
//! Files: `arch.rs` (the architecture table), `options.rs` (the `[net]` table and its flags),
//! `config.rs` ([`NetConfig`] and its checks), `build.rs` (building), `step.rs` (the training
//! step).

mod arch;
mod build;
mod config;
mod options;
mod step;

pub use crate::backprop::{BackwardPlan, Rebuild, Source};
pub use crate::layers::GammaInit;
pub use arch::{Accounting, Arch, ArchSpec, LayerKind, MemoryEntry, PoolKind, Unit};
pub use config::NetConfig;
pub use options::{
    from_json_lifting, lift_legacy_net_keys, parse_fg, parse_pools, toml_error_text,
    with_net_table_hint, FgOpt, NetOptions, NetOverrides, PoolsOpt, Stem, DEFAULT_INIT_SCALE,
};
pub use step::{cross_entropy, StepOptions, StepOutput};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::layers::{Chain, Layer, ParamStore};
use candle_core::{DType, Device, Var};

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
