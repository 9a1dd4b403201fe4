//! `--resume` of a sweep: which finished points a resumed config keeps, and the grid it may
//! extend ([`resumable_points`]).

use super::{points_dir, read_points, write_point, Point, PointResult, SweepConfig};
use crate::error::{Error, Result};
use crate::experiments::snr_sweep::SweepResults;
use std::path::Path;

/// The grid keys of a sweep config: a `--resume` may add values to them
/// ([`resumable_points`]).
pub const GRID_KEYS: [&str; 7] = [
    "archs", "depths", "slopes", "eps_i", "widths", "dtypes", "seeds",
];

/// Whether two points are the same computation (every field but the grid position; an
/// architecture without a leaky ReLU ignores the slope, which is the grid's first).
fn same_point(a: &Point, b: &Point) -> bool {
    let slope = if a.arch.has_slope() { a.slope } else { b.slope };
    Point {
        index: b.index,
        slope,
        ..a.clone()
    } == *b
}

/// The finished points in `out` that a `--resume` of `cfg` keeps, as results of `cfg`, and
/// whether `cfg` extends the finished run's grid. A config that differs from the finished
/// run's only by values added to grid lists ([`GRID_KEYS`]: more depths, slopes, seeds...)
/// extends it: the finished points are kept, placed at their positions in the new grid, and
/// only the new ones are computed (with nested depths, the deepest depth must stay the same:
/// it sets every network's weights). [`Error::Data`] (bad input: exit 2) when they were
/// produced by another config, naming the keys that differ.
pub fn resumable_points(out: &Path, cfg: &SweepConfig) -> Result<SweepResults> {
    Ok(resumable_points_extending(out, cfg)?.0)
}

pub(super) fn resumable_points_extending(
    out: &Path,
    cfg: &SweepConfig,
) -> Result<(SweepResults, bool)> {
    let (old_config, mut old) = read_points(out)?;
    let mut extended = false;
    if let Some(old_cfg) = &old_config {
        if old_cfg != cfg {
            let json = |c: &SweepConfig| {
                serde_json::to_value(c).map_err(|e| Error::internal("JSON serialisation", e))
            };
            let (a, b) = (json(old_cfg)?, json(cfg)?);
            match crate::experiments::resume_extends(&a, &b, &GRID_KEYS) {
                Ok(()) => {
                    let deepest = |c: &SweepConfig| c.depths.iter().copied().max();
                    if cfg.net.nested && deepest(old_cfg) != deepest(cfg) {
                        return Err(crate::experiments::resumed_other_config(
                            out,
                            &[format!(
                                "the deepest of the nested depths: {:?} -> {:?} (nested networks are prefixes of the deepest one, whose weights it sets)",
                                deepest(old_cfg),
                                deepest(cfg)
                            )],
                        ));
                    }
                    let grid = cfg.grid();
                    old = old
                        .into_iter()
                        .filter_map(|mut r| {
                            let p = grid.iter().find(|p| same_point(p, &r.point))?;
                            r.point = p.clone();
                            Some(r)
                        })
                        .collect();
                    old.sort_by_key(|r| r.point.index);
                    // A resume interrupted while re-keying left a point under both names.
                    old.dedup_by_key(|r| r.point.index);
                    extended = true;
                }
                Err(differences) => {
                    return Err(crate::experiments::resumed_other_config(out, &differences))
                }
            }
        }
    }
    Ok((
        SweepResults {
            config: cfg.clone(),
            points: old,
        },
        extended,
    ))
}

/// After a `--resume` that extended the grid: the kept points under their keys in the new
/// grid (written first, then the old names removed: an interruption loses nothing).
pub(super) fn rekey_points(out: &Path, kept: &[PointResult]) -> Result<()> {
    for r in kept {
        write_point(out, r)?;
    }
    let keys: Vec<String> = kept
        .iter()
        .map(|r| format!("{}.json", r.point.key()))
        .collect();
    crate::experiments::retain_point_files(&points_dir(out), &keys)
}
