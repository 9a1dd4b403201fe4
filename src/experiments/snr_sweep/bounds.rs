//! The CI regression on error bounds: the bounds file ([`BoundsFile`], `experiments/bounds.toml`),
//! the measurement of each bound's fixed-seed configuration ([`check_bounds`]) and the table
//! of the checks ([`bounds_table`]).

use super::summary::short;
use super::{run_point, Point, SweepConfig};
use crate::device::Precision;
use crate::error::{Error, Result};
use crate::nets::Arch;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The bounds file of the CI regression (`experiments/bounds.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundsFile {
    /// Margin (dB) below the measured values at which bounds were set (documentation).
    pub margin_db: f64,
    /// Settings shared by every bound (a sweep config; its grid fields are ignored).
    #[serde(default)]
    pub defaults: SweepConfig,
    /// The bounds.
    #[serde(rename = "bound")]
    pub bounds: Vec<Bound>,
}

/// One fixed-seed configuration and the lowest-layer SNR it must keep.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    /// Architecture.
    pub arch: Arch,
    /// Depth.
    pub depth: usize,
    /// Slope.
    pub slope: f64,
    /// Dtype.
    pub dtype: Precision,
    /// Seed.
    #[serde(default)]
    pub seed: u64,
    /// Minimum `lowest_snr_db` (same-dtype reference).
    pub min_lowest_snr_db: f64,
}

/// One checked bound.
#[derive(Debug, Clone)]
pub struct BoundCheck {
    /// The bound.
    pub bound: Bound,
    /// Measured `lowest_snr_db`.
    pub measured: f64,
}

impl BoundCheck {
    /// Whether the bound holds.
    pub fn ok(&self) -> bool {
        self.measured >= self.bound.min_lowest_snr_db
    }
}

/// Read a bounds file.
pub fn read_bounds(path: &Path) -> Result<BoundsFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let b: BoundsFile = toml::from_str(&text)
        .map_err(|e| Error::config_file(path, crate::nets::toml_error_text(&e)))?;
    if b.bounds.is_empty() {
        let e = "at least one [[bound]] entry";
        return Err(Error::config(path.display(), e, "none"));
    }
    Ok(b)
}

/// Measure every bound's configuration (in parallel) and return the checks in file order.
pub fn check_bounds(file: &BoundsFile, threads: usize) -> Result<Vec<BoundCheck>> {
    let device = file.defaults.device.open()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::internal("thread pool", e))?;
    pool.install(|| {
        file.bounds
            .par_iter()
            .map(|b| {
                let cfg = SweepConfig {
                    depth_law: false,
                    ..file.defaults.clone()
                };
                let p = Point {
                    index: 0,
                    arch: b.arch,
                    depth: b.depth,
                    slope: b.slope,
                    eps_i: cfg.eps_i.first().copied().unwrap_or(0.0),
                    width: cfg.widths.first().copied().unwrap_or(8),
                    dtype: b.dtype,
                    seed: b.seed,
                };
                cfg.net_config(&p).validate()?;
                let (r, _) = run_point(&cfg, &p, &device)?;
                Ok(BoundCheck {
                    bound: b.clone(),
                    measured: r.lowest_snr_db,
                })
            })
            .collect()
    })
}

/// Table of bound checks (all, or only regressions).
pub fn bounds_table(checks: &[BoundCheck], only_failures: bool) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "{:<10} {:>5} {:>6} {:>5} {:>5} {:>10} {:>10} {:>9}  status\n",
        "arch", "depth", "slope", "dtype", "seed", "measured", "bound", "margin"
    );
    for c in checks.iter().filter(|c| !only_failures || !c.ok()) {
        let b = &c.bound;
        let _ = writeln!(
            s,
            "{:<10} {:>5} {:>6} {:>5} {:>5} {:>10} {:>10} {:>9}  {}",
            b.arch.as_str(),
            b.depth,
            b.slope,
            b.dtype,
            b.seed,
            short(c.measured),
            short(b.min_lowest_snr_db),
            short(c.measured - b.min_lowest_snr_db),
            if c.ok() { "ok" } else { "REGRESSED" }
        );
    }
    s
}
