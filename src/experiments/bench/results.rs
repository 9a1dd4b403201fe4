//! The results of a `bench` run, typed: [`BenchResults`] is exactly what `run.json` holds, and
//! `bench.csv` and `report`'s table are derived from it.
//!
//! Conventions: `rows` are in the order of `configs`, each config's rows depth by depth and, at
//! each depth, in the order of [`BenchConfig::modes_to_run`]; seconds are wall-clock seconds;
//! non-finite floats of a row (`ratio_to_stored` without a stored mode) are `null` in the file
//! and NaN when read back.

use super::{csv_line, format_table, BenchConfig, BenchRow, CSV_HEADER};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::util::write_atomic;
use candle_core::Device;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::Path;

/// The `experiment` field of a training-step benchmark's `run.json` (`bench --conv-shapes`
/// writes another kind of run).
pub const EXPERIMENT: &str = "bench";

/// The conventions of the rows, as `run.json` states them (`notes`).
pub const NOTES: &str = "step = Network::step (gradients, the mode's source and rebuild) then train::Sgd::step; modes interleaved step by step, each training its own copy of the weights; median of the timed steps; peak_bytes = peak live heap bytes during a step above those live at its start (counting allocator); conv_gflops counts forward + dX + dW of every convolution (the stem without dX), recomputations not counted";

/// The thread variables of the environment (`env` of `run.json`; unset: `null`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadEnv {
    /// `RAYON_NUM_THREADS`.
    #[serde(rename = "RAYON_NUM_THREADS")]
    pub rayon_num_threads: Option<String>,
    /// `CANDLE_NUM_THREADS`.
    #[serde(rename = "CANDLE_NUM_THREADS")]
    pub candle_num_threads: Option<String>,
}

impl ThreadEnv {
    /// The variables as they are now (the benchmark sets both before its first step).
    pub fn current() -> ThreadEnv {
        ThreadEnv {
            rayon_num_threads: std::env::var("RAYON_NUM_THREADS").ok(),
            candle_num_threads: std::env::var("CANDLE_NUM_THREADS").ok(),
        }
    }
}

/// `/proc/loadavg` now, trimmed (empty where there is none).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A float of a row that serde_json writes as `null` when it is not finite: `null` reads back
/// as NaN.
pub(crate) fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Everything a `bench` run produced: its configs (one per architecture), its rows, the modes
/// skipped, its time, the environment it ran in and its provenance. Serialised (through
/// [`BenchResults::json`]) it is the run's `run.json`; [`BenchResults::read`] reads it back.
/// Fields are in the order of the file; missing fields of older files read as their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchResults {
    /// [`EXPERIMENT`].
    pub experiment: String,
    /// The source revision ([`crate::provenance::git_revision`]).
    pub git_revision: String,
    /// The backend of the first config.
    pub backend: Backend,
    /// The device's name ([`crate::device::device_name`]).
    pub device: String,
    /// The device's description ([`crate::device::device_json`]).
    pub device_info: serde_json::Value,
    /// The configs, one per architecture, in the order they ran.
    pub configs: Vec<BenchConfig>,
    /// Each config's initialisation ([`crate::experiments::snr_sweep::init_record`]).
    pub init: Vec<serde_json::Value>,
    /// Threads of candle's CPU kernels when the run ended.
    pub candle_threads: usize,
    /// The thread variables when the run ended.
    pub env: ThreadEnv,
    /// Logical CPUs (`std::thread::available_parallelism`; 0 unknown).
    pub available_parallelism: usize,
    /// `/proc/loadavg` when the run ended.
    pub loadavg_at_end: String,
    /// Wall time of the whole run, seconds.
    pub total_s: f64,
    /// Each config's one-line description ([`BenchConfig::describe`]).
    pub workloads: Vec<String>,
    /// The notes of the modes skipped ([`BenchConfig::skip_note`]), in config order.
    pub skipped: Vec<String>,
    /// The rows, in config order (see the module's conventions).
    pub rows: Vec<BenchRow>,
    /// [`NOTES`].
    pub notes: String,
    /// What produced the run ([`crate::provenance::record`]).
    pub provenance: serde_json::Value,
}

impl BenchResults {
    /// The results of `rows`, timed under `configs` (in that order) on `device` in `total_s`
    /// seconds, with the environment as it is now (call it when the run ends) and this
    /// process's provenance.
    pub fn new(
        configs: Vec<BenchConfig>,
        rows: Vec<BenchRow>,
        total_s: f64,
        device: &Device,
    ) -> BenchResults {
        let backend = configs.first().map(|c| c.backend).unwrap_or_default();
        BenchResults {
            experiment: EXPERIMENT.into(),
            git_revision: crate::provenance::git_revision(),
            backend,
            device: crate::device::device_name(device),
            device_info: crate::device::device_json(device, backend),
            init: configs
                .iter()
                .map(|c| crate::experiments::snr_sweep::init_record(&c.net))
                .collect(),
            candle_threads: candle_core::utils::get_num_threads(),
            env: ThreadEnv::current(),
            available_parallelism: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            loadavg_at_end: loadavg(),
            total_s,
            workloads: configs.iter().map(|c| c.describe()).collect(),
            skipped: configs.iter().filter_map(|c| c.skip_note()).collect(),
            rows,
            notes: NOTES.into(),
            provenance: crate::provenance::record(),
            configs,
        }
    }

    /// Each config with its rows. Errors ([`Error::Data`]) when the rows do not follow the
    /// configs (a config's rows are `depths x modes_to_run` of its architecture).
    pub fn runs(&self) -> Result<Vec<(&BenchConfig, &[BenchRow])>> {
        let mut rest = &self.rows[..];
        let mut out = Vec::with_capacity(self.configs.len());
        for cfg in &self.configs {
            let n = cfg.depths.len() * cfg.modes_to_run().len();
            if rest.len() < n || rest[..n].iter().any(|r| r.arch != cfg.arch) {
                return Err(self.mismatch());
            }
            let (mine, tail) = rest.split_at(n);
            out.push((cfg, mine));
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(self.mismatch());
        }
        Ok(out)
    }

    fn mismatch(&self) -> Error {
        Error::data(
            "bench results",
            format!(
                "the rows of the {} config(s) (each config's depths x modes, in order)",
                self.configs.len()
            ),
            format!("{} row(s) that do not follow them", self.rows.len()),
        )
    }

    /// `bench.csv`: one header, then every row ([`csv_line`] under its config).
    pub fn csv(&self) -> Result<String> {
        let mut s = format!("{CSV_HEADER}\n");
        // Results read from a file were checked by `read`; rows that do not follow their
        // configs here are the bench's own output, a bug.
        let runs = self
            .runs()
            .map_err(|e| Error::internal("bench results to write", e))?;
        for (cfg, rows) in runs {
            for r in rows {
                s.push_str(&csv_line(cfg, r));
                s.push('\n');
            }
        }
        Ok(s)
    }

    /// `run.json`: these results as pretty JSON (keys sorted, as serde_json's maps keep them).
    pub fn json(&self) -> Result<String> {
        let v = serde_json::to_value(self).map_err(|e| Error::internal("JSON serialisation", e))?;
        serde_json::to_string_pretty(&v).map_err(|e| Error::internal("JSON serialisation", e))
    }

    /// Write `bench.csv`, then `run.json`, into `dir` (each atomically).
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join("bench.csv"), self.csv()?.as_bytes())?;
        write_atomic(&dir.join("run.json"), self.json()?.as_bytes())
    }

    /// Read the results of the `bench` run in `dir` from its `run.json`. Errors: the file is
    /// missing or unreadable ([`Error::Io`]), not JSON, not a training-step benchmark's (e.g.
    /// `bench --conv-shapes`), or its rows do not follow its configs ([`Error::Data`]).
    pub fn read(dir: &Path) -> Result<BenchResults> {
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::data(path.display(), "JSON", e))?;
        let experiment = v.get("experiment").and_then(|e| e.as_str());
        if experiment != Some(EXPERIMENT) {
            return Err(Error::data(
                path.display(),
                format!("a bench run (experiment {EXPERIMENT})"),
                format!("experiment {}", experiment.unwrap_or("unset")),
            ));
        }
        let r: BenchResults = serde_json::from_value(v)
            .map_err(|e| Error::data(path.display(), "bench results", e))?;
        r.runs()?;
        Ok(r)
    }

    /// The tables the run printed: per config, its description, its skip note and its rows
    /// ([`format_table`]).
    pub fn table(&self) -> Result<String> {
        let mut s = String::new();
        for (cfg, rows) in self.runs()? {
            s.push_str(&cfg.describe());
            s.push('\n');
            if let Some(n) = cfg.skip_note() {
                s.push_str(&format!("note: {n}\n"));
            }
            s.push_str(&format_table(rows));
        }
        Ok(s)
    }
}
