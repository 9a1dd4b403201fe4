//! Experiments: each one a serde config -> run -> results written as CSV/JSON.
//!
//! Data flow one way: config -> experiment -> results ([`crate::results`]) -> figures
//! ([`crate::plot`]). The families of the figures (`alpha`, `trace`, `scaling`, `precision`,
//! `bn_eps`, `memory_table`, `tradeoff`) each hold a config, a run and serde results; [`figures`]
//! drives them (configs by kind, the result cache, provenance). `snr_sweep`, `memory`, `bench`
//! and `training` (with its angle experiment) are the tools' own experiments.

pub mod alpha;
pub mod anchor_plan;
pub mod anchored;
pub mod anchors;
pub mod bench;
pub mod bn_eps;
pub mod depth_law;
pub mod figures;
pub mod memory;
pub mod memory_table;
pub mod net_settings;
pub mod precision;
pub mod scaling;
pub mod snr_sweep;
pub mod trace;
pub mod tradeoff;
pub mod training;

/// The error of a `--resume` into `out` whose finished results were produced by another config
/// ([`crate::Error::Data`]: bad input, exit 2), naming every key that differs (`differences`,
/// from [`config_differences`]) with its old and new value.
pub(crate) fn resumed_other_config(out: &std::path::Path, differences: &[String]) -> crate::Error {
    let keys = if differences.is_empty() {
        String::new()
    } else {
        format!(" (it differs in {})", differences.join("; "))
    };
    crate::Error::data(
        out.display(),
        "results of this config (for --resume)",
        format!("results of a different config{keys}; use another --out or drop --resume"),
    )
}

pub use crate::results::diff::config_differences;

/// Whether a `--resume` with config `new` may extend the finished results of config `old`
/// (the caller has found them different): they differ only in the grid keys `grid` (dotted
/// paths), each a list whose old values are all among the new ones. `Err`: the keys that
/// differ otherwise (for [`resumed_other_config`]).
pub(crate) fn resume_extends(
    old: &serde_json::Value,
    new: &serde_json::Value,
    grid: &[&str],
) -> std::result::Result<(), Vec<String>> {
    let differences = config_differences(old, new);
    let lookup = |v: &serde_json::Value, path: &str| {
        path.split('.')
            .try_fold(v, |v, k| v.get(k))
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    let mut blocking = Vec::new();
    for key in grid {
        let (a, b) = (lookup(old, key), lookup(new, key));
        if a == b {
            continue;
        }
        let superset = match (&a, &b) {
            (serde_json::Value::Array(a), serde_json::Value::Array(b)) => {
                a.iter().all(|x| b.contains(x))
            }
            _ => false,
        };
        if !superset {
            blocking.push(format!(
                "{key}: {a} -> {b} (a resumed grid may only add values)"
            ));
        }
    }
    blocking.extend(differences.into_iter().filter(|d| {
        !grid
            .iter()
            .any(|g| d.starts_with(&format!("{g}: ")) || d.starts_with(&format!("{g}.")))
    }));
    if blocking.is_empty() {
        Ok(())
    } else {
        Err(blocking)
    }
}

/// The manifest of a resumable run's `points/` directory (its config).
pub(crate) const MANIFEST: &str = "manifest.json";

/// The point files (`*.json` but the manifest and hidden files) of `dir`, sorted by name.
pub(crate) fn point_files(dir: &std::path::Path) -> crate::Result<Vec<std::path::PathBuf>> {
    let mut v = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| crate::Error::io(dir, e))? {
        let path = entry.map_err(|e| crate::Error::io(dir, e))?.path();
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name != MANIFEST && !name.starts_with('.') && name.ends_with(".json") {
            v.push(path);
        }
    }
    v.sort();
    Ok(v)
}

/// After a resume moved finished points to new keys (written first): remove the point files of
/// `dir` whose names are not in `keep`, so that an interruption before this loses nothing.
pub(crate) fn retain_point_files(dir: &std::path::Path, keep: &[String]) -> crate::Result<()> {
    for path in point_files(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !keep.contains(&name) {
            std::fs::remove_file(&path).map_err(|e| crate::Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// A finished point of a resumable experiment: read from `file` when it holds one, else
/// computed and written there atomically (`file` `None`: computed only). A computed point goes
/// through its JSON text either way, so that a resumed run returns the same values (the text
/// keeps each float to within its last digit). Returns the point and whether it was read.
pub(crate) fn cached_point<T: serde::Serialize + serde::de::DeserializeOwned>(
    file: Option<&std::path::Path>,
    compute: impl FnOnce() -> crate::Result<T>,
) -> crate::Result<(T, bool)> {
    if let Some(f) = file {
        if let Some(v) = std::fs::read_to_string(f)
            .ok()
            .and_then(|t| serde_json::from_str::<T>(&t).ok())
        {
            return Ok((v, true));
        }
    }
    let v = compute()?;
    let text =
        serde_json::to_string(&v).map_err(|e| crate::Error::internal("JSON serialisation", e))?;
    let v: T =
        serde_json::from_str(&text).map_err(|e| crate::Error::internal("JSON point file", e))?;
    if let Some(f) = file {
        crate::util::write_atomic(f, text.as_bytes())?;
    }
    Ok((v, false))
}

/// The error of a point file that does not parse (`what` it should be), with what to do.
pub(crate) fn damaged_point_file(
    path: &std::path::Path,
    what: &str,
    e: impl std::fmt::Display,
) -> crate::Error {
    crate::Error::data(
        path.display(),
        what,
        format!("a damaged file ({e}); delete it and rerun with --resume: only that point is computed again"),
    )
}
