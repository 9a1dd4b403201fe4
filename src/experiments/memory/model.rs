//! The bridge to the analytic model of [`crate::measure::memory`]: a network's description
//! for the model ([`mem_config`], [`mem_config_stored`]), its analytic bytes per pixel in each
//! mode ([`analytic_bytes_per_pixel_in`]) and the paper's printed figure
//! ([`paper_bytes_per_pixel`]).

use crate::measure::memory::{analytic, MemConfig, Table1Row};
use crate::nets::{Accounting, Arch, NetConfig, PoolKind, Source, Stem};
use candle_core::DType;

/// The analytic model's description of a network ([`crate::measure::memory::MemConfig`]),
/// `None` when a stage has no block (the model needs at least one per stage).
pub fn mem_config(cfg: &NetConfig, bpe: usize) -> Option<MemConfig> {
    let channels = stage_channels(cfg);
    let blocks = cfg.units_per_stage();
    // The model knows the convolutional stem and the default F/G chains only.
    let default_fg = cfg
        .net
        .fg
        .as_ref()
        .is_none_or(|f| *f == cfg.arch.default_fg());
    if blocks.contains(&0) || cfg.net.stem != Stem::Conv || !default_fg {
        return None;
    }
    Some(MemConfig::new(cfg.arch, channels, cfg.pools(), blocks).with_bpe(bpe))
}

/// Channels of each stage of a network: `width`, then x4 after `P_c`, x1 after `P_b`, x2 after
/// max pooling (its 1x1 projection doubles them).
pub fn stage_channels(cfg: &NetConfig) -> Vec<usize> {
    let mut channels = vec![cfg.width];
    for p in &cfg.pools() {
        let c = *channels.last().expect("non-empty");
        channels.push(match p {
            PoolKind::Channel => 4 * c,
            PoolKind::Batch => c,
            PoolKind::Max => 2 * c,
        });
    }
    channels
}

/// The poolings of a network as the paper writes them (`P_c-P_c-P_b`, `Max-Max-Max`; `none`
/// for one stage).
pub fn pools_label(cfg: &NetConfig) -> String {
    let pools = cfg.pools();
    if pools.is_empty() {
        return "none".into();
    }
    pools
        .iter()
        .map(|&p| p.symbol())
        .collect::<Vec<_>>()
        .join("-")
}

pub(super) fn dash_joined(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

/// Analytic `M'_z + M'_g` (bytes per input pixel) of a network, when the model applies, in the
/// mode the model describes: reconstructed for the reversible architectures, stored for the
/// ResNet (which has no other).
pub fn analytic_bytes_per_pixel(cfg: &NetConfig, dtype: DType) -> Option<f64> {
    analytic(&mem_config(cfg, dtype.size_in_bytes())?)
        .ok()
        .map(|b| b.per_pixel)
}

/// The analytic model of a reversible network trained in *stored* mode: the paper's ResNet
/// accounting (eq. 7-10: every convolution and batch norm stores its input, activation
/// functions and poolings store nothing, live at the peak = every stored input + one gradient
/// buffer) applied to the same stages, channels, poolings and blocks. It is the
/// [`Accounting::StoredInputs`] model of [`crate::measure::memory`] with the layers per block of the
/// architecture: a RevNet, i-RevNet or hybrid block has two `[conv, BN]` pairs in each of F and
/// G on `c/2` channels, the `4c` per block of a ResNet basic block (two pairs on `c`); a
/// layer-wise unit has one (invertible) convolution and one batch norm, `2c` per unit. Not
/// counted, as in the paper: the inputs of the (leaky) ReLUs, which our stored mode keeps too
/// (its tape holds 3 activations per layer-wise unit and 5 per block), and the coupling
/// temporaries. For the ResNet this is its ordinary model. `None` where [`mem_config`] is.
pub fn mem_config_stored(cfg: &NetConfig, bpe: usize) -> Option<MemConfig> {
    let mut m = mem_config(cfg, bpe)?;
    if let Some(k) = cfg.arch.spec().memory.stored_convs_per_unit {
        m.convs_per_module = k;
    }
    m.accounting = Accounting::StoredInputs;
    Some(m)
}

/// Analytic stored-mode `M'_z + M'_g` of a network ([`mem_config_stored`]), bytes per pixel.
pub fn analytic_stored_bytes_per_pixel(cfg: &NetConfig, dtype: DType) -> Option<f64> {
    analytic(&mem_config_stored(cfg, dtype.size_in_bytes())?)
        .ok()
        .map(|b| b.per_pixel)
}

/// Analytic `M'_z + M'_g` of a network trained in `mode`: the stored-mode model
/// ([`analytic_stored_bytes_per_pixel`]) for a reversible architecture in stored mode,
/// otherwise [`analytic_bytes_per_pixel`] (a ResNet's reconstructed step is its stored step).
pub fn analytic_bytes_per_pixel_in(cfg: &NetConfig, mode: Source, dtype: DType) -> Option<f64> {
    if matches!(mode, Source::Checkpointed | Source::Anchored) {
        // The model counts stored and reconstructed steps only.
        None
    } else if mode == Source::Stored && cfg.arch.reconstructable() {
        analytic_stored_bytes_per_pixel(cfg, dtype)
    } else {
        analytic_bytes_per_pixel(cfg, dtype)
    }
}

/// The paper's printed bytes per pixel for the architecture family (Table 1, eq. 34).
pub fn paper_bytes_per_pixel(arch: Arch, rows: &[Table1Row]) -> Option<f64> {
    rows.iter()
        .find(|r| r.arch == arch)
        .map(|r| r.paper_bytes_per_pixel)
}
