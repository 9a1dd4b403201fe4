//! The point files of an output directory (`points/`: the manifest and one JSON file per
//! finished point) and the tables derived from them (`snr_sweep.csv`, `summary.csv`).

use super::{write_atomic, PointResult, SweepConfig, MANIFEST, SUMMARY_HEADER, TRACE_HEADER};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, PartialEq)]
pub(super) struct Manifest {
    pub(super) config: SweepConfig,
}

pub(super) fn points_dir(out: &Path) -> PathBuf {
    out.join("points")
}

/// Create `out` (and `out/points`) and check that it is writable, before anything else is done.
pub fn prepare_out(out: &Path) -> Result<()> {
    let dir = points_dir(out);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"").map_err(|e| Error::io(&probe, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))?;
    Ok(())
}

/// Read the finished points in `out` (with their manifest config).
pub fn read_points(out: &Path) -> Result<(Option<SweepConfig>, Vec<PointResult>)> {
    let dir = points_dir(out);
    let manifest_path = dir.join(MANIFEST);
    let config = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => Some(
            crate::nets::from_json_lifting::<Manifest>(&text, &[&["config"]])
                .map_err(|e| Error::data(manifest_path.display(), "a snr-sweep manifest", e))?
                .config,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&manifest_path, e)),
    };
    let mut results = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((config, results)),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == MANIFEST || !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let r: PointResult = serde_json::from_str(&text).map_err(|e| {
            crate::experiments::damaged_point_file(&path, "a snr-sweep point file", e)
        })?;
        // A point written before a column was added to `snr_sweep.csv` is computed again
        // rather than mixed with lines of the current columns.
        let columns = super::point::TRACE_HEADER.split(',').count();
        if r.trace_lines
            .iter()
            .all(|l| l.split(',').count() == columns)
        {
            results.push(r);
        }
    }
    results.sort_by_key(|r| r.point.index);
    Ok((config, results))
}

/// Remove the point files (and manifest) of an earlier run in `out`.
pub(super) fn clear_points(out: &Path) -> Result<()> {
    let dir = points_dir(out);
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

pub(super) fn write_point(out: &Path, r: &PointResult) -> Result<()> {
    let path = points_dir(out).join(format!("{}.json", r.point.key()));
    let text = serde_json::to_string(r).map_err(|e| Error::internal("JSON serialisation", e))?;
    write_atomic(&path, text.as_bytes())
}

/// Write `snr_sweep.csv` and `summary.csv` from `results` (grid order).
pub fn write_tables(out: &Path, results: &[PointResult]) -> Result<()> {
    let mut trace = String::from(TRACE_HEADER);
    trace.push('\n');
    let mut summary = String::from(SUMMARY_HEADER);
    summary.push('\n');
    for r in results {
        for l in &r.trace_lines {
            trace.push_str(l);
            trace.push('\n');
        }
        summary.push_str(&r.summary_line);
        summary.push('\n');
    }
    write_atomic(&out.join("snr_sweep.csv"), trace.as_bytes())?;
    write_atomic(&out.join("laws.csv"), super::laws_table(results).as_bytes())?;
    write_atomic(&out.join("summary.csv"), summary.as_bytes())
}
