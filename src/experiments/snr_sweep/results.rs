//! The results of a sweep, typed: [`SweepResults`] is what [`run_sweep`](super::run_sweep),
//! [`merge`](super::merge) and `--resume` produce, and what the tables, the figure and `report`
//! read.
//!
//! On disk it is the output directory's `points/`: the manifest (the config) and one JSON file
//! per finished point, unchanged; `snr_sweep.csv` and `summary.csv` are derived from it.

use super::{
    points_dir, read_points, summary_table, write_atomic, write_point, write_tables, Manifest,
    PointResult, SweepConfig, MANIFEST,
};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A sweep's config and the results of its finished points, in grid order (by
/// [`Point::index`](super::Point::index)). A sharded or interrupted run holds only the points
/// it has; a complete one holds every point of `config.grid()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResults {
    /// The config that produced the points.
    pub config: SweepConfig,
    /// The finished points, in grid order.
    pub points: Vec<PointResult>,
}

impl SweepResults {
    /// Read the results in `dir` from its point files. The config is the manifest's
    /// (`points/manifest.json`) or, in a directory without one, `run.json`'s `config`. Errors
    /// ([`Error::Data`]): neither names a config (not a sweep's output), or a file is corrupt.
    pub fn read(dir: &Path) -> Result<SweepResults> {
        let (config, points) = read_points(dir)?;
        let config = match config {
            Some(c) => c,
            None => run_json_config(dir)?.ok_or_else(|| {
                Error::data(
                    dir.display(),
                    format!("a snr-sweep output (points/{MANIFEST} or a config in run.json)"),
                    "neither",
                )
            })?,
        };
        Ok(SweepResults { config, points })
    }

    /// Write the results into `out` as a finished run leaves them: the manifest, every point's
    /// file and the tables ([`SweepResults::write_tables`]). `out/points` must exist
    /// ([`super::prepare_out`]).
    pub fn write(&self, out: &Path) -> Result<()> {
        let manifest = serde_json::to_string_pretty(&Manifest {
            config: self.config.clone(),
        })
        .map_err(|e| Error::internal("JSON serialisation", e))?;
        write_atomic(&points_dir(out).join(MANIFEST), manifest.as_bytes())?;
        for r in &self.points {
            write_point(out, r)?;
        }
        self.write_tables(out)
    }

    /// Write `snr_sweep.csv` and `summary.csv` into `out` (the points' lines in their order).
    pub fn write_tables(&self, out: &Path) -> Result<()> {
        write_tables(out, &self.points)
    }

    /// The printed summary ([`summary_table`]).
    pub fn summary_table(&self) -> String {
        summary_table(&self.points)
    }

    /// Points computed, summed over the points, seconds (0 for points read from files, which
    /// keep no timing).
    pub fn point_seconds(&self) -> f64 {
        self.points.iter().map(|r| r.seconds).sum()
    }
}

/// The `config` of `dir/run.json`, if there is one and it is a sweep config.
fn run_json_config(dir: &Path) -> Result<Option<SweepConfig>> {
    let path = dir.join("run.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let mut v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::data(path.display(), "JSON", e))?;
    if let Some(c) = v.get_mut("config") {
        crate::nets::lift_legacy_net_keys(c);
    }
    match v.get("config") {
        Some(c) => serde_json::from_value(c.clone()).map(Some).map_err(|e| {
            Error::data(
                format!("{}: config", path.display()),
                "a snr-sweep config",
                e,
            )
        }),
        None => Ok(None),
    }
}
