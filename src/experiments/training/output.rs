//! What every training experiment writes besides its results: the output directory
//! ([`prepare_out`]) and the `run.json` provenance record ([`write_run_json`]).

use crate::data::DataSplit;
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::train::TrainConfig;
use crate::util::write_atomic;
use serde::Serialize;
use std::path::Path;

/// Create `out` and check that it is writable, before anything else is done.
pub fn prepare_out(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"").map_err(|e| Error::io(&probe, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

pub(super) fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::internal("JSON serialisation", e))
}

/// `run.json`: what produced the results.
pub fn write_run_json(
    out: &Path,
    experiment: &str,
    config: serde_json::Value,
    train: &TrainConfig,
    data: &DataSplit,
    extra: serde_json::Value,
) -> Result<()> {
    let device = train
        .device
        .open()
        .map(|d| device_name(&d))
        .unwrap_or_else(|_| train.device.to_string());
    let parsed = crate::data::parse_data_spec(&train.data, train.data_seed).ok();
    let source = parsed
        .as_ref()
        .map(|s| s.describe())
        .unwrap_or_else(|| train.data.clone());
    // Each data file with its size and FNV-1a 64 hash (a checksum of the bytes as stored,
    // gzipped or not; not cryptographic), so a result names exactly the data it came from.
    let files: Vec<serde_json::Value> = parsed
        .map(|s| s.files())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let bytes = std::fs::read(p).ok()?;
            Some(serde_json::json!({
                "path": p.display().to_string(),
                "bytes": bytes.len(),
                "fnv1a64": format!("{:016x}", crate::results::hash::fnv1a64(&bytes)),
            }))
        })
        .collect();
    let mut v = serde_json::json!({
        "tool": "train",
        "experiment": experiment,
        "crate_version": env!("CARGO_PKG_VERSION"),
        "git_revision": crate::util::git_revision(),
        "device": device,
        "backend": train.backend.as_str(),
        "device_info": crate::device::device_record(train.device, train.backend),
        "dtype": train.dtype,
        "config": config,
        "data": { "source": source, "files": files, "train": data.train.len(), "test": data.test.len(), "classes": data.classes(), "image": data.train.image_dims() },
        "optimiser": "SGD, momentum buffer v = mu v + (g + wd w) (coupled L2 weight decay on every parameter), w -= lr v",
        "schedule": format!("one-cycle per step: lr/{} -> lr over the first {} of the steps, then linear to lr/{}", train.lr_div, train.warmup, train.lr_final_div),
        "init": crate::experiments::snr_sweep::init_record(&train.net),
        "topology": crate::experiments::snr_sweep::topology_record(&crate::nets::NetOptions { in_channels: data.train.image_dims().0, ..train.net.clone() }),
        "test_accuracy": "eval mode (running batch-norm statistics), whole test split",
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.extend(extra);
    }
    crate::provenance::attach(&mut v);
    write_atomic(&out.join("run.json"), to_json(&v)?.as_bytes())
}
