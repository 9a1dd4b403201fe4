//! Analytic memory model of training (Hascoet et al., section 3, eq. 5-14, 34-35, Table 1).
//!
//! The peak memory of one training iteration is modelled as
//!
//! ```text
//! M = M_theta + (M'_z + M'_g) * h * w * bs
//! ```
//!
//! where `M_theta` is the weight memory in bytes and `M'_z`, `M'_g` are the bytes per input
//! pixel of the batch held at the peak by activations and by gradients (eq. 6). This module
//! computes the three terms for a described architecture ([`MemConfig`] -> [`analytic`]),
//! evaluates the formula ([`peak_bytes`]) and reproduces the paper's Table 1 ([`table1`],
//! [`table1_markdown`]) with the paper's printed figures beside ours.
//!
//! # Accounting
//!
//! The paper gives the per-pixel figures (1928, 640, 640, 352, 320 bytes) but not the exact
//! layer counts behind them, so the accounting below was reverse-engineered from the printed
//! numbers (f32, bpe = 4). Every rule is listed in [`MemBreakdown::assumptions`]; the main ones:
//!
//! - **Stage-uniform layout.** Every layer of stage `s` has `c_s` input and output channels
//!   and runs at the stage's resolution. This is what the printed weight counts imply (a
//!   ResNet-18 with four `c_s x c_s` 3x3 convs per stage at 32-64-128-256 has 3.13M weights =
//!   12.5 MB; the real ResNet-18 layout with `c_{s-1} -> c_s` transitions, 1x1 shortcuts, stem
//!   and head has about 2.80M = 11.2 MB). Stem (its input is the image, already in memory),
//!   classifier head and stage-transition layers are not counted.
//! - **Per-pixel width.** One activation tensor of stage `s` holds `e_s = c_s * q_s` elements
//!   per input pixel, where each pooling before the stage multiplies `q` by 1/4 (max pooling,
//!   `P_c`) or by 1 (`P_b`: spatial /4 but batch x4). With `P_c`/`P_b` every stage of the
//!   paper's invertible networks has `e_s = 32`.
//! - **ResNet** (eq. 7-10): every convolution and batch norm stores its input; live at layer
//!   `i` in the backward pass = inputs of all layers up to `i` + one gradient buffer
//!   `p_i max(c_{i-1}, c_i)`; the maximum is at the last convolution.
//! - **RevNet / i-RevNet** (local bottleneck, sec. 3.4-3.5): in the backward pass through a
//!   reversible block, the block activation (`c`), the recomputed inputs of every
//!   parameterized layer inside F and G other than the module inputs (`2 (L - 1) c/2` for `L`
//!   layers per module) and one gradient buffer (`c`) are live: `(L + 1) c = 5c` for
//!   `conv-BN-ReLU-conv-BN` modules. Max pooling is not invertible: its input is stored and
//!   stays live until the backward pass reaches it (global bottleneck).
//! - **Layer-wise** (eq. 34): the activation being inverted (`c`), the coupling temporary of
//!   the invertible convolution (`c/2`) and one gradient buffer (`c`): `2.5c`.
//! - **Hybrid** (eq. 35): the block activation (`c`), the layer-wise working set of the module
//!   being back-propagated (its current tensor `c/2` plus the coupling temporary of an
//!   invertible convolution inside it, `c/4`) and one gradient buffer (`c`): `2.75c`.
//!
//! Module-internal gradients, weight gradients, optimizer state, max-pooling indices and
//! framework workspaces are not counted, as in the paper. With this accounting the i-RevNet
//! (640), hybrid (352) and layer-wise (320) figures are reproduced exactly; the ResNet gives
//! 1936 (paper 1928) and the RevNet 800 (paper 640): see [`table1`] for why.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nets::{Accounting, Arch, PoolKind};

mod paper;
#[cfg(test)]
mod tests;

pub use paper::{table1, table1_markdown, Table1Row, TABLE_PIXELS, TEXT_PIXELS};

/// Factor on the number of elements per input pixel of a pooling (spatial /4, batch x4 for
/// `P_b`).
fn width_factor(p: PoolKind) -> f64 {
    match p {
        PoolKind::Max | PoolKind::Channel => 0.25,
        PoolKind::Batch => 1.0,
    }
}

/// Description of an architecture for the analytic memory model.
///
/// Stage `s` has `stage_channels[s]` channels (in and out, for every layer of the stage) and
/// `blocks_per_stage[s]` blocks (units for the layer-wise network); `pooling[s]` sits between
/// stage `s` and `s + 1`. The first stage runs at the input resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemConfig {
    /// Architecture (its name and its rules, [`crate::nets::MemoryEntry`]).
    pub arch: Arch,
    /// The accounting applied: the architecture's own ([`crate::nets::MemoryEntry::accounting`]),
    /// or [`Accounting::StoredInputs`] for a reversible network trained in stored mode.
    pub accounting: Accounting,
    /// Channels of each stage (the paper's "Channels" column). Must be non-empty.
    pub stage_channels: Vec<usize>,
    /// Pooling between consecutive stages: exactly `stage_channels.len() - 1` entries. `P_c`
    /// needs `c_{s+1} = 4 c_s`, `P_b` needs `c_{s+1} = c_s`.
    pub pooling: Vec<PoolKind>,
    /// Blocks per stage (ResNet basic blocks, reversible blocks, or layer-wise units), each
    /// at least 1. Changes the weights of every architecture and the activations of the
    /// ResNet only.
    pub blocks_per_stage: Vec<usize>,
    /// Square convolution kernel size (3 in the paper).
    pub kernel: usize,
    /// Bytes per element: 2 for f16/bf16, 4 for f32, 8 for f64.
    pub bpe: usize,
    /// Convolutions per residual branch (ResNet) or per module F/G (RevNet, i-RevNet:
    /// ordinary convolutions; hybrid: invertible convolutions), each followed by a batch norm
    /// when `batch_norm` is set. 2 in the paper. Ignored by the layer-wise accounting (one
    /// invertible convolution per unit).
    pub convs_per_module: usize,
    /// Whether each convolution is followed by a batch norm (2 parameters per channel, and
    /// a stored input for the ResNet and RevNet-like blocks).
    pub batch_norm: bool,
}

impl MemConfig {
    /// A configuration with the paper's defaults: 3x3 kernels, f32 (bpe 4), two convolutions
    /// per module, batch norm after each.
    pub fn new(
        arch: Arch,
        stage_channels: Vec<usize>,
        pooling: Vec<PoolKind>,
        blocks_per_stage: Vec<usize>,
    ) -> Self {
        MemConfig {
            arch,
            accounting: arch.spec().memory.accounting,
            stage_channels,
            pooling,
            blocks_per_stage,
            kernel: 3,
            bpe: 4,
            convs_per_module: 2,
            batch_norm: true,
        }
    }

    /// The same configuration with another element size.
    pub fn with_bpe(mut self, bpe: usize) -> Self {
        self.bpe = bpe;
        self
    }

    /// Check the configuration; every problem is an [`Error::Config`].
    pub fn validate(&self) -> Result<()> {
        let n = self.stage_channels.len();
        let bad = |c: String, e: String, g: String| {
            Err(Error::config(
                format!("memory model ({}): {c}", self.arch.spec().memory.paper_name),
                e,
                g,
            ))
        };
        let s = |t: &str| t.to_string();
        if n == 0 {
            return bad(s("stage_channels"), s("at least one stage"), s("empty"));
        }
        if self.pooling.len() != n - 1 {
            let e = format!("{} pooling entries (one between consecutive stages)", n - 1);
            return bad(s("pooling"), e, self.pooling.len().to_string());
        }
        if self.blocks_per_stage.len() != n {
            let e = format!("{n} blocks_per_stage entries (one per stage)");
            return bad(
                s("blocks_per_stage"),
                e,
                self.blocks_per_stage.len().to_string(),
            );
        }
        if let Some(i) = self.blocks_per_stage.iter().position(|&b| b == 0) {
            return bad(format!("blocks_per_stage[{i}]"), s("at least 1"), s("0"));
        }
        if self.kernel == 0 {
            return bad(s("kernel"), s("a kernel size >= 1"), s("0"));
        }
        if self.bpe == 0 {
            let e = s("bytes per element >= 1 (2 f16/bf16, 4 f32, 8 f64)");
            return bad(s("bpe"), e, s("0"));
        }
        if self.convs_per_module == 0 && self.accounting != Accounting::Layerwise {
            return bad(s("convs_per_module"), s("at least 1"), s("0"));
        }
        let divisor = self.accounting.channel_divisor();
        for (i, &c) in self.stage_channels.iter().enumerate() {
            if c == 0 || !c.is_multiple_of(divisor) {
                let e = format!("a positive multiple of {divisor} channels (channel splits)");
                return bad(format!("stage {i}"), e, format!("{c} channels"));
            }
        }
        for (i, &p) in self.pooling.iter().enumerate() {
            let (c0, c1) = (self.stage_channels[i], self.stage_channels[i + 1]);
            match p {
                PoolKind::Max if self.arch.spec().memory.fully_invertible => {
                    let g = s("max pooling, which is not invertible");
                    return bad(format!("pooling[{i}]"), s("P_c or P_b"), g);
                }
                PoolKind::Channel if c1 != 4 * c0 => {
                    let e = format!("{} channels after it (4 x {c0})", 4 * c0);
                    return bad(format!("pooling[{i}] (P_c)"), e, c1.to_string());
                }
                PoolKind::Batch if c1 != c0 => {
                    let e = format!("{c0} channels after it (unchanged)");
                    return bad(format!("pooling[{i}] (P_b)"), e, c1.to_string());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Elements per input pixel of one activation tensor of each stage: `e_s = c_s q_s`.
    pub fn stage_widths(&self) -> Vec<f64> {
        let mut q = 1.0;
        let mut out = Vec::with_capacity(self.stage_channels.len());
        for (s, &c) in self.stage_channels.iter().enumerate() {
            if s > 0 {
                q *= width_factor(self.pooling[s - 1]);
            }
            out.push(c as f64 * q);
        }
        out
    }

    /// Parameters of one block (unit) of stage `s` with `c` channels.
    fn params_per_block(&self, c: u64) -> u64 {
        let k2 = (self.kernel * self.kernel) as u64;
        let m = self.convs_per_module as u64;
        let bn = u64::from(self.batch_norm);
        match self.accounting {
            // residual branch: m x [conv c->c, BN(c)]
            Accounting::StoredInputs => m * (c * c * k2 + bn * 2 * c),
            // F and G: m x [conv c/2->c/2, BN(c/2)] each
            Accounting::ReversibleBlock => {
                let h = c / 2;
                2 * m * (h * h * k2 + bn * 2 * h)
            }
            // InvConv (coupling of two convs c/2->c/2) + InvBN(c)
            Accounting::Layerwise => {
                let h = c / 2;
                2 * h * h * k2 + bn * 2 * c
            }
            // F and G on c/2: m x [InvConv (two convs c/4->c/4), InvBN(c/2)] each
            Accounting::Hybrid => {
                let (h, q) = (c / 2, c / 4);
                2 * m * (2 * q * q * k2 + bn * 2 * h)
            }
        }
    }

    /// Total parameter count under the stage-uniform layout.
    pub fn n_params(&self) -> u64 {
        self.stage_channels
            .iter()
            .zip(&self.blocks_per_stage)
            .map(|(&c, &b)| b as u64 * self.params_per_block(c as u64))
            .sum()
    }
}

/// Result of the analytic model for one configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemBreakdown {
    /// Architecture.
    pub arch: Arch,
    /// Bytes per element used.
    pub bpe: usize,
    /// Number of parameters counted in `m_theta_bytes`.
    pub n_params: u64,
    /// Weight memory `M_theta` in bytes (eq. 9).
    pub m_theta_bytes: f64,
    /// Activation bytes per input pixel live at the peak, `M'_z` (eq. 6a).
    pub m_z_per_pixel: f64,
    /// Gradient bytes per input pixel live at the peak, `M'_g` (eq. 6b).
    pub m_g_per_pixel: f64,
    /// `M'_z + M'_g`.
    pub per_pixel: f64,
    /// Stage (0-based) where the peak happens.
    pub peak_stage: usize,
    /// Where in the backward pass the peak happens, in words.
    pub peak_at: String,
    /// Every accounting assumption behind the numbers.
    pub assumptions: Vec<String>,
}

fn general_assumptions(cfg: &MemConfig) -> Vec<String> {
    vec![
        format!(
            "M = M_theta + (M'_z + M'_g) * h * w * bs (eq. 5, 6, 11b); per-pixel terms are bytes per input pixel of the batch; bpe = {} bytes per element",
            cfg.bpe
        ),
        "stage-uniform layout (implied by the paper's printed weight counts): every layer of stage s has c_s input and output channels at the stage's resolution; stem (its input is the image, already in memory), classifier head and stage-transition layers (channel change at a max pooling, shortcut convs) are not counted".into(),
        "per-pixel width of stage s: e_s = c_s * q_s; each pooling before the stage multiplies q by 1/4 (max pooling, P_c: spatial /4) or by 1 (P_b: spatial /4, batch x4)".into(),
        format!(
            "M_theta = n(theta) * bpe (eq. 9): conv kernels c_in * c_out * {k} * {k} without biases{}; running statistics, weight gradients and optimizer state are not counted",
            if cfg.batch_norm { " + 2 parameters (gamma, beta) per batch-norm channel" } else { "" },
            k = cfg.kernel
        ),
        "pooling layers and activation functions store nothing (eq. 7: only convolutions and batch norms are parameterized layers); max-pooling indices are not counted".into(),
        "one gradient buffer of the width at the peak (eq. 10); module-internal gradients, weight gradients and framework workspaces are not counted".into(),
        "the peak is the maximum over the backward pass; on a tie, the first point reached going down from the top".into(),
    ]
}

/// Evaluate the analytic model for `cfg`. Errors: [`Error::Config`] for an invalid
/// configuration (see [`MemConfig::validate`]).
pub fn analytic(cfg: &MemConfig) -> Result<MemBreakdown> {
    cfg.validate()?;
    let e = cfg.stage_widths();
    let n_stages = e.len();
    let bpe = cfg.bpe as f64;
    let mut assumptions = general_assumptions(cfg);

    // (z, g, stage) at the peak, in elements per input pixel.
    let (z, g, stage, peak_at) = match cfg.accounting {
        Accounting::StoredInputs => {
            let per_conv = 1 + usize::from(cfg.batch_norm);
            assumptions.push(format!(
                "ResNet (eq. 7-10): every convolution{} stores its input; each basic block has {} conv{} on its residual branch; live at layer i = inputs of all layers up to i + one gradient p_i * max(c_(i-1), c_i)",
                if cfg.batch_norm { " and batch norm" } else { "" },
                cfg.convs_per_module,
                if cfg.batch_norm { "+BN pairs" } else { "s" },
            ));
            // Stored inputs in forward order, with their stage.
            let mut layers = Vec::new();
            for s in 0..n_stages {
                for _ in 0..cfg.blocks_per_stage[s] * cfg.convs_per_module * per_conv {
                    layers.push(s);
                }
            }
            let mut stored: f64 = layers.iter().map(|&s| e[s]).sum();
            let mut best: Option<(f64, f64, usize, usize)> = None;
            for (i, &s) in layers.iter().enumerate().rev() {
                // backward through layer i: its input and all below are live, plus the
                // gradient (in = out width under the stage-uniform layout)
                let total = stored + e[s];
                if best.is_none_or(|(bz, bg, _, _)| total > bz + bg) {
                    best = Some((stored, e[s], s, i));
                }
                stored -= e[s];
            }
            let (z, g, s, i) = best.expect("validated: at least one layer");
            let at = if i + 1 == layers.len() {
                "backward pass at the top of the network (last convolution / batch norm)"
                    .to_string()
            } else {
                format!(
                    "backward pass through parameterized layer {} of {} (stage {s})",
                    i + 1,
                    layers.len()
                )
            };
            (z, g, s, at)
        }
        accounting => {
            let local_hidden = match accounting {
                Accounting::ReversibleBlock => {
                    let l = cfg.convs_per_module * (1 + usize::from(cfg.batch_norm));
                    assumptions.push(format!(
                        "reversible block (F, G = {} x [conv{}] on c/2 channels): live = block activation (c) + recomputed inputs of the parameterized layers inside F and G other than the module inputs (2 x {} x c/2) + one gradient buffer (c) = {}c; the coupling's other half and the module outputs are not counted (this reproduces the paper's 640 B/pixel for the i-RevNet)",
                        cfg.convs_per_module,
                        if cfg.batch_norm { ", BN" } else { "" },
                        l - 1,
                        l + 1
                    ));
                    (l - 1) as f64
                }
                Accounting::Layerwise => {
                    assumptions.push(
                        "layer-wise unit [InvConv, InvBN, InvLeakyReLU]: live = the activation being inverted (c) + the coupling temporary of the invertible convolution, F(x2) or G(y1) (c/2) + one gradient buffer (c) = 2.5c; InvBN and InvLeakyReLU are inverted in place".into(),
                    );
                    0.5
                }
                Accounting::Hybrid => {
                    assumptions.push(
                        "hybrid block: live = block activation (c) + layer-wise working set of the module being back-propagated (its current hidden tensor, c/2, plus the coupling temporary of an invertible convolution inside it, c/4) + one gradient buffer (c) = 2.75c, independent of the module length; the module-internal gradient (c/2) is not counted (counting it gives 3.25c)".into(),
                    );
                    0.75
                }
                Accounting::StoredInputs => unreachable!(),
            };
            if cfg.pooling.contains(&PoolKind::Max) {
                assumptions.push(
                    "max pooling is not invertible: its input (the output of the stage below it) is stored in the forward pass and stays live until the backward pass reaches it (global bottleneck, sec. 3.4)".into(),
                );
            }
            let mut best: Option<(f64, f64, usize)> = None;
            for s in (0..n_stages).rev() {
                let global: f64 = (0..s)
                    .filter(|&j| cfg.pooling[j] == PoolKind::Max)
                    .map(|j| e[j])
                    .sum();
                let z = e[s] * (1.0 + local_hidden) + global;
                let g = e[s];
                if best.is_none_or(|(bz, bg, _)| z + g > bz + bg) {
                    best = Some((z, g, s));
                }
            }
            let (z, g, s) = best.expect("validated: at least one stage");
            let what = if accounting == Accounting::Layerwise {
                "unit"
            } else {
                "block"
            };
            (
                z,
                g,
                s,
                format!("backward pass through a {what} of stage {s}"),
            )
        }
    };

    let n_params = cfg.n_params();
    Ok(MemBreakdown {
        arch: cfg.arch,
        bpe: cfg.bpe,
        n_params,
        m_theta_bytes: n_params as f64 * bpe,
        m_z_per_pixel: z * bpe,
        m_g_per_pixel: g * bpe,
        per_pixel: (z + g) * bpe,
        peak_stage: stage,
        peak_at,
        assumptions,
    })
}

/// Peak training memory in bytes for a batch of `bs` images of `h x w` pixels:
/// `M_theta + (M'_z + M'_g) h w bs`.
pub fn peak_bytes(b: &MemBreakdown, h: usize, w: usize, bs: usize) -> f64 {
    b.m_theta_bytes + b.per_pixel * (h as f64) * (w as f64) * (bs as f64)
}
