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

/// Number of pixels (`bs * h * w`) of the paper's worked examples: 32 images of 240x240.
pub const TEXT_PIXELS: f64 = 32.0 * 240.0 * 240.0;

/// `bs * h * w` that the M column of the paper's Table 1 is consistent with: 2^19 (e.g. 512
/// CIFAR images of 32x32). The table does not say; this is inferred from its numbers.
pub const TABLE_PIXELS: f64 = 524_288.0;

/// One row of Table 1: our analytic figures beside the paper's printed ones.
/// Relative differences are `(ours - paper) / paper`. All byte figures use SI units
/// (1 GB = 1e9 bytes), which is what the paper's own numbers are consistent with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table1Row {
    /// Model name.
    pub model: String,
    /// Architecture (written as its family name, [`crate::nets::MemoryEntry::family`]).
    #[serde(serialize_with = "family_name")]
    pub arch: Arch,
    /// Channels per stage, e.g. "32-64-128-256".
    pub channels: String,
    /// Pooling between stages, e.g. "P_c-P_c-P_b".
    pub pooling: String,
    /// Blocks (units) per stage, e.g. "2-2-2-2" (ours: fitted, the paper does not print them).
    pub blocks: String,
    /// Our `M'_z + M'_g` in bytes per pixel.
    pub bytes_per_pixel: f64,
    /// The paper's printed `M'_z + M'_g`.
    pub paper_bytes_per_pixel: f64,
    /// Relative difference of the per-pixel bytes.
    pub bytes_per_pixel_rel_diff: f64,
    /// True when our per-pixel figure equals the paper's exactly.
    pub bytes_per_pixel_exact: bool,
    /// Our parameter count.
    pub n_params: u64,
    /// Our `M_theta` in bytes.
    pub weight_bytes: f64,
    /// The paper's printed `M_theta` (three significant figures).
    pub paper_weight_bytes: f64,
    /// Relative difference of the weight bytes.
    pub weight_rel_diff: f64,
    /// True when our weight bytes round to the paper's printed three significant figures.
    pub weight_within_rounding: bool,
    /// Our peak for 32 images of 240x240 ([`TEXT_PIXELS`]), weights included.
    pub peak_bytes_text: f64,
    /// The paper's printed peak for the same batch (text of sections 3.3-4.2).
    pub paper_peak_bytes_text: f64,
    /// Relative difference of the peaks.
    pub peak_rel_diff: f64,
    /// Our peak at [`TABLE_PIXELS`], weights included.
    pub peak_bytes_table: f64,
    /// The paper's Table 1 M column (none for the layer-wise network, absent from Table 1).
    pub paper_peak_bytes_table: Option<f64>,
    /// What matches, what does not, and why.
    pub note: String,
}

fn family_name<S: serde::Serializer>(arch: &Arch, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(arch.spec().memory.family)
}

struct PaperRow {
    model: &'static str,
    cfg: MemConfig,
    per_pixel: f64,
    weights: f64,
    peak_text: f64,
    peak_table: Option<f64>,
    note: &'static str,
}

fn paper_rows() -> Vec<PaperRow> {
    use Arch::{
        Hybrid, Irevnet as IRevNet, Layerwise as LayerWise, Resnet as ResNet, Revnet as RevNet,
    };
    use PoolKind::{Batch, Channel, Max};
    vec![
        PaperRow {
            model: "ResNet",
            cfg: MemConfig::new(ResNet, vec![32, 64, 128, 256], vec![Max, Max, Max], vec![2, 2, 2, 2]),
            per_pixel: 1928.0,
            weights: 12.5e6,
            peak_text: 3.81e9,
            peak_table: Some(1.01e9),
            note: "ResNet-18 layout (2 basic blocks per stage). Not exact: activations give 8 x (32 + 64/4 + 128/16 + 256/64) x 4 = 1920 B/pixel and the eq. 10c gradient of the last conv (256 ch at p = 1/64) adds 16 = 1936. The printed 1928 = 1920 + 8 needs a gradient of 2 elements/pixel (128 ch at p = 1/64, i.e. min instead of max in eq. 10), which no reading of eq. 10 gives. The text's 3.81 GB is inconsistent with its own 1928 (1928 x 1843200 + 12.5e6 = 3.57e9; 3.81 GB would need about 2060 B/pixel). Table 1's 1.01G = 1928 x 2^19 without the weights.",
        },
        PaperRow {
            model: "RevNet",
            cfg: MemConfig::new(RevNet, vec![40, 80, 256, 320], vec![Max, Max, Max], vec![2, 2, 2, 2]),
            per_pixel: 640.0,
            weights: 12.7e6,
            peak_text: 1.19e9,
            peak_table: Some(348e6),
            note: "Not reproduced: the same block accounting that gives the i-RevNet's 640 (5c, c = 32) gives 5 x 40 x 4 = 800 B/pixel here (peak in the first block, the global max-pooling bottleneck is smaller). The printed 640 = 4 x 40 x 4 would need dropping either the gradient or the block activation, which would make the i-RevNet 512. 2 blocks per stage fitted to 12.7M. The paper's peaks (1.19 GB, 348M) are consistent with its 640.",
        },
        PaperRow {
            model: "i-RevNet",
            cfg: MemConfig::new(IRevNet, vec![32, 128, 512, 2048], vec![Channel, Channel, Channel], vec![2, 2, 2, 1]),
            per_pixel: 640.0,
            weights: 171e6,
            peak_text: 1.35e9,
            peak_table: Some(500e6),
            note: "Exact: 5c with c = 32 (every stage has 32 elements/pixel under P_c; the tie puts the peak at the top block, as in Fig. 4). Blocks 2-2-2-1 fitted to 171M / 42.8M params (one top block is 2048^2 x 9 = 37.7M weights). Table 1's 500M is 640 x 2^19 + 171e6 = 506.5e6 rounded down.",
        },
        PaperRow {
            model: "Hybrid (ours)",
            cfg: MemConfig::new(Hybrid, vec![32, 128, 512, 512], vec![Channel, Channel, Batch], vec![2, 2, 2, 1]),
            per_pixel: 352.0,
            weights: 14.8e6,
            peak_text: 648e6,
            peak_table: Some(200e6),
            note: "Exact: 2.75c with c = 32. Blocks 2-2-2-1 fitted to 14.8M / 3.7M params. The text's 648 MB is 352 x 1843200 = 648.8e6 without the weights (663.6e6 with them).",
        },
        PaperRow {
            model: "Layer-wise",
            cfg: MemConfig::new(LayerWise, vec![32, 128, 512, 512], vec![Channel, Channel, Batch], vec![4, 4, 4, 2]),
            per_pixel: 320.0,
            weights: 29.6e6,
            peak_text: 590e6,
            peak_table: None,
            note: "Eq. 34 (not a Table 1 row; channels and pooling of the hybrid assumed). Exact: 2.5c with c = 32. Units 4-4-4-2 fitted to 29.6M (6-4-3-3 fits too). The text's 590 MB is 320 x 1843200 = 589.8e6 without the weights (619.4e6 with them).",
        },
    ]
}

/// Within rounding of a figure printed with three significant figures.
fn within_three_sig_figs(ours: f64, paper: f64) -> bool {
    let unit = 10f64.powi(paper.abs().log10().floor() as i32 - 2);
    (ours - paper).abs() <= 0.5 * unit + 1e-9 * paper.abs()
}

/// The paper's Table 1 (plus the layer-wise network of eq. 34), f32, with our analytic
/// figures, the paper's printed ones and the relative differences.
pub fn table1() -> Vec<Table1Row> {
    paper_rows()
        .into_iter()
        .map(|p| {
            let b = analytic(&p.cfg).expect("Table 1 configurations are valid");
            let join = |v: Vec<String>| v.join("-");
            let rel = |ours: f64, paper: f64| (ours - paper) / paper;
            let peak_text = b.m_theta_bytes + b.per_pixel * TEXT_PIXELS;
            let peak_table = b.m_theta_bytes + b.per_pixel * TABLE_PIXELS;
            Table1Row {
                model: p.model.to_string(),
                arch: p.cfg.arch,
                channels: join(p.cfg.stage_channels.iter().map(|c| c.to_string()).collect()),
                pooling: join(
                    p.cfg
                        .pooling
                        .iter()
                        .map(|q| q.symbol().to_string())
                        .collect(),
                ),
                blocks: join(
                    p.cfg
                        .blocks_per_stage
                        .iter()
                        .map(|c| c.to_string())
                        .collect(),
                ),
                bytes_per_pixel: b.per_pixel,
                paper_bytes_per_pixel: p.per_pixel,
                bytes_per_pixel_rel_diff: rel(b.per_pixel, p.per_pixel),
                bytes_per_pixel_exact: b.per_pixel == p.per_pixel,
                n_params: b.n_params,
                weight_bytes: b.m_theta_bytes,
                paper_weight_bytes: p.weights,
                weight_rel_diff: rel(b.m_theta_bytes, p.weights),
                weight_within_rounding: within_three_sig_figs(b.m_theta_bytes, p.weights),
                peak_bytes_text: peak_text,
                paper_peak_bytes_text: p.peak_text,
                peak_rel_diff: rel(peak_text, p.peak_text),
                peak_bytes_table: peak_table,
                paper_peak_bytes_table: p.peak_table,
                note: p.note.to_string(),
            }
        })
        .collect()
}

fn fmt_bytes(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.3} GB", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} MB", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} kB", x / 1e3)
    } else {
        format!("{x:.0} B")
    }
}

fn fmt_per_pixel(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn fmt_rel(x: f64) -> String {
    format!("{:+.2}%", 100.0 * x)
}

/// Markdown rendering of [`table1`] rows: a table of ours vs the paper's figures, then the
/// note of each row. Bytes in SI units (1 GB = 1e9 B).
pub fn table1_markdown(rows: &[Table1Row]) -> String {
    let mut s = String::new();
    s.push_str(
        "| Model | Channels | Pooling | Blocks | B/pixel (ours) | B/pixel (paper) | diff | M_theta (ours) | M_theta (paper) | diff | M, 32x240x240 (ours) | M (paper text) | diff | M, 2^19 px (ours) | M (Table 1) |\n",
    );
    s.push_str("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.model,
            r.channels,
            r.pooling,
            r.blocks,
            fmt_per_pixel(r.bytes_per_pixel),
            fmt_per_pixel(r.paper_bytes_per_pixel),
            fmt_rel(r.bytes_per_pixel_rel_diff),
            fmt_bytes(r.weight_bytes),
            fmt_bytes(r.paper_weight_bytes),
            fmt_rel(r.weight_rel_diff),
            fmt_bytes(r.peak_bytes_text),
            fmt_bytes(r.paper_peak_bytes_text),
            fmt_rel(r.peak_rel_diff),
            fmt_bytes(r.peak_bytes_table),
            r.paper_peak_bytes_table.map_or("-".to_string(), fmt_bytes),
        ));
    }
    s.push('\n');
    for r in rows {
        s.push_str(&format!("- **{}**: {}\n", r.model, r.note));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> Table1Row {
        table1()
            .into_iter()
            .find(|r| r.model.starts_with(name))
            .unwrap()
    }

    fn cfg(arch: Arch) -> MemConfig {
        paper_rows()
            .into_iter()
            .find(|p| p.cfg.arch == arch)
            .unwrap()
            .cfg
    }

    #[test]
    fn reproduced_per_pixel_figures_are_exact() {
        assert_eq!(analytic(&cfg(Arch::Irevnet)).unwrap().per_pixel, 640.0);
        assert_eq!(analytic(&cfg(Arch::Hybrid)).unwrap().per_pixel, 352.0);
        assert_eq!(analytic(&cfg(Arch::Layerwise)).unwrap().per_pixel, 320.0);
        for name in ["i-RevNet", "Hybrid", "Layer-wise"] {
            let r = row(name);
            assert!(r.bytes_per_pixel_exact, "{name}");
            assert_eq!(r.bytes_per_pixel, r.paper_bytes_per_pixel);
        }
    }

    #[test]
    fn resnet_closed_form_and_its_gap_to_the_paper() {
        let b = analytic(&cfg(Arch::Resnet)).unwrap();
        // eq. 8c: 8 stored inputs per stage (2 blocks x [conv, BN, conv, BN])
        let z = 8.0 * (32.0 + 64.0 / 4.0 + 128.0 / 16.0 + 256.0 / 64.0) * 4.0;
        assert_eq!(z, 1920.0);
        assert_eq!(b.m_z_per_pixel, z);
        // eq. 10c at the last conv: p = 1/64, max(c) = 256
        assert_eq!(b.m_g_per_pixel, 256.0 / 64.0 * 4.0);
        assert_eq!(b.per_pixel, 1936.0);
        assert_eq!(b.peak_stage, 3);
        let r = row("ResNet");
        assert!(!r.bytes_per_pixel_exact);
        assert!((r.bytes_per_pixel_rel_diff - 8.0 / 1928.0).abs() < 1e-12);
    }

    #[test]
    fn revnet_block_accounting_and_its_gap_to_the_paper() {
        let b = analytic(&cfg(Arch::Revnet)).unwrap();
        // 5c at the first block, c = 40; the global max-pooling term is smaller higher up
        assert_eq!(b.per_pixel, 5.0 * 40.0 * 4.0);
        assert_eq!(b.m_g_per_pixel, 40.0 * 4.0);
        assert_eq!(b.peak_stage, 0);
        assert!(!row("RevNet").bytes_per_pixel_exact);
        // same block type on 32 channels gives the i-RevNet's 640
        let mut c = cfg(Arch::Revnet);
        c.stage_channels = vec![32, 64, 128, 256];
        assert_eq!(analytic(&c).unwrap().per_pixel, 640.0);
    }

    #[test]
    fn global_bottleneck_of_max_pooling() {
        // wide late stages: the stored pool inputs plus the local bottleneck of the top stage
        // exceed the first block
        let c = MemConfig::new(Arch::Revnet, vec![8, 64], vec![PoolKind::Max], vec![1, 1]);
        let b = analytic(&c).unwrap();
        // stage 0: 5 x 8 = 40; stage 1: 5 x 16 + 8 (stored pool input) = 88
        assert_eq!(b.per_pixel, 88.0 * 4.0);
        assert_eq!(b.m_z_per_pixel, (4.0 * 16.0 + 8.0) * 4.0);
        assert_eq!(b.peak_stage, 1);
    }

    #[test]
    fn invertible_networks_peak_at_the_top_on_ties() {
        // every stage has 32 elements per pixel under P_c / P_b (Fig. 4: top block)
        for arch in [Arch::Irevnet, Arch::Hybrid, Arch::Layerwise] {
            let c = cfg(arch);
            assert_eq!(c.stage_widths(), vec![32.0; 4]);
            assert_eq!(analytic(&c).unwrap().peak_stage, 3);
        }
    }

    #[test]
    fn weight_bytes_closed_form_and_printed_rounding() {
        let expect = [
            ("ResNet", 3_137_280u64, 12.5e6),  // 4 x sum(9c^2 + 2c) per stage
            ("RevNet", 3_172_416, 12.7e6),     // 2 x sum(9c^2 + 4c)
            ("i-RevNet", 42_794_240, 171e6),   // 2-2-2-1 blocks of 9c^2 + 4c
            ("Hybrid", 3_703_040, 14.8e6),     // 2-2-2-1 blocks of 4.5c^2 + 4c
            ("Layer-wise", 7_398_656, 29.6e6), // 4-4-4-2 units of 4.5c^2 + 2c
        ];
        for (name, params, paper) in expect {
            let r = row(name);
            assert_eq!(r.n_params, params, "{name}");
            assert_eq!(r.weight_bytes, 4.0 * params as f64);
            assert!(
                r.weight_within_rounding,
                "{name}: {} vs {paper}",
                r.weight_bytes
            );
            assert_eq!(r.paper_weight_bytes, paper);
        }
        // i-RevNet: one top-stage conv on half of 2048 channels, four per block, = 2048^2 x 9
        assert_eq!(4 * 1024u64 * 1024 * 9, 2048u64 * 2048 * 9);
    }

    #[test]
    fn peak_formula_and_paper_units() {
        let resnet = analytic(&cfg(Arch::Resnet)).unwrap();
        assert_eq!(
            peak_bytes(&resnet, 240, 240, 32),
            resnet.m_theta_bytes + 1936.0 * 1_843_200.0
        );
        // the paper's own ResNet figures: 1928 x 240^2 x 32 + 12.5e6 = 3.566e9, not 3.81e9
        let paper_resnet = 12.5e6 + 1928.0 * TEXT_PIXELS;
        assert!((paper_resnet - 3.566_189_6e9).abs() < 1.0);
        assert!((paper_resnet / 1e9 - 3.81).abs() > 0.2);
        assert!((paper_resnet / (1u64 << 30) as f64 - 3.81).abs() > 0.4); // not GiB either
                                                                          // GB are 1e9: RevNet 640 x 1843200 + 12.7e6 = 1.192e9 -> "1.19 GB" (1.110 GiB)
        let revnet = 12.7e6 + 640.0 * TEXT_PIXELS;
        assert_eq!((revnet / 1e7).round() / 100.0, 1.19);
        assert!(((12.7e6 + 640.0 * TABLE_PIXELS) / 1e6 - 348.244_32).abs() < 1e-6); // Table 1: 348M
                                                                                    // i-RevNet 1.35 GB with weights; hybrid 648 MB and layer-wise 590 MB without them
        assert_eq!(((171e6 + 640.0 * TEXT_PIXELS) / 1e7).round() / 100.0, 1.35);
        assert_eq!((352.0 * TEXT_PIXELS / 1e6).floor(), 648.0);
        assert_eq!((320.0 * TEXT_PIXELS / 1e6).round(), 590.0);
        for r in table1() {
            assert_eq!(
                r.peak_bytes_text,
                r.weight_bytes + r.bytes_per_pixel * TEXT_PIXELS
            );
        }
    }

    #[test]
    fn bpe_scaling() {
        for arch in [
            Arch::Resnet,
            Arch::Revnet,
            Arch::Irevnet,
            Arch::Hybrid,
            Arch::Layerwise,
        ] {
            let f32b = analytic(&cfg(arch)).unwrap();
            let f16b = analytic(&cfg(arch).with_bpe(2)).unwrap();
            let f64b = analytic(&cfg(arch).with_bpe(8)).unwrap();
            assert_eq!(f16b.per_pixel * 2.0, f32b.per_pixel);
            assert_eq!(f16b.m_theta_bytes * 2.0, f32b.m_theta_bytes);
            assert_eq!(f64b.per_pixel, 2.0 * f32b.per_pixel);
            assert_eq!(f16b.n_params, f32b.n_params);
            assert_eq!(
                peak_bytes(&f16b, 32, 32, 8) * 2.0,
                peak_bytes(&f32b, 32, 32, 8)
            );
        }
    }

    fn assert_config_err(c: &MemConfig, needle: &str) {
        match analytic(c) {
            Err(e @ Error::Config { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(needle), "{msg}")
            }
            other => panic!("expected Error::Config containing {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn bad_configs_are_config_errors() {
        let base = cfg(Arch::Hybrid);
        assert_config_err(
            &MemConfig::new(Arch::Resnet, vec![], vec![], vec![]),
            "empty",
        );
        let mut c = base.clone();
        c.pooling.pop();
        assert_config_err(&c, "pooling entries");
        let mut c = base.clone();
        c.blocks_per_stage.push(1);
        assert_config_err(&c, "blocks_per_stage");
        let mut c = base.clone();
        c.blocks_per_stage[1] = 0;
        assert_config_err(&c, "blocks_per_stage[1]");
        assert_config_err(&base.clone().with_bpe(0), "bpe");
        let mut c = base.clone();
        c.stage_channels[3] = 256; // after P_b
        assert_config_err(&c, "P_b");
        let mut c = base.clone();
        c.stage_channels = vec![32, 64, 256, 256]; // P_c needs 128
        assert_config_err(&c, "P_c");
        let mut c = base.clone();
        c.pooling[0] = PoolKind::Max;
        c.stage_channels = vec![128, 128, 512, 512];
        assert_config_err(&c, "not invertible");
        let c = MemConfig::new(Arch::Hybrid, vec![30], vec![], vec![1]);
        assert_config_err(&c, "multiple of 4");
        let c = MemConfig::new(Arch::Revnet, vec![33], vec![], vec![1]);
        assert_config_err(&c, "multiple of 2");
        assert!(MemConfig::new(Arch::Resnet, vec![33], vec![], vec![1])
            .validate()
            .is_ok());
    }

    #[test]
    fn assumptions_are_stated() {
        for arch in [
            Arch::Resnet,
            Arch::Revnet,
            Arch::Irevnet,
            Arch::Hybrid,
            Arch::Layerwise,
        ] {
            let b = analytic(&cfg(arch)).unwrap();
            assert!(b.assumptions.len() >= 8, "{arch:?}");
            assert!(b.assumptions.iter().any(|a| a.contains("stage-uniform")));
        }
        let rev = analytic(&cfg(Arch::Revnet)).unwrap();
        assert!(rev
            .assumptions
            .iter()
            .any(|a| a.contains("global bottleneck")));
    }

    #[test]
    fn markdown_and_json() {
        let rows = table1();
        assert_eq!(rows.len(), 5);
        let md = table1_markdown(&rows);
        assert!(md.starts_with("| Model |"));
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| ")).count(),
            1 + rows.len()
        );
        assert!(md.contains(
            "| i-RevNet | 32-128-512-2048 | P_c-P_c-P_c | 2-2-2-1 | 640 | 640 | +0.00% |"
        ));
        assert!(md.contains("| 1936 | 1928 | +0.41% |"));
        let json = serde_json::to_string(&rows).unwrap();
        assert!(json.contains("\"paper_bytes_per_pixel\":352.0"));
        let b = analytic(&cfg(Arch::Hybrid)).unwrap();
        let back: MemBreakdown = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(back, b);
        let c: MemConfig =
            serde_json::from_str(&serde_json::to_string(&cfg(Arch::Revnet)).unwrap()).unwrap();
        assert_eq!(c, cfg(Arch::Revnet));
    }
}
