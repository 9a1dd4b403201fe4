//! The depth and slope sweeps of the scaling (`fig11`, `fig14`) and accuracy (`fig12`, `fig15`)
//! experiments.

use serde::{Deserialize, Serialize};

/// The depth sweep: every depth at one slope (Fig. 11/14 and 12/15 right).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthSweep {
    /// Slope of every point.
    pub slope: f64,
    /// Depths (units for layer-wise, blocks for the block architectures).
    pub depths: Vec<usize>,
}

/// The slope sweep: every slope at one depth (Fig. 11/14 and 12/15 left).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlopeSweep {
    /// Depth of every point.
    pub depth: usize,
    /// Slopes `n > 0`.
    pub slopes: Vec<f64>,
}
