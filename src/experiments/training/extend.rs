//! `--resume` of an accuracy sweep whose config adds values to its grid (more architectures,
//! modes, seeds, depths or slopes, nothing else changed): the finished runs are kept, moved to
//! their positions in the new grid, and only the new runs are trained.

use super::{accuracy_col, point_files, to_json, AccuracyConfig, AccuracyResult, MANIFEST};
use crate::error::{Error, Result};
use crate::util::write_atomic;
use std::path::Path;

/// The grid keys of an accuracy config: a `--resume` may add values to them.
pub const ACCURACY_GRID_KEYS: [&str; 6] = [
    "archs",
    "modes",
    "anchor_targets",
    "seeds",
    "depth_sweep.depths",
    "slope_sweep.slopes",
];

/// The finished runs in `out` as results of `cfg`'s grid when `cfg` extends the grid of the
/// config they were run with (positions and `sweep` labels of the new grid; runs the new grid
/// lacks are dropped). `None` when there is nothing to extend: no manifest, the same config, or
/// one that differs otherwise (the resume's own check names those keys). Read-only.
pub fn extended_results(out: &Path, cfg: &AccuracyConfig) -> Result<Option<Vec<AccuracyResult>>> {
    let dir = out.join("points");
    let Ok(text) = std::fs::read_to_string(dir.join(MANIFEST)) else {
        return Ok(None);
    };
    let Ok(old) = crate::nets::from_json_lifting::<AccuracyConfig>(&text, &[&["train"]]) else {
        return Ok(None);
    };
    let json = |c: &AccuracyConfig| {
        serde_json::to_value(c).map_err(|e| Error::internal("JSON serialisation", e))
    };
    if old == *cfg
        || crate::experiments::resume_extends(&json(&old)?, &json(cfg)?, &ACCURACY_GRID_KEYS)
            .is_err()
    {
        return Ok(None);
    }
    let grid = cfg.grid();
    let sweep = accuracy_col("sweep");
    let mut kept = Vec::new();
    for path in point_files(&dir)? {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mut r: AccuracyResult = serde_json::from_str(&text).map_err(|e| {
            crate::experiments::damaged_point_file(&path, "a finished run (JSON)", e)
        })?;
        let same = |p: &&super::AccuracyPoint| {
            (p.arch, p.depth, p.slope, p.mode, p.min_snr_db, p.seed)
                == (
                    r.point.arch,
                    r.point.depth,
                    r.point.slope,
                    r.point.mode,
                    r.point.min_snr_db,
                    r.point.seed,
                )
        };
        if let Some(p) = grid.iter().find(same) {
            r.point = p.clone();
            if let Some(field) = r.row.get_mut(sweep) {
                *field = p.sweep.clone();
            }
            kept.push(r);
        }
    }
    Ok(Some(kept))
}

/// Before a `--resume` of `cfg` in `out`: when `cfg` extends the finished runs' grid
/// ([`extended_results`]), rewrite their point files under their keys in the new grid, remove
/// the old names, and write `cfg`'s manifest (in that order: an interruption loses nothing,
/// and the next resume extends again). Returns whether it did.
pub(super) fn extend_accuracy_grid(out: &Path, cfg: &AccuracyConfig) -> Result<bool> {
    let Some(kept) = extended_results(out, cfg)? else {
        return Ok(false);
    };
    let dir = out.join("points");
    let names: Vec<String> = kept
        .iter()
        .map(|r| format!("{}.json", r.point.key()))
        .collect();
    for (r, name) in kept.iter().zip(&names) {
        write_atomic(&dir.join(name), to_json(r)?.as_bytes())?;
    }
    crate::experiments::retain_point_files(&dir, &names)?;
    write_atomic(&dir.join(MANIFEST), to_json(cfg)?.as_bytes())?;
    Ok(true)
}
