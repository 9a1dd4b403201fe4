//! The typed results of a run: the fits along the sweeps ([`ScalingFit`] per [`Axis`]), the
//! timings and everything together ([`MemoryResults`]).

use super::{MemoryConfig, PeakPoint, SummaryRow};
use crate::measure::memory::Table1Row;
use crate::nets::{Arch, Source};
use serde::{Deserialize, Serialize};

/// Which sweep a scaling fit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    /// Depth (blocks; units for layer-wise): slope in bytes per extra block.
    Depth,
    /// Batch: slope in bytes per input pixel (`x = batch * size^2`).
    Batch,
    /// Resolution: slope in bytes per input pixel (`x = batch * size^2`).
    Size,
}

/// A least-squares fit of the peak along one sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingFit {
    /// Architecture.
    pub arch: Arch,
    /// Mode.
    pub mode: Source,
    /// Sweep.
    pub axis: Axis,
    /// Unit of the slopes (`bytes/block`, `bytes/pixel`).
    pub unit: String,
    /// The swept values (depths, batches or sizes), `;`-separated in the CSV.
    pub values: Vec<usize>,
    /// Slope of `peak_bytes`.
    pub slope: f64,
    /// Intercept of `peak_bytes`.
    pub intercept: f64,
    /// R^2 of the `peak_bytes` fit.
    pub r2: f64,
    /// Slope of `act_peak_bytes` (the peak without the parameter gradients). Along the batch
    /// sweep: the marginal activation bytes per input pixel, fixed costs removed.
    pub act_slope: f64,
    /// Intercept of `act_peak_bytes`.
    pub act_intercept: f64,
    /// R^2 of the `act_peak_bytes` fit.
    pub act_r2: f64,
    /// Peak at the last value over the peak at the first.
    pub ratio_last_first: f64,
    /// Every point of the fit is a copy of the stored step ([`PeakPoint::copied_from_stored`]).
    #[serde(default)]
    pub copied_from_stored: bool,
}

/// Wall-clock timings of a run, seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// The whole run.
    pub total_s: f64,
    /// Building networks and measuring every point.
    pub measure_s: f64,
    /// Number of distinct points measured.
    pub points: usize,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryResults {
    /// The configuration.
    pub config: MemoryConfig,
    /// Crate version.
    pub crate_version: String,
    /// Git revision of the working tree, when known.
    pub git_revision: Option<String>,
    /// Device name.
    pub device: String,
    /// The backend that computed the layers ([`Backend::as_str`](crate::backend::Backend::as_str)).
    pub backend: String,
    /// Storage dtype.
    pub dtype: String,
    /// Threads candle's CPU kernels used.
    pub threads: usize,
    /// The analytic Table 1 (paper configurations).
    pub table1: Vec<Table1Row>,
    /// Every measured point (each distinct configuration once).
    pub points: Vec<PeakPoint>,
    /// Fits along the sweeps.
    pub scaling: Vec<ScalingFit>,
    /// One row per architecture and mode (`summary.csv`).
    pub summary: Vec<SummaryRow>,
    /// Timings.
    pub timings: Timings,
}
