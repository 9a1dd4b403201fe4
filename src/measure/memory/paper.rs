//! The paper's Table 1 (plus the layer-wise network of eq. 34): the printed figures of each
//! row, our analytic figures beside them ([`table1`]), and their Markdown rendering
//! ([`table1_markdown`]).

use serde::Serialize;

use super::{analytic, MemConfig};
use crate::nets::{Arch, PoolKind};

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

pub(super) struct PaperRow {
    model: &'static str,
    pub(super) cfg: MemConfig,
    per_pixel: f64,
    weights: f64,
    peak_text: f64,
    peak_table: Option<f64>,
    note: &'static str,
}

pub(super) fn paper_rows() -> Vec<PaperRow> {
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
