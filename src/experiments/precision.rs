//! The precision experiment (`precision`): lowest SNR per dtype; config, run, results.

use crate::device::Precision;
use crate::error::Result;
use crate::experiments::net_settings::NetSettings;
use crate::experiments::snr_sweep::Point;
use crate::experiments::trace::{lowest_row, run_points, LowestRow};
use crate::nets::Arch;
use crate::results::text::num;
use serde::{Deserialize, Serialize};

/// Lowest SNR vs depth per storage dtype (`precision`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrecisionConfig {
    /// Architectures (one panel each).
    pub archs: Vec<Arch>,
    /// Storage dtypes (one series each).
    pub dtypes: Vec<Precision>,
    /// Depths.
    pub depths: Vec<usize>,
    /// Slope.
    pub slope: f64,
    /// Seed of weights and input.
    pub seed: u64,
    /// Network and input settings.
    pub net: NetSettings,
}

impl Default for PrecisionConfig {
    fn default() -> Self {
        PrecisionConfig {
            archs: vec![Arch::Layerwise, Arch::Hybrid],
            dtypes: Precision::ALL.to_vec(),
            depths: vec![1, 2, 4, 8, 16, 32],
            slope: 0.2,
            seed: 0,
            net: NetSettings::default(),
        }
    }
}

/// Result of the precision experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecisionData {
    /// Slope of every network.
    #[serde(with = "num")]
    pub slope: f64,
    /// One row per (arch, dtype, depth).
    pub rows: Vec<LowestRow>,
}

pub(crate) fn precision_points(c: &PrecisionConfig) -> Vec<Point> {
    let mut pts = Vec::new();
    for &arch in &c.archs {
        for &dtype in &c.dtypes {
            for &d in &c.depths {
                pts.push(
                    c.net
                        .point(pts.len(), arch, d, c.slope, c.net.eps_i, dtype, c.seed),
                );
            }
        }
    }
    pts
}

pub(crate) fn run_precision(c: &PrecisionConfig) -> Result<PrecisionData> {
    let out = run_points(
        &c.net.sweep_config(0.0, false, &precision_points(c)),
        &precision_points(c),
    )?;
    Ok(PrecisionData {
        slope: c.slope,
        rows: out
            .iter()
            .map(|(p, t, l, s)| lowest_row(p, t, *l, *s))
            .collect(),
    })
}
