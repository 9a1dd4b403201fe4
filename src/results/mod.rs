//! The results layer: what every experiment's result files share, below the experiments and the
//! figures (it imports neither).
//!
//! - [`text`]: floats as text (`fmt_f`/`parse_f`, the CSV number format, the two serde forms);
//! - [`provenance`]: what produced a result file;
//! - [`csv`]: rows to CSV text, and the figures' CSV files with a provenance line;
//! - [`fit`]: least-squares line fits;
//! - [`diff`]: the keys in which two configs differ (for `--resume` errors);
//! - [`hash`]: the FNV-1a hash behind cache keys and seed streams;
//! - [`sweep`]: the depth and slope sweeps of the scaling and accuracy experiments.

pub mod csv;
pub mod diff;
pub mod fit;
pub mod hash;
pub mod provenance;
pub mod sweep;
pub mod text;

pub use fit::{fit_line, fit_xy, LineFit};
pub use hash::fnv1a64;
pub use provenance::Provenance;
pub use sweep::{DepthSweep, SlopeSweep};
pub use text::{fmt_f, fmt_f_exact, num_text, parse_f};
