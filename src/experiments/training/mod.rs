//! Training experiments: a single run with its files, the accuracy sweeps of Hascoet et al.
//! Fig. 12 and 15 (accuracy with and without reconstruction over depth and slope), and the
//! gradient angle through training of Gomez et al. Fig. 4.
//!
//! Files of a single run (`--out DIR`): `history.csv` (per epoch, no timing), `timings.csv`
//! (wall seconds per epoch), `angles.csv` and
//! `angles_layers.csv` (when the probe is on), `result.json`, `run.json`, and the checkpoints
//! of [`crate::train`].
//!
//! Files of the accuracy sweep: `points/` (one JSON per finished run, what `--resume` reads),
//! `accuracy.csv` (one row per run, grid order, rewritten after every run), `timings.csv` (the
//! runs' wall times), `run.json`.
//! Files of the angle experiment: `angles.csv`, `angles_layers.csv`, `summary.csv`,
//! `timings.csv`, `run.json`.
//! No data CSV holds a wall time: a rerun of the same config writes them byte-identical (on the
//! CPU); the times go to the `timings.csv` sidecars. Every file is written atomically.

mod accuracy;
mod accuracy_run;
mod angles;
mod experiment;
mod extend;
mod output;
pub mod records;
mod single;
mod summary;
mod sweep;

pub use accuracy::{
    AccuracyConfig, AccuracyPoint, AccuracyResult, ACCURACY_DATA, ACCURACY_HEADER,
    ACCURACY_TIMINGS_HEADER,
};
pub use accuracy_run::{run_accuracy, run_accuracy_point};
pub use angles::*;
pub use experiment::{ConfigFile, Experiment};
pub use extend::{extended_results, ACCURACY_GRID_KEYS};
pub use output::{prepare_out, write_run_json};
pub use single::{single_run, SingleRunOptions};
pub use summary::{accuracy_table, mean_std, point_stats, PointStats};
pub use sweep::{merge, SweepOptions};

/// The depth sweep (every depth at one slope, Fig. 12/15 right) and the slope sweep (every slope
/// at one depth, Fig. 12/15 left): the results layer's, shared with the scaling experiment.
pub use crate::results::sweep::{DepthSweep, SlopeSweep};

// Helpers the submodules share; the angle experiment and the grid extension take them from here.
use accuracy::accuracy_col;
pub(crate) use accuracy::seconds_of_point_file;
use output::to_json;
use sweep::{run_points, sweep_fields};

use crate::experiments::MANIFEST;
use crate::results::csv::csv_text;
