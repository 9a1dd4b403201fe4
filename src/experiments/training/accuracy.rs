//! The accuracy sweep's config and data: [`AccuracyConfig`] (validation, the grid of
//! [`AccuracyPoint`]s, each point's training run), the `accuracy.csv` and `timings.csv`
//! headers, and one run's [`AccuracyResult`] with its point-file form.

use super::{DepthSweep, SlopeSweep};
use crate::error::{Error, Result};
use crate::nets::{Arch, Source};
use crate::train::{read_toml, TrainConfig};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The accuracy sweeps (`experiments/accuracy.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccuracyConfig {
    /// Must be `accuracy`.
    pub experiment: String,
    /// Architectures.
    pub archs: Vec<Arch>,
    /// Modes each point is trained in (same seed, same data order).
    pub modes: Vec<Source>,
    /// Seeds per point.
    pub seeds: Vec<u64>,
    /// The anchored mode's SNR targets (dB): one run per target, labelled `anchored:<target>`
    /// (unless `[train.anchors]` lists the anchors: then one run with that list).
    pub anchor_targets: Vec<f64>,
    /// Depth sweep.
    pub depth_sweep: DepthSweep,
    /// Slope sweep.
    pub slope_sweep: SlopeSweep,
    /// Peak learning rate per architecture (others use `train.lr`).
    pub arch_lr: HashMap<Arch, f64>,
    /// Everything else of each run (its arch, depth, slope, mode and seed are overridden).
    pub train: TrainConfig,
}

/// Data of the accuracy sweep's runs (see [`AccuracyConfig::default`]).
pub const ACCURACY_DATA: &str = "synthetic:train=3000,test=1000,size=16";

impl Default for AccuracyConfig {
    fn default() -> Self {
        AccuracyConfig {
            experiment: "accuracy".into(),
            archs: vec![Arch::Layerwise, Arch::Hybrid],
            modes: vec![Source::Stored, Source::Reconstructed],
            seeds: vec![0],
            anchor_targets: vec![crate::measure::anchors::DEFAULT_MIN_SNR_DB],
            depth_sweep: DepthSweep {
                slope: 0.2,
                depths: vec![2, 4, 6, 8, 10, 12, 16],
            },
            slope_sweep: SlopeSweep {
                depth: 6,
                slopes: vec![0.01, 0.02, 0.05, 0.2, 1.0],
            },
            arch_lr: HashMap::from([(Arch::Hybrid, 0.05)]),
            // Twice the single run's data and one more epoch: the hybrid overfits 1500 images
            // (depth 8: 78% train vs 43% test accuracy after 6 epochs), and the sweep still
            // takes about 12 minutes on 2 cores.
            // The recipe the accuracy figures were measured with: conv init 0.5 x Kaiming
            // (the tools' default is 1, Kaiming normal).
            train: TrainConfig {
                epochs: 4,
                data: ACCURACY_DATA.into(),
                net: crate::nets::NetOptions {
                    init_scale: 0.5,
                    ..crate::nets::NetOptions::default()
                },
                ..TrainConfig::default()
            },
        }
    }
}

/// One run of the accuracy sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyPoint {
    /// Position in the grid.
    pub index: usize,
    /// Architecture.
    pub arch: Arch,
    /// Depth.
    pub depth: usize,
    /// Slope.
    pub slope: f64,
    /// Mode.
    pub mode: Source,
    /// Anchored runs with a planner: the SNR target (dB). Absent otherwise (and in point files
    /// written before the anchored mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_snr_db: Option<f64>,
    /// Seed.
    pub seed: u64,
    /// Which sweeps the point belongs to: `depth`, `slope` or `depth+slope`.
    pub sweep: String,
}

impl AccuracyPoint {
    /// A stable, file-name-safe key.
    pub fn key(&self) -> String {
        format!(
            "{:04}-{}-d{}-n{}-{}-s{}",
            self.index,
            self.arch,
            self.depth,
            self.slope,
            self.mode_label().replace(':', ""),
            self.seed
        )
    }

    /// The mode as `accuracy.csv` spells it: the source, and for a planned anchored run its
    /// target, `anchored:<dB>`.
    pub fn mode_label(&self) -> String {
        match self.min_snr_db {
            Some(t) => format!("{}:{t}", self.mode.as_str()),
            None => self.mode.as_str().to_string(),
        }
    }
}

/// Header of `accuracy.csv`. No timing column: the wall time of each run goes to
/// `timings.csv` ([`ACCURACY_TIMINGS_HEADER`]), so that a rerun writes the same bytes.
pub const ACCURACY_HEADER: [&str; 17] = [
    "arch",
    "depth",
    "slope",
    "mode",
    "seed",
    "test_acc",
    "train_loss",
    "train_acc",
    "epochs",
    "layers",
    "test_loss",
    "steps",
    "sweep",
    "status",
    "diagnosis",
    "acc_counted_as",
    "collapse_layer",
];

/// Header of the accuracy sweep's `timings.csv`: the key columns of `accuracy.csv` and the
/// run's wall time (`seconds`, s), one row per run in grid order.
pub const ACCURACY_TIMINGS_HEADER: [&str; 6] =
    ["arch", "depth", "slope", "mode", "seed", "seconds"];

/// Position of `name` in [`ACCURACY_HEADER`].
pub(super) fn accuracy_col(name: &str) -> usize {
    ACCURACY_HEADER
        .iter()
        .position(|h| *h == name)
        .expect("a column of accuracy.csv")
}

/// The result of one run of the sweep. A diverged run is a result: its `test_acc` is chance
/// (`1 / classes`, the accuracy of the weights a non-finite update would leave), marked
/// `acc_counted_as = chance` and `status = diverged`, with the step (`steps`) and the layer
/// whose reconstruction SNR collapsed (`collapse_layer`); means over seeds include it.
///
/// Stored as `points/<key>.json`. Point files written before the wall time left
/// `accuracy.csv` (an 18-field `row` with `seconds` as its tenth field) still load: the field
/// is moved out of the row into [`AccuracyResult::seconds`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "AccuracyResultFile")]
pub struct AccuracyResult {
    /// The point.
    pub point: AccuracyPoint,
    /// Its `accuracy.csv` row ([`ACCURACY_HEADER`]).
    pub row: Vec<String>,
    /// Wall time of the run, seconds (its row of `timings.csv`).
    pub seconds: f64,
    /// Anchored runs: every plan of the run (its row of `anchors.csv`); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<crate::train::PlanRecord>,
    /// Anchored runs: bytes per input pixel of the largest plan's anchors (its bytes held
    /// over `batch * height * width`); NaN otherwise.
    #[serde(
        default = "nan",
        skip_serializing_if = "is_nan",
        with = "crate::results::text::float_text"
    )]
    pub anchor_bytes_per_pixel: f64,
}

fn nan() -> f64 {
    f64::NAN
}

fn is_nan(v: &f64) -> bool {
    v.is_nan()
}

/// [`AccuracyResult`] as a point file holds it, in the current layout or the older one.
#[derive(Deserialize)]
struct AccuracyResultFile {
    point: AccuracyPoint,
    row: Vec<String>,
    #[serde(default)]
    seconds: Option<f64>,
    #[serde(default)]
    plans: Vec<crate::train::PlanRecord>,
    #[serde(default = "nan", with = "crate::results::text::float_text")]
    anchor_bytes_per_pixel: f64,
}

/// Fields of an `accuracy.csv` row while it still had `seconds` (after `epochs`).
const OLD_ACCURACY_FIELDS: usize = 18;
/// Position of `seconds` in that row.
const OLD_ACCURACY_SECONDS: usize = 9;

impl From<AccuracyResultFile> for AccuracyResult {
    fn from(f: AccuracyResultFile) -> Self {
        let mut row = f.row;
        let seconds = seconds_of_point_file(
            f.seconds,
            &mut row,
            OLD_ACCURACY_FIELDS,
            OLD_ACCURACY_SECONDS,
        );
        AccuracyResult {
            point: f.point,
            row,
            seconds,
            plans: f.plans,
            anchor_bytes_per_pixel: f.anchor_bytes_per_pixel,
        }
    }
}

/// The wall time of a run read from its point file: the file's `seconds` field, or, in a file
/// written while timings were still a CSV column, that column taken out of `row` (a row of
/// `old_fields` fields with the time at `old_pos`), so that `row` is in the current layout.
/// NaN when neither holds a number.
pub(crate) fn seconds_of_point_file(
    seconds: Option<f64>,
    row: &mut Vec<String>,
    old_fields: usize,
    old_pos: usize,
) -> f64 {
    match seconds {
        Some(s) => s,
        None if row.len() == old_fields => {
            crate::results::text::parse_f(&row.remove(old_pos)).unwrap_or(f64::NAN)
        }
        None => f64::NAN,
    }
}

impl AccuracyResult {
    /// The field `name` of its row (empty when the row lacks it).
    pub fn field(&self, name: &str) -> &str {
        self.row.get(accuracy_col(name)).map_or("", |s| s.as_str())
    }

    /// Whether the run diverged.
    pub fn diverged(&self) -> bool {
        self.field("status") == "diverged"
    }

    /// Test accuracy as counted: the evaluated one, or chance for a diverged run.
    pub fn test_acc(&self) -> f64 {
        crate::experiments::snr_sweep::parse_f(self.field("test_acc")).unwrap_or(f64::NAN)
    }

    /// Its row of `timings.csv` ([`ACCURACY_TIMINGS_HEADER`]).
    pub fn timing_row(&self) -> Vec<String> {
        let mut r: Vec<String> = self.row.iter().take(5).cloned().collect();
        r.push(format!("{:.2}", self.seconds));
        r
    }
}

impl AccuracyConfig {
    /// Read a TOML config; unknown keys and bad values are errors naming the file.
    pub fn from_toml_file(path: &Path) -> Result<AccuracyConfig> {
        read_toml(path)
    }

    /// Check every value and every network of the grid.
    pub fn validate(&self) -> Result<()> {
        if self.experiment != "accuracy" {
            let got = format!("`{}`", self.experiment);
            return Err(Error::config(
                "experiment (accuracy config)",
                "`accuracy`",
                got,
            ));
        }
        if self.archs.is_empty() || self.modes.is_empty() || self.seeds.is_empty() {
            return Err(Error::config(
                "archs, modes and seeds",
                "at least one value each",
                "an empty grid",
            ));
        }
        if self.depth_sweep.depths.is_empty() && self.slope_sweep.slopes.is_empty() {
            let (c, e) = (
                "depth_sweep.depths and slope_sweep.slopes",
                "at least one value",
            );
            return Err(Error::config(
                c,
                e,
                "an empty grid: no depths and no slopes",
            ));
        }
        use crate::limits::check_distinct;
        check_distinct("archs", &self.archs)?;
        check_distinct("modes", &self.modes)?;
        check_distinct("seeds", &self.seeds)?;
        check_distinct("anchor_targets", &self.anchor_targets)?;
        if self.modes.contains(&Source::Anchored) && self.train.anchors.list.is_none() {
            if self.anchor_targets.is_empty() {
                let e = "at least one SNR target (dB) for the anchored mode";
                return Err(Error::config("anchor_targets", e, "none"));
            }
            if let Some(t) = self.anchor_targets.iter().find(|t| !t.is_finite()) {
                return Err(Error::config("anchor_targets", "finite numbers of dB", t));
            }
        }
        check_distinct("depth_sweep.depths", &self.depth_sweep.depths)?;
        check_distinct("slope_sweep.slopes", &self.slope_sweep.slopes)?;
        for p in self.grid() {
            self.run_config(&p).validate()?;
        }
        // An explicit anchor list names layers: checked once, before anything is written.
        if let Some(p) = self.grid().iter().find(|p| p.mode == Source::Anchored) {
            if self.train.anchors.list.is_some() {
                self.run_config(p).check_data_channels()?;
            }
        }
        Ok(())
    }

    /// The grid: per arch, the depth sweep then the slope sweep (a shared point once), each
    /// with every seed and mode.
    pub fn grid(&self) -> Vec<AccuracyPoint> {
        let mut nets: Vec<(usize, f64, String)> = Vec::new();
        let mut add = |d: usize, s: f64, sweep: &str| match nets
            .iter_mut()
            .find(|(d0, s0, _)| *d0 == d && *s0 == s)
        {
            Some(n) if !n.2.contains(sweep) => n.2 = format!("{}+{sweep}", n.2),
            Some(_) => {}
            None => nets.push((d, s, sweep.to_string())),
        };
        for &d in &self.depth_sweep.depths {
            add(d, self.depth_sweep.slope, "depth");
        }
        for &s in &self.slope_sweep.slopes {
            add(self.slope_sweep.depth, s, "slope");
        }
        let mut points = Vec::new();
        for &arch in &self.archs {
            for (depth, slope, sweep) in &nets {
                for &seed in &self.seeds {
                    for &mode in &self.modes {
                        let planned = mode == Source::Anchored && self.train.anchors.list.is_none();
                        let targets: Vec<Option<f64>> = if planned {
                            self.anchor_targets.iter().map(|&t| Some(t)).collect()
                        } else {
                            vec![None]
                        };
                        for min_snr_db in targets {
                            points.push(AccuracyPoint {
                                index: points.len(),
                                arch,
                                depth: *depth,
                                slope: *slope,
                                mode,
                                min_snr_db,
                                seed,
                                sweep: sweep.clone(),
                            });
                        }
                    }
                }
            }
        }
        points
    }

    /// The training run of a point.
    pub fn run_config(&self, p: &AccuracyPoint) -> TrainConfig {
        let lr = self.arch_lr.get(&p.arch).copied().unwrap_or(self.train.lr);
        TrainConfig {
            arch: p.arch,
            depth: p.depth,
            slope: p.slope,
            mode: p.mode,
            anchors: match (p.mode, p.min_snr_db) {
                (Source::Anchored, Some(t)) => crate::measure::anchors::Anchoring {
                    min_snr_db: Some(t),
                    list: None,
                    ..self.train.anchors.clone()
                },
                (Source::Anchored, None) => self.train.anchors.clone(),
                _ => crate::measure::anchors::Anchoring::default(),
            },
            seed: p.seed,
            lr,
            angle_every: 0,
            nested_depth: self.train.net.nested.then(|| {
                let points = self.grid();
                let same = points.iter().filter(|q| q.arch == p.arch);
                same.map(|q| q.depth).max().unwrap_or(p.depth)
            }),
            ..self.train.clone()
        }
    }
}
