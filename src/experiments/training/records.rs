//! Typed readers of the `train` binary's output, what the figures (`fig12`, `fig15`,
//! `revnet-fig4`) read: [`RunInfo`] from `run.json`, [`AccuracyRecord`] rows of `accuracy.csv`
//! and [`AngleRecord`] rows of `angles.csv`. Unknown fields and columns are ignored (the files
//! hold more than the figures need); a missing column the figures need, or a value that does
//! not parse, is an error naming the file, the row and the column. Fields are read trimmed.

use crate::error::{Error, Result};
use crate::results::text::parse_f;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use std::path::Path;

/// The `run.json` fields the figures read (`null` reads as absent).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunInfo {
    /// Git revision of the run.
    #[serde(default)]
    pub git_revision: Option<String>,
    /// Storage dtype.
    #[serde(default)]
    pub dtype: Option<String>,
    /// Device name.
    #[serde(default)]
    pub device: Option<String>,
    /// Seeds of the sweep (as written: a list, or a single value).
    #[serde(default)]
    pub seeds: Option<serde_json::Value>,
    /// The config as written; its text is hashed into the caption's config key.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// The data set.
    #[serde(default)]
    pub data: Option<RunData>,
    /// Initialisation: its one-line description. `run.json` writes `init` as a map
    /// (`description`, `init_scale`, `gamma_init`; what `train` writes since the init became
    /// configurable); older files wrote the line itself. Both read.
    #[serde(default, deserialize_with = "init_text")]
    pub init: Option<String>,
}

/// `init` of `run.json`: a string as it is, a map's `description` (or, without one, the map as
/// compact JSON), `null` as absent.
fn init_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Object(m)) => Some(match m.get("description") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => serde_json::Value::Object(m).to_string(),
        }),
        Some(other) => Some(other.to_string()),
    })
}

/// The data part of `run.json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunData {
    /// What the data set is.
    #[serde(default)]
    pub source: Option<String>,
    /// Number of classes.
    #[serde(default)]
    pub classes: Option<u64>,
}

impl RunInfo {
    /// The seeds as text: a string as it is, anything else as compact JSON.
    pub fn seeds_text(&self) -> Option<String> {
        self.seeds
            .as_ref()
            .filter(|v| !v.is_null())
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    }

    /// The first 8 hex digits of the FNV-1a hash of the config's compact JSON.
    pub fn config_key(&self) -> Option<String> {
        self.config.as_ref().map(|c| {
            let h = crate::results::hash::fnv1a64(c.to_string().as_bytes());
            format!("{:08x}", h >> 32)
        })
    }
}

/// A float written by [`crate::results::text::fmt_f`] or `fmt_f_exact` (`inf`, `nan` included).
fn float_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    let s = String::deserialize(d)?;
    parse_f(&s).map_err(serde::de::Error::custom)
}

/// One row of `accuracy.csv`: a trained network's test accuracy.
#[derive(Debug, Clone, Deserialize)]
pub struct AccuracyRecord {
    /// Architecture name.
    pub arch: String,
    /// Depth.
    pub depth: usize,
    /// Negative slope.
    #[serde(deserialize_with = "float_text")]
    pub slope: f64,
    /// `stored` or `reconstructed`.
    pub mode: String,
    /// Seed.
    pub seed: u64,
    /// Test accuracy (fraction; `nan` for a diverged run in older files).
    #[serde(deserialize_with = "float_text")]
    pub test_acc: f64,
    /// Which sweeps the point belongs to (`depth`, `slope`, `depth+slope`).
    pub sweep: String,
    /// `ok`, or why the run stopped.
    pub status: String,
    /// Steps run (as written).
    #[serde(default)]
    pub steps: String,
    /// Layer of the first non-finite activation of a diverged run.
    #[serde(default)]
    pub collapse_layer: String,
}

/// Columns [`AccuracyRecord`] needs.
pub const ACCURACY_COLUMNS: [&str; 8] = [
    "arch", "depth", "slope", "mode", "seed", "test_acc", "sweep", "status",
];

/// One row of `angles.csv`: a probe of the gradient angle during training.
#[derive(Debug, Clone, Deserialize)]
pub struct AngleRecord {
    /// Architecture name.
    pub arch: String,
    /// Depth, as written (a label).
    pub depth: String,
    /// Negative slope, as written (a label).
    pub slope: String,
    /// Seed, as written (a label).
    pub seed: String,
    /// Training step of the probe.
    pub step: usize,
    /// `stored` or `reconstructed`.
    pub mode: String,
    /// Training loss.
    #[serde(deserialize_with = "float_text")]
    pub loss: f64,
    /// Training error.
    #[serde(deserialize_with = "float_text")]
    pub train_err: f64,
    /// Test error.
    #[serde(deserialize_with = "float_text")]
    pub test_err: f64,
    /// Angle between the stored and reconstructed gradients, degrees.
    #[serde(deserialize_with = "float_text")]
    pub angle_deg: f64,
}

/// Columns [`AngleRecord`] needs.
pub const ANGLE_COLUMNS: [&str; 10] = [
    "arch",
    "depth",
    "slope",
    "seed",
    "step",
    "mode",
    "loss",
    "train_err",
    "test_err",
    "angle_deg",
];

/// A file of the run that does not parse: an I/O error (`InvalidData`) naming it.
fn malformed(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed result file: {what}"),
        ),
    )
}

/// Read `run.json` (the caller checks that it exists).
pub fn read_run_info(path: &Path) -> Result<RunInfo> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| malformed(path, e))
}

/// Read the rows of a CSV (`#` lines are comments) whose header has every `need`ed column.
pub fn read_records<T: DeserializeOwned>(path: &Path, need: &[&str]) -> Result<Vec<T>> {
    let mut rdr = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| malformed(path, e))?;
    let header = rdr.headers().map_err(|e| malformed(path, e))?.clone();
    if let Some(missing) = need.iter().find(|n| !header.iter().any(|h| h == **n)) {
        return Err(malformed(
            path,
            format!(
                "no `{missing}` column (header: {})",
                header.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| malformed(path, e))?;
        let row = rec.deserialize::<T>(Some(&header)).map_err(|e| {
            let field = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.field(),
                _ => None,
            };
            match field {
                Some(f) => {
                    let name = header.get(f as usize).unwrap_or("?");
                    let value = rec.get(f as usize).unwrap_or("");
                    malformed(
                        path,
                        format!("row {line}: `{name}` = `{value}` is not valid"),
                    )
                }
                None => malformed(path, format!("row {line}: {e}")),
            }
        })?;
        rows.push(row);
    }
    Ok(rows)
}
