//! The angle experiment (`revnet-fig4`, `train --config experiments/revnet-fig4.toml`): the
//! angle between stored and reconstructed gradients during training; config, run, CSVs.

use super::*;
use crate::data::DataSplit;
use crate::error::{Error, Result};
use crate::experiments::snr_sweep::{fmt_f, parse_f};
use crate::nets::{Arch, NetOptions, Source};
use crate::train::{read_toml, train, AngleRecord, TrainConfig, TrainOptions};
use crate::util::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Header of `angles.csv`.
pub const ANGLES_HEADER: [&str; 14] = [
    "arch",
    "depth",
    "slope",
    "seed",
    "step",
    "epoch",
    "mode",
    "loss",
    "train_err",
    "test_err",
    "angle_deg",
    "lowest_snr_db",
    "lowest_layer",
    "lr",
];

/// Header of `angles_layers.csv`.
pub const ANGLE_LAYERS_HEADER: [&str; 8] = [
    "arch",
    "depth",
    "slope",
    "seed",
    "mode",
    "step",
    "layer",
    "angle_deg",
];

pub(crate) fn angle_rows(
    cfg: &TrainConfig,
    angles: &[AngleRecord],
    total_steps: usize,
) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let schedule = cfg.schedule(total_steps);
    // No slope for an architecture without a leaky ReLU, as in the snr-sweep's CSVs.
    let prefix = || {
        vec![
            cfg.arch.to_string(),
            cfg.depth.to_string(),
            cfg.arch.slope_field(cfg.slope),
            cfg.seed.to_string(),
        ]
    };
    let mut rows = Vec::new();
    let mut layers = Vec::new();
    for a in angles {
        let mut r = prefix();
        r.extend([
            a.step.to_string(),
            a.epoch.to_string(),
            a.mode.as_str().into(),
            fmt_f(a.loss),
            fmt_f(a.train_err),
            fmt_f(a.test_err),
            fmt_angle(a.angle_deg),
            fmt_f(a.lowest_snr_db),
            a.lowest_layer.clone(),
            fmt_f(schedule.lr(a.step)),
        ]);
        rows.push(r);
        for l in &a.per_layer {
            let mut r = prefix();
            r.extend([
                a.mode.as_str().into(),
                a.step.to_string(),
                l.layer.clone(),
                fmt_angle(l.angle_deg),
            ]);
            layers.push(r);
        }
    }
    (rows, layers)
}

/// One network of the angle experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AngleNet {
    /// Architecture.
    pub arch: Arch,
    /// Depth.
    pub depth: usize,
    /// Slope (layer-wise, hybrid).
    #[serde(default = "default_slope")]
    pub slope: f64,
    /// Peak learning rate (default: `train.lr`).
    #[serde(default)]
    pub lr: Option<f64>,
    /// Epochs (default: `train.epochs`).
    #[serde(default)]
    pub epochs: Option<usize>,
}

pub(crate) fn default_slope() -> f64 {
    0.2
}

/// The gradient-angle experiment (`experiments/revnet-fig4.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnglesConfig {
    /// Must be `angles`.
    pub experiment: String,
    /// The networks.
    pub nets: Vec<AngleNet>,
    /// Training modes (the angle is measured in each).
    pub modes: Vec<Source>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Everything else of each run (arch, depth, slope, mode, seed overridden).
    pub train: TrainConfig,
}

impl Default for AnglesConfig {
    fn default() -> Self {
        AnglesConfig {
            experiment: "angles".into(),
            nets: vec![
                AngleNet {
                    arch: Arch::Revnet,
                    depth: 6,
                    slope: 0.2,
                    lr: Some(0.01),
                    epochs: Some(10),
                },
                AngleNet {
                    arch: Arch::Hybrid,
                    depth: 6,
                    slope: 0.2,
                    lr: Some(0.05),
                    epochs: None,
                },
                AngleNet {
                    arch: Arch::Layerwise,
                    depth: 6,
                    slope: 0.2,
                    lr: None,
                    epochs: None,
                },
            ],
            modes: vec![Source::Reconstructed],
            seeds: vec![0],
            // The accuracy sweep's data and epochs (the hybrid overfits the single run's).
            train: TrainConfig {
                angle_every: 5,
                epochs: 4,
                data: ACCURACY_DATA.into(),
                // Conv init 0.5 x Kaiming, the recipe of the committed angle results.
                net: NetOptions {
                    init_scale: 0.5,
                    ..NetOptions::default()
                },
                ..TrainConfig::default()
            },
        }
    }
}

/// The result of one run of the angle experiment: its rows of `angles.csv`,
/// `angles_layers.csv` and `summary.csv` and its wall time (one JSON per run in `points/`,
/// what `--resume` reads). A diverged run keeps the probes it made before it stopped.
///
/// Point files written while `summary.csv` still had `seconds` (a 14-field `summary` with it
/// as the thirteenth field) still load: the field is moved into [`AngleResult::seconds`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "AngleResultFile")]
pub struct AngleResult {
    /// Position in [`AnglesConfig::runs`].
    pub index: usize,
    /// Its training config.
    pub config: TrainConfig,
    /// Its rows of `angles.csv`.
    pub rows: Vec<Vec<String>>,
    /// Its rows of `angles_layers.csv`.
    pub layers: Vec<Vec<String>>,
    /// Its row of `summary.csv` ([`ANGLE_SUMMARY_HEADER`]).
    pub summary: Vec<String>,
    /// Wall time of the run, seconds (NaN for a diverged run; its row of `timings.csv`).
    pub seconds: f64,
}

/// [`AngleResult`] as a point file holds it, in the current layout or the older one.
#[derive(Deserialize)]
struct AngleResultFile {
    index: usize,
    config: TrainConfig,
    rows: Vec<Vec<String>>,
    layers: Vec<Vec<String>>,
    summary: Vec<String>,
    #[serde(default)]
    seconds: Option<f64>,
}

/// Fields of a `summary.csv` row while it still had `seconds` (before `status`).
const OLD_SUMMARY_FIELDS: usize = 14;
/// Position of `seconds` in that row.
const OLD_SUMMARY_SECONDS: usize = 12;

impl From<AngleResultFile> for AngleResult {
    fn from(f: AngleResultFile) -> Self {
        let mut summary = f.summary;
        let seconds = super::seconds_of_point_file(
            f.seconds,
            &mut summary,
            OLD_SUMMARY_FIELDS,
            OLD_SUMMARY_SECONDS,
        );
        AngleResult {
            index: f.index,
            config: f.config,
            rows: f.rows,
            layers: f.layers,
            summary,
            seconds,
        }
    }
}

impl AngleResult {
    /// A stable, file-name-safe key.
    pub fn key(index: usize, c: &TrainConfig) -> String {
        format!(
            "{index:04}-{}-d{}-n{}-{}-s{}",
            c.arch,
            c.depth,
            c.slope,
            c.mode.as_str(),
            c.seed
        )
    }

    /// `ok` or `diverged at step N ...`.
    pub fn status(&self) -> &str {
        self.summary.last().map_or("", |s| s.as_str())
    }

    /// Its row of `timings.csv` ([`ANGLE_TIMINGS_HEADER`]).
    pub fn timing_row(&self) -> Vec<String> {
        let mut r: Vec<String> = self.summary.iter().take(5).cloned().collect();
        r.push(format!("{:.2}", self.seconds));
        r
    }
}

impl AnglesConfig {
    /// Read a TOML config.
    pub fn from_toml_file(path: &Path) -> Result<AnglesConfig> {
        read_toml(path)
    }

    /// The runs, in order.
    pub fn runs(&self) -> Vec<TrainConfig> {
        let mut v = Vec::new();
        for n in &self.nets {
            for &seed in &self.seeds {
                for &mode in &self.modes {
                    v.push(TrainConfig {
                        arch: n.arch,
                        depth: n.depth,
                        slope: n.slope,
                        mode,
                        seed,
                        lr: n.lr.unwrap_or(self.train.lr),
                        epochs: n.epochs.unwrap_or(self.train.epochs),
                        nested_depth: self.train.net.nested.then(|| {
                            let same = self.nets.iter().filter(|m| m.arch == n.arch);
                            same.map(|m| m.depth).max().unwrap_or(n.depth)
                        }),
                        ..self.train.clone()
                    });
                }
            }
        }
        v
    }

    /// Check every value.
    pub fn validate(&self) -> Result<()> {
        if self.experiment != "angles" {
            let got = format!("`{}`", self.experiment);
            return Err(Error::config("experiment (angles config)", "`angles`", got));
        }
        if self.nets.is_empty() || self.modes.is_empty() || self.seeds.is_empty() {
            return Err(Error::config(
                "nets, modes and seeds",
                "at least one value each",
                "an empty experiment",
            ));
        }
        if self.train.angle_every == 0 {
            return Err(Error::config(
                "train.angle_every (angle experiment)",
                ">= 1",
                "0",
            ));
        }
        crate::limits::check_distinct("modes", &self.modes)?;
        crate::limits::check_distinct("seeds", &self.seeds)?;
        self.runs().iter().try_for_each(|r| r.validate())
    }
}

/// Header of the angle experiment's `timings.csv`: the key columns of `summary.csv` and the
/// run's wall time (`seconds`, s; `NaN` for a diverged run), one row per run in run order.
pub const ANGLE_TIMINGS_HEADER: [&str; 6] = ["arch", "depth", "slope", "mode", "seed", "seconds"];

/// Header of the angle experiment's `summary.csv`. No timing column: the wall times go to
/// `timings.csv` ([`ANGLE_TIMINGS_HEADER`]), so that a rerun writes the same bytes.
pub const ANGLE_SUMMARY_HEADER: [&str; 13] = [
    "arch",
    "depth",
    "slope",
    "mode",
    "seed",
    "test_acc",
    "angle_start_deg",
    "angle_end_deg",
    "angle_max_deg",
    "lowest_snr_start_db",
    "lowest_snr_end_db",
    "epochs",
    "status",
];

/// Train one run of the angle experiment; a diverged run is a result (its probes so far are
/// lost with the run: the summary says where it stopped and which layer collapsed).
pub(crate) fn run_angle(index: usize, c: &TrainConfig, data: &DataSplit) -> Result<AngleResult> {
    let (outcome, status) = match train(c, data, &TrainOptions::default()) {
        Ok((_, o)) => (Some(o), "ok".to_string()),
        Err(Error::Diverged {
            step,
            diagnosis,
            layer,
        }) => (
            None,
            format!(
                "diverged at step {step} (SNR collapsed at `{}`): {diagnosis}",
                layer.unwrap_or_else(|| "?".into())
            ),
        ),
        Err(e) => return Err(e),
    };
    let angles: &[AngleRecord] = outcome.as_ref().map_or(&[], |o| &o.angles);
    let (rows, layers) = angle_rows(c, angles, data.train.len() / c.batch * c.epochs);
    let max = angles.iter().map(|a| a.angle_deg).fold(f64::NAN, f64::max);
    let (first, last) = (angles.first(), angles.last());
    let summary = vec![
        c.arch.to_string(),
        c.depth.to_string(),
        c.arch.slope_field(c.slope),
        c.mode.as_str().into(),
        c.seed.to_string(),
        fmt_f(
            outcome
                .as_ref()
                .map_or(1.0 / data.classes().max(1) as f64, |o| o.test_acc),
        ),
        fmt_angle(first.map_or(f64::NAN, |a| a.angle_deg)),
        fmt_angle(last.map_or(f64::NAN, |a| a.angle_deg)),
        fmt_angle(max),
        fmt_f(first.map_or(f64::NAN, |a| a.lowest_snr_db)),
        fmt_f(last.map_or(f64::NAN, |a| a.lowest_snr_db)),
        c.epochs.to_string(),
        status,
    ];
    Ok(AngleResult {
        index,
        config: c.clone(),
        rows,
        layers,
        summary,
        seconds: outcome.as_ref().map_or(f64::NAN, |o| o.seconds),
    })
}

/// Finished runs in `out/points` (checked against the manifest of the config).
pub(crate) fn read_points<C, R>(out: &Path, cfg: &C) -> Result<Vec<R>>
where
    C: PartialEq + serde::de::DeserializeOwned + serde::Serialize,
    R: serde::de::DeserializeOwned,
{
    let dir = out.join("points");
    let manifest = dir.join(MANIFEST);
    match std::fs::read_to_string(&manifest) {
        Ok(text) => {
            let old: C = crate::nets::from_json_lifting(&text, &[&["train"]])
                .map_err(|e| Error::data(manifest.display(), "a manifest (JSON)", e))?;
            if old != *cfg {
                let json = |c: &C| serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
                let differences = crate::experiments::config_differences(&json(&old), &json(cfg));
                return Err(crate::experiments::resumed_other_config(out, &differences));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&manifest, e)),
    }
    let mut done = Vec::new();
    for path in point_files(&dir)? {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        done.push(serde_json::from_str::<R>(&text).map_err(|e| {
            crate::experiments::damaged_point_file(&path, "a finished run (JSON)", e)
        })?);
    }
    Ok(done)
}

pub(crate) use crate::experiments::point_files;

/// Without `--resume`: remove the point files of an earlier run in `out/points`.
pub(crate) fn clear_points(out: &Path) -> Result<()> {
    let dir = out.join("points");
    if dir.is_dir() {
        for path in point_files(&dir)? {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

pub(crate) fn write_angle_csvs(out: &Path, results: &[AngleResult]) -> Result<()> {
    let mut sorted: Vec<&AngleResult> = results.iter().collect();
    sorted.sort_by_key(|r| r.index);
    let rows: Vec<Vec<String>> = sorted.iter().flat_map(|r| r.rows.clone()).collect();
    let layers: Vec<Vec<String>> = sorted.iter().flat_map(|r| r.layers.clone()).collect();
    let summary: Vec<Vec<String>> = sorted.iter().map(|r| r.summary.clone()).collect();
    let timings: Vec<Vec<String>> = sorted.iter().map(|r| r.timing_row()).collect();
    write_atomic(
        &out.join("timings.csv"),
        csv_text(&ANGLE_TIMINGS_HEADER, &timings)?.as_bytes(),
    )?;
    write_atomic(
        &out.join("angles.csv"),
        csv_text(&ANGLES_HEADER, &rows)?.as_bytes(),
    )?;
    write_atomic(
        &out.join("angles_layers.csv"),
        csv_text(&ANGLE_LAYERS_HEADER, &layers)?.as_bytes(),
    )?;
    write_atomic(
        &out.join("summary.csv"),
        csv_text(&ANGLE_SUMMARY_HEADER, &summary)?.as_bytes(),
    )
}

/// Run the angle experiment into `opts.out` (resumable run by run, shardable); returns the
/// results in run order.
pub fn run_angles(cfg: &AnglesConfig, opts: &SweepOptions) -> Result<Vec<AngleResult>> {
    cfg.validate()?;
    prepare_out(&opts.out)?;
    let start = Instant::now();
    let data = cfg.train.load_data()?;
    let runs = cfg.runs();
    let plan = |done: Vec<AngleResult>| {
        let todo: Vec<(usize, &TrainConfig)> = runs
            .iter()
            .enumerate()
            .filter(|(i, _)| opts.shard.is_none_or(|s| s.owns(*i)))
            .filter(|(i, r)| !done.iter().any(|d| d.index == *i && d.config == **r))
            .collect();
        let kept = done
            .into_iter()
            .filter(|d| runs.get(d.index) == Some(&d.config))
            .collect();
        (kept, todo)
    };
    let line = |&(_, r): &(usize, &TrainConfig), res: &AngleResult| {
        let status = if res.status() == "ok" {
            format!(
                "test acc {:.1}%, angle {} -> {} deg ({:.2} s)",
                100.0 * parse_f(&res.summary[5]).unwrap_or(f64::NAN),
                res.summary[6],
                res.summary[7],
                res.seconds
            )
        } else {
            res.status().to_string()
        };
        format!(
            "{} depth {} {} seed {}: {status}",
            r.arch,
            r.depth,
            r.mode.as_str(),
            r.seed
        )
    };
    let (mut results, total) = run_points(
        cfg,
        opts,
        plan,
        |&(i, r)| run_angle(i, r, &data),
        |&(i, r)| AngleResult::key(i, r),
        line,
        |all| write_angle_csvs(&opts.out, all),
    )?;
    results.sort_by_key(|r| r.index);
    write_angle_csvs(&opts.out, &results)?;
    let run_seconds = results
        .iter()
        .map(|r| {
            if r.seconds.is_finite() {
                r.seconds
            } else {
                0.0
            }
        })
        .sum::<f64>();
    write_run_json(
        &opts.out,
        "angles",
        serde_json::to_value(cfg).map_err(|e| Error::internal("JSON serialisation", e))?,
        &cfg.train,
        &data,
        sweep_fields(
            serde_json::json!({ "seeds": cfg.seeds, "angle": "acos(<g_stored, g_reconstructed> / (|g_stored| |g_reconstructed|)) over all parameters, same batch and weights; the run trains in `mode`" }),
            opts,
            results.len(),
            total,
            start,
            run_seconds,
        ),
    )?;
    Ok(results)
}

/// Table of the angle experiment: angle and lowest-layer SNR at the first and last probe.
pub fn angles_table(runs: &[AngleResult]) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "{:<10} {:>5} {:>6} {:>13} {:>4} {:>8} {:>11} {:>11} {:>11} {:>15}
",
        "arch",
        "depth",
        "slope",
        "mode",
        "seed",
        "test %",
        "angle0 deg",
        "angleN deg",
        "max deg",
        "SNR0 / SNRN dB"
    );
    for r in runs {
        let v = &r.summary;
        let f = |i: usize| parse_f(&v[i]).unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "{:<10} {:>5} {:>6} {:>13} {:>4} {:>8.1} {:>11} {:>11} {:>11} {:>15}",
            v[0],
            v[1],
            v[2],
            v[3],
            v[4],
            100.0 * f(5),
            v[6],
            v[7],
            v[8],
            format!("{} / {}", short(f(9)), short(f(10)))
        );
        if r.status() != "ok" {
            let _ = writeln!(s, "{:<10} {}", v[0], r.status());
        }
    }
    s
}

/// An angle in degrees for result files: 4 significant digits in scientific notation (the
/// angles of exact-ish reconstructions are far below 1e-4 degrees).
pub fn fmt_angle(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3e}")
    } else {
        fmt_f(v)
    }
}

pub(crate) fn short(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        fmt_f(v)
    }
}
