//! The scaling experiment (`fig11`, `fig14`): lowest SNR vs depth and slope; config, run,
//! results.

use crate::device::Precision;
use crate::error::Result;
use crate::experiments::net_settings::NetSettings;
use crate::experiments::snr_sweep::Point;
use crate::experiments::trace::{lowest_row, run_points, LowestRow};
use crate::nets::Arch;
use crate::results::sweep::{DepthSweep, SlopeSweep};
use crate::results::text::num;
use serde::{Deserialize, Serialize};

/// Lowest reconstructed SNR vs depth at a fixed slope and vs slope at a fixed depth
/// (`fig11`, `fig14`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingConfig {
    /// Architecture.
    pub arch: Arch,
    /// Seed of weights and input.
    pub seed: u64,
    /// Storage dtype.
    pub dtype: Precision,
    /// The depth sweep.
    pub depth_sweep: DepthSweep,
    /// The slope sweep.
    pub slope_sweep: SlopeSweep,
    /// Network and input settings.
    pub net: NetSettings,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            arch: Arch::Layerwise,
            seed: 0,
            dtype: Precision::F32,
            depth_sweep: DepthSweep {
                slope: 0.5,
                depths: vec![1, 2, 3, 4, 6, 8, 12, 16, 24, 32],
            },
            slope_sweep: SlopeSweep {
                depth: 3,
                slopes: vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
            },
            net: NetSettings::default(),
        }
    }
}

/// Result of a scaling experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingData {
    /// Architecture.
    pub arch: Arch,
    /// Slope of the depth sweep.
    #[serde(with = "num")]
    pub depth_sweep_slope: f64,
    /// Depth of the slope sweep.
    pub slope_sweep_depth: usize,
    /// Depth sweep, by depth.
    pub depth_sweep: Vec<LowestRow>,
    /// Slope sweep, by slope.
    pub slope_sweep: Vec<LowestRow>,
}

pub(crate) fn scaling_points(c: &ScalingConfig) -> Vec<Point> {
    let mut pts = Vec::new();
    for &d in &c.depth_sweep.depths {
        pts.push(c.net.point(
            pts.len(),
            c.arch,
            d,
            c.depth_sweep.slope,
            c.net.eps_i,
            c.dtype,
            c.seed,
        ));
    }
    for &n in &c.slope_sweep.slopes {
        pts.push(c.net.point(
            pts.len(),
            c.arch,
            c.slope_sweep.depth,
            n,
            c.net.eps_i,
            c.dtype,
            c.seed,
        ));
    }
    pts
}

pub(crate) fn run_scaling(c: &ScalingConfig) -> Result<ScalingData> {
    let pts = scaling_points(c);
    let out = run_points(&c.net.sweep_config(0.0, true, &pts), &pts)?;
    let nd = c.depth_sweep.depths.len();
    let rows: Vec<LowestRow> = out
        .iter()
        .map(|(p, t, l, s)| lowest_row(p, t, *l, *s))
        .collect();
    Ok(ScalingData {
        arch: c.arch,
        depth_sweep_slope: c.depth_sweep.slope,
        slope_sweep_depth: c.slope_sweep.depth,
        depth_sweep: rows[..nd].to_vec(),
        slope_sweep: rows[nd..].to_vec(),
    })
}
