//! `snr-sweep`: reconstruction SNR over a grid of architectures, depths, slopes, `eps_i`,
//! widths, dtypes and seeds; resumable, shardable, and the CI regression on error bounds.
//!
//! Each grid point builds a network from its seed, draws one unit-Gaussian input batch (seeded,
//! the paper's alpha setting), and traces the per-layer reconstruction SNR
//! ([`crate::measure::trace::snr_trace`]): against the stored activations in the same dtype and
//! against an f64 shadow of the same weights, with the depth-law prediction beside each value.
//!
//! Results under `DIR`: `points/` (one file per finished point, written atomically: what
//! `--resume` and `merge` read), then `snr_sweep.csv` (one row per point and layer),
//! `summary.csv` (one row per point) and `run.json` (config, version, revision, device, backend,
//! timings), regenerated from the point files in grid order, so an interrupted-and-resumed run
//! and a merged sharded run end with exactly the files of an uninterrupted run.
//!
//! The results are one typed value, [`SweepResults`] (the config and the finished points):
//! what [`run_sweep`], [`merge`] and `--resume` produce, what the tables, the figure and
//! `report` read, and [`SweepResults::read`] loads from the point files.

// Shared by the submodules (`super::MANIFEST`, `super::write_atomic`).
use crate::experiments::MANIFEST;
use crate::util::write_atomic;

mod bounds;
mod config;
mod laws;
mod point;
mod results;
mod resume;
mod run;
mod run_json;
mod store;
mod summary;

pub use bounds::{bounds_table, check_bounds, read_bounds, Bound, BoundCheck, BoundsFile};
pub use config::{Point, SweepConfig};
pub use laws::{laws_table, LAWS_HEADER};
pub use point::{point_batch, run_point, trace_net, PointResult, SUMMARY_HEADER, TRACE_HEADER};
pub use results::SweepResults;
pub use resume::{resumable_points, GRID_KEYS};
pub use run::{merge, run_sweep, RunOptions, Shard, SweepOutcome};
pub use run_json::{
    init_record, run_record, topology_record, write_record, write_run_json,
    write_run_json_resumable,
};
use store::{points_dir, write_point, Manifest};
pub use store::{prepare_out, read_points, write_tables};
pub use summary::summary_table;

// The float text of result files lives in the results layer (re-exported under its old path).
pub use crate::results::text::{fmt_f, fmt_f_exact, parse_f};
