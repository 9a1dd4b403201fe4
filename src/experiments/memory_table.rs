//! The memory results of `table1` and `memory-scaling`: the memory experiment
//! ([`crate::experiments::memory`]) run and summarised as those figures need it.

use crate::error::{Error, Result};
use crate::experiments::memory::{Axis as MemAxis, MemoryConfig};
use crate::nets::{Arch, Source};
use crate::results::text::num;
use serde::{Deserialize, Serialize};

/// One row of the memory table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRow {
    /// Model (paper name).
    pub model: String,
    /// Architecture measured for it.
    pub arch: Arch,
    /// Channels per stage (paper configuration).
    pub channels: String,
    /// Pooling (paper configuration).
    pub pooling: String,
    /// Paper's `M'_z + M'_g`, bytes per pixel.
    #[serde(with = "num")]
    pub paper_bytes_per_pixel: f64,
    /// Analytic model, same configuration.
    #[serde(with = "num")]
    pub analytic_bytes_per_pixel: f64,
    /// Paper's `M_theta`, bytes.
    #[serde(with = "num")]
    pub paper_weight_bytes: f64,
    /// Analytic `M_theta`, bytes.
    #[serde(with = "num")]
    pub analytic_weight_bytes: f64,
    /// Paper's peak for 32 images of 240x240 (text), bytes.
    #[serde(with = "num")]
    pub paper_peak_bytes: f64,
    /// Analytic peak for the same batch, bytes.
    #[serde(with = "num")]
    pub analytic_peak_bytes: f64,
    /// Layers of the measured network.
    pub measured_layers: usize,
    /// Channels per stage of the measured network (e.g. `32-128-512-512`).
    #[serde(default)]
    pub measured_channels: String,
    /// Blocks (units) per stage of the measured network (e.g. `2-2-2-1`).
    #[serde(default)]
    pub measured_blocks: String,
    /// Analytic bytes per pixel of the measured network, in the mode the model describes
    /// (reconstructed; stored for the ResNet): `analytic_bpx` of `summary.csv`.
    #[serde(with = "num")]
    pub measured_analytic_bytes_per_pixel: f64,
    /// Measured activation peak (peak minus parameter gradients) per input pixel, stored
    /// activations: `measured_bpx` of `summary.csv`.
    #[serde(with = "num")]
    pub measured_stored_bytes_per_pixel: f64,
    /// The same, reconstructed activations.
    #[serde(with = "num")]
    pub measured_reconstructed_bytes_per_pixel: f64,
    /// Measured over analytic, in the mode the model describes.
    #[serde(with = "num")]
    pub measured_over_analytic: f64,
    /// Marginal activation bytes per input pixel (slope over the batch sweep) in the mode the
    /// model describes: `marginal_bpx` of `summary.csv`.
    #[serde(default = "nan", with = "num")]
    pub measured_marginal_bytes_per_pixel: f64,
    /// Marginal over analytic.
    #[serde(default = "nan", with = "num")]
    pub marginal_over_analytic: f64,
}

pub(crate) fn nan() -> f64 {
    f64::NAN
}

/// One measured point of a sweep of the memory experiment (`memory-scaling`): the peak of one
/// training step ([`crate::experiments::memory::PeakPoint`]). The comparison point belongs
/// to all three sweeps and is listed in each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPoint {
    /// The sweep (`depth`, `batch`, `size`).
    pub sweep: MemAxis,
    /// Architecture.
    pub arch: Arch,
    /// Source of the activations in the backward.
    pub mode: Source,
    /// Blocks (units for layer-wise).
    pub depth: usize,
    /// Batch (images).
    pub batch: usize,
    /// Input height = width (pixels).
    pub size: usize,
    /// Primitive layers of the network.
    pub layers: usize,
    /// Peak live heap bytes of the step above the live bytes before it.
    pub peak_bytes: usize,
    /// `peak_bytes` without the parameter gradients.
    pub act_peak_bytes: usize,
    /// Bytes of the parameter gradients (in `peak_bytes`).
    pub grad_bytes: usize,
    /// Bytes the forward kept on the tape.
    pub tape_bytes: usize,
    /// Bytes of the weights (not in `peak_bytes`).
    pub weight_bytes: usize,
}

/// Result of the memory experiment, as the table and the scaling figure need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryData {
    /// Rows in Table 1 order (plus the layer-wise network of eq. 34).
    pub rows: Vec<MemoryRow>,
    /// The analytic table with the paper's figures and notes, Markdown.
    pub analytic_markdown: String,
    /// The measured summary, Markdown.
    pub measured_markdown: String,
    /// The points of the depth, batch and resolution sweeps, per architecture and mode
    /// (empty in results cached before they were recorded).
    #[serde(default)]
    pub points: Vec<MemoryPoint>,
}

pub(crate) fn run_memory(c: &MemoryConfig) -> Result<MemoryData> {
    use crate::measure::memory::{table1 as analytic_table1, table1_markdown};
    if !crate::measure::alloc::is_installed() {
        return Err(Error::config(
            "the memory experiment (table1, memory-scaling)",
            "the counting global allocator (revstab::measure::alloc::CountingAlloc) installed in the binary, to measure memory; run it through `cargo run --release --bin figures`",
            "a binary without it",
        ));
    }
    let measured = crate::experiments::memory::run(c)?;
    let t1 = analytic_table1();
    let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let mut rows = Vec::new();
    for r in &t1 {
        let arch = r.arch;
        let row = |mode: Source| {
            measured
                .summary
                .iter()
                .find(|s| s.arch == arch && s.mode == mode)
        };
        let (stored, recon) = (row(Source::Stored), row(Source::Reconstructed));
        // The mode the model describes: reconstructed, stored for the ResNet (the same step).
        let model = if arch.reconstructable() {
            recon
        } else {
            stored
        };
        let any = model.or(stored).or(recon);
        rows.push(MemoryRow {
            model: r.model.clone(),
            arch,
            channels: r.channels.clone(),
            pooling: r.pooling.clone(),
            paper_bytes_per_pixel: r.paper_bytes_per_pixel,
            analytic_bytes_per_pixel: r.bytes_per_pixel,
            paper_weight_bytes: r.paper_weight_bytes,
            analytic_weight_bytes: r.weight_bytes,
            paper_peak_bytes: r.paper_peak_bytes_text,
            analytic_peak_bytes: r.peak_bytes_text,
            measured_layers: any.map(|s| s.layers).unwrap_or(0),
            measured_channels: any.map(|s| s.channels.clone()).unwrap_or_default(),
            measured_blocks: any.map(|s| s.blocks.clone()).unwrap_or_default(),
            measured_analytic_bytes_per_pixel: opt(model.and_then(|s| s.analytic_bpx)),
            measured_stored_bytes_per_pixel: opt(stored.map(|s| s.measured_bpx)),
            measured_reconstructed_bytes_per_pixel: opt(recon.map(|s| s.measured_bpx)),
            measured_over_analytic: opt(model.and_then(|s| s.measured_over_analytic)),
            measured_marginal_bytes_per_pixel: opt(model.and_then(|s| s.marginal_bpx)),
            marginal_over_analytic: opt(model.and_then(|s| s.marginal_over_analytic)),
        });
    }
    let mut points = Vec::new();
    for &arch in &c.archs {
        for &mode in &c.modes {
            let sweeps: [(MemAxis, &[usize]); 3] = [
                (MemAxis::Depth, &c.depths),
                (MemAxis::Batch, &c.batches),
                (MemAxis::Size, &c.sizes),
            ];
            for (sweep, values) in sweeps {
                for &v in values {
                    let (depth, batch, size) = match sweep {
                        MemAxis::Depth => (v, c.batch, c.input_size),
                        MemAxis::Batch => (c.depth_for(arch), v, c.input_size),
                        MemAxis::Size => (c.depth_for(arch), c.batch, v),
                    };
                    if let Some(p) = measured.points.iter().find(|p| {
                        p.arch == arch
                            && p.mode == mode
                            && p.depth == depth
                            && p.batch == batch
                            && p.size == size
                    }) {
                        points.push(MemoryPoint {
                            sweep,
                            arch,
                            mode,
                            depth,
                            batch,
                            size,
                            layers: p.layers,
                            peak_bytes: p.peak_bytes,
                            act_peak_bytes: p.act_peak_bytes,
                            grad_bytes: p.grad_bytes,
                            tape_bytes: p.tape_bytes,
                            weight_bytes: p.weight_bytes,
                        });
                    }
                }
            }
        }
    }
    Ok(MemoryData {
        rows,
        analytic_markdown: table1_markdown(&t1),
        measured_markdown: measured.markdown(),
        points,
    })
}
