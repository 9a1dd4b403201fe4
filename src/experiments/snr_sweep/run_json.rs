//! `run.json` of a sweep: what produced the results ([`write_run_json`], appended to on a
//! `--resume`), with the records of the initialisation and the topology that other tools'
//! `run.json` files share ([`init_record`], [`topology_record`]).

use super::{write_atomic, SweepConfig};
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::nets::NetOptions;
use std::path::Path;

/// `run.json`: what produced the results (configuration, conventions, [`crate::provenance`],
/// and `extra`: the run's counts and timings).
pub fn write_run_json(out: &Path, cfg: &SweepConfig, extra: serde_json::Value) -> Result<()> {
    write_run_json_resumable(out, cfg, extra, false)
}

/// [`write_run_json`]; with `resume`, an existing `run.json` of the same configuration keeps
/// its original fields (provenance, timings, counts): this invocation is appended to its
/// `resumes` list instead (its provenance and `extra`), and only `points` is updated.
pub fn write_run_json_resumable(
    out: &Path,
    cfg: &SweepConfig,
    extra: serde_json::Value,
    resume: bool,
) -> Result<()> {
    let path = out.join("run.json");
    if resume {
        let old = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .filter(|v| {
                v.get("config")
                    .and_then(|c| serde_json::from_value::<SweepConfig>(c.clone()).ok())
                    .is_some_and(|c| c == *cfg)
            });
        if let Some(mut v) = old {
            let mut entry = serde_json::json!({ "provenance": crate::provenance::record() });
            if let (Some(obj), serde_json::Value::Object(extra)) =
                (entry.as_object_mut(), extra.clone())
            {
                obj.extend(extra);
            }
            if let Some(obj) = v.as_object_mut() {
                if let Some(points) = extra.get("points") {
                    obj.insert("points".into(), points.clone());
                }
                match obj.get_mut("resumes").and_then(|r| r.as_array_mut()) {
                    Some(list) => list.push(entry),
                    None => {
                        obj.insert("resumes".into(), serde_json::json!([entry]));
                    }
                }
            }
            let text = serde_json::to_string_pretty(&v)
                .map_err(|e| Error::internal("JSON serialisation", e))?;
            return write_atomic(&path, text.as_bytes());
        }
    }
    let mut v = run_record("snr-sweep", cfg);
    v["input"] = serde_json::json!(format!(
        "unit Gaussian batch of {} channels from the point's seed",
        cfg.net.in_channels
    ));
    v["conventions"] = serde_json::json!("snr_db vs stored activations in the same dtype; snr_db_f64 vs an f64 shadow with the same weights; inf = exact");
    write_record(&path, v, extra)
}

/// The fields every `run.json` of `snr-sweep` (the sweep, `plan`, `trace`) starts from: the
/// tool, crate version, git revision, device (its name when it opens), backend, device record,
/// the configuration, its initialisation and topology.
pub fn run_record(tool: &str, cfg: &SweepConfig) -> serde_json::Value {
    let device = cfg
        .device
        .open()
        .map(|d| device_name(&d))
        .unwrap_or_else(|_| cfg.device.to_string());
    serde_json::json!({
        "tool": tool,
        "crate_version": env!("CARGO_PKG_VERSION"),
        "git_revision": crate::util::git_revision(),
        "device": device,
        "backend": cfg.backend.as_str(),
        "device_info": crate::device::device_record(cfg.device, cfg.backend),
        "config": cfg,
        "init": init_record(&cfg.net),
        "topology": topology_record(&cfg.net),
    })
}

/// Write `v` with the fields of `extra` (an object) and [`crate::provenance`] to `path`,
/// atomically, as pretty JSON.
pub fn write_record(path: &Path, mut v: serde_json::Value, extra: serde_json::Value) -> Result<()> {
    if let (Some(obj), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.extend(extra);
    }
    crate::provenance::attach(&mut v);
    let text =
        serde_json::to_string_pretty(&v).map_err(|e| Error::internal("JSON serialisation", e))?;
    write_atomic(path, text.as_bytes())
}

/// The initialisation of a run, for every result's `run.json`: the conv init scale, the gamma
/// distribution and one line with both.
pub fn init_record(o: &NetOptions) -> serde_json::Value {
    serde_json::json!({
        "description": o.init_description(),
        "init_scale": o.init_scale,
        "gamma_init": o.gamma().to_string(),
    })
}

/// The topology options of a run, for `run.json`: stem, input channels, pools (`null`: each
/// architecture's), F/G chain (`null`: each architecture's) and nesting.
pub fn topology_record(o: &NetOptions) -> serde_json::Value {
    serde_json::json!({
        "stem": o.stem,
        "in_channels": o.in_channels,
        "pools": o.pools,
        "fg": o.fg,
        "nested": o.nested,
        "nested_rule": "with nested = true every depth is the first `depth` units of the deepest network (same weights); poolings are kept only below a kept unit, the head follows the last kept unit",
    })
}
