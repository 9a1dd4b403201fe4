//! The summary of a run (`summary.csv`): one [`SummaryRow`] per architecture and mode at its
//! comparison point, measured beside the analytic and the paper's figures, with the marginal
//! and depth slopes of the fits.

use super::model::dash_joined;
use super::{
    analytic_bytes_per_pixel_in, paper_bytes_per_pixel, pools_label, stage_channels, Axis,
    MemoryConfig, PeakPoint, ScalingFit,
};
use crate::measure::memory::Table1Row;
use crate::nets::{Arch, Source};
use crate::results::fit::fit_xy;
use serde::{Deserialize, Serialize};

/// One row of the summary (`summary.csv`): one architecture in one mode at its comparison
/// point (depth [`MemoryConfig::depth_for`], batch `batch`, `input_size`). Every `*_bpx`
/// figure is bytes per input pixel (`batch * input_size^2`) of activations and activation
/// gradients: the weights (allocated before the step) and the parameter gradients
/// (`grad_bytes`, subtracted from the peak) are excluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Architecture.
    pub arch: Arch,
    /// Source of the activations in the backward.
    pub mode: Source,
    /// Analytic `M'_z + M'_g` of the same network in this mode
    /// ([`analytic_bytes_per_pixel_in`]): the model of [`crate::measure::memory`] in
    /// reconstructed mode and for the ResNet, the stored-mode model of [`mem_config_stored`](super::mem_config_stored)
    /// (every convolution and batch-norm input stored + one gradient buffer) for a reversible
    /// architecture in stored mode. `None` (empty in the CSV) where the model does not apply:
    /// a stage without a block.
    pub analytic_bpx: Option<f64>,
    /// Measured: `act_peak_bytes / (batch * input_size^2)` at the comparison point.
    pub measured_bpx: f64,
    /// Marginal: the least-squares slope of `act_peak_bytes` over the batch sweep per input
    /// pixel (fixed costs, such as weight-sized temporaries, removed). `None` with fewer than
    /// two distinct batches.
    pub marginal_bpx: Option<f64>,
    /// `marginal_bpx / analytic_bpx`.
    pub marginal_over_analytic: Option<f64>,
    /// `measured_bpx / analytic_bpx`.
    pub measured_over_analytic: Option<f64>,
    /// R^2 of the marginal fit.
    pub marginal_r2: Option<f64>,
    /// The paper's printed `M'_z + M'_g` for its configuration of this family (Table 1, eq.
    /// 34), in the mode it describes only (reconstructed; stored and reconstructed for the
    /// ResNet).
    pub paper_bpx: Option<f64>,
    /// The whole peak per input pixel, parameter gradients included.
    pub peak_bpx: f64,
    /// Bytes of the parameter gradients at the comparison point (not in the `*_bpx` figures).
    pub grad_bytes: usize,
    /// Bytes of the weights (not in any peak).
    pub weight_bytes: usize,
    /// Bytes the forward kept on the tape at the comparison point.
    pub tape_bytes: usize,
    /// Primitive layers.
    pub layers: usize,
    /// Blocks (units for layer-wise).
    pub depth: usize,
    /// Channels after the stem.
    pub width: usize,
    /// Input height = width.
    pub input_size: usize,
    /// Batch of the comparison point.
    pub batch: usize,
    /// The batch sweep of the marginal fit.
    pub batches: Vec<usize>,
    /// Poolings, e.g. `P_c-P_c-P_b` ([`pools_label`]).
    pub pools: String,
    /// Channels per stage, e.g. `32-128-512-512`.
    pub channels: String,
    /// Blocks (units) per stage, e.g. `2-2-2-1`.
    pub blocks: String,
    /// Storage dtype.
    pub dtype: String,
    /// Slope of the peak along the depth sweep, bytes per block (`None` without one).
    pub depth_slope: Option<f64>,
    /// Slope of the peak without parameter gradients along the depth sweep, bytes per block.
    pub depth_act_slope: Option<f64>,
    /// Slope of the parameter-gradient bytes along the depth sweep, bytes per block: the
    /// `M_theta`-like part of `depth_slope`.
    pub grad_bytes_per_block: Option<f64>,
    /// The comparison point is a copy of the stored step ([`PeakPoint::copied_from_stored`]).
    #[serde(default)]
    pub copied_from_stored: bool,
    /// Anchored: the anchors of the comparison point ([`PeakPoint::anchors`]); `None` in the
    /// other modes (left out of `run.json` then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchors: Option<crate::experiments::anchored::AnchorRecord>,
}

pub(super) fn summarize(
    cfg: &MemoryConfig,
    points: &[PeakPoint],
    scaling: &[ScalingFit],
    t1: &[Table1Row],
) -> Vec<SummaryRow> {
    let dtype = cfg.dtype.dtype();
    let fit = |arch: Arch, mode: Source, axis: Axis| {
        scaling
            .iter()
            .find(|f| f.arch == arch && f.mode == mode && f.axis == axis)
    };
    let grad_slope = |arch: Arch, mode: Source| {
        let pts: Vec<&PeakPoint> = cfg
            .depths
            .iter()
            .filter_map(|&d| {
                points.iter().find(|p| {
                    p.arch == arch
                        && p.mode == mode
                        && p.depth == d
                        && p.batch == cfg.batch
                        && p.size == cfg.input_size
                })
            })
            .collect();
        let x: Vec<f64> = pts.iter().map(|p| p.depth as f64).collect();
        let y: Vec<f64> = pts.iter().map(|p| p.grad_bytes as f64).collect();
        fit_xy(&x, &y).map(|f| f.slope)
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let mut rows = Vec::new();
    for &arch in &cfg.archs {
        let depth = cfg.depth_for(arch);
        let net = cfg.net_config(arch, depth, cfg.input_size);
        for &mode in &cfg.modes {
            let Some(p) = points.iter().find(|p| {
                p.arch == arch
                    && p.mode == mode
                    && p.depth == depth
                    && p.batch == cfg.batch
                    && p.size == cfg.input_size
            }) else {
                continue;
            };
            let analytic = analytic_bytes_per_pixel_in(&net, mode, dtype);
            let marginal = fit(arch, mode, Axis::Batch);
            let marginal_bpx = marginal.map(|f| f.act_slope);
            let depth_fit = fit(arch, mode, Axis::Depth);
            let model_mode = mode == Source::Reconstructed
                || (!arch.reconstructable() && mode != Source::Checkpointed);
            rows.push(SummaryRow {
                arch,
                mode,
                analytic_bpx: analytic,
                measured_bpx: p.act_bytes_per_pixel,
                marginal_bpx,
                marginal_over_analytic: ratio(marginal_bpx, analytic),
                measured_over_analytic: ratio(Some(p.act_bytes_per_pixel), analytic),
                marginal_r2: marginal.map(|f| f.act_r2),
                paper_bpx: if model_mode {
                    paper_bytes_per_pixel(arch, t1)
                } else {
                    None
                },
                peak_bpx: p.bytes_per_pixel,
                grad_bytes: p.grad_bytes,
                weight_bytes: p.weight_bytes,
                tape_bytes: p.tape_bytes,
                layers: p.layers,
                depth,
                width: cfg.width,
                input_size: cfg.input_size,
                batch: cfg.batch,
                batches: cfg.batches.clone(),
                pools: pools_label(&net),
                channels: dash_joined(&stage_channels(&net)),
                blocks: dash_joined(&net.units_per_stage()),
                dtype: p.dtype.clone(),
                depth_slope: depth_fit.map(|f| f.slope),
                depth_act_slope: depth_fit.map(|f| f.act_slope),
                grad_bytes_per_block: grad_slope(arch, mode),
                copied_from_stored: p.copied_from_stored,
                anchors: p.anchors.clone(),
            });
        }
    }
    rows
}
