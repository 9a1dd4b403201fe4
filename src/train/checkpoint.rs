//! Resumable checkpoints in the run directory: the training [`State`] they carry, writing
//! ([`save_checkpoint`]), reading back ([`load_checkpoint`]) and what a `--resume` would
//! continue from ([`resumable_step`]).

use super::records::{AngleRecord, EpochRecord, PlanRecord};
use super::running::{running_stats_map, set_running_stats_map};
use super::{Sgd, TrainConfig};
use crate::error::{Error, Result};
use crate::measure::anchors::PlanRow;
use crate::nets::Network;
use crate::util::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const CHECKPOINT: &str = "checkpoint.json";

/// The JSON of a checkpoint (the tensors are in the safetensors files it names).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointMeta {
    step: usize,
    config: TrainConfig,
    weights: String,
    momentum: String,
    /// The batch-norm running statistics (absent in checkpoints of older versions: they then
    /// restart from the next batch).
    #[serde(default)]
    running: Option<String>,
    epoch_loss_sum: f64,
    epoch_correct: f64,
    epoch_seen: usize,
    seconds: f64,
    history: Vec<EpochRecord>,
    angles: Vec<AngleRecord>,
    /// Anchored runs: the plans so far and the rows of the last one (absent otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    plans: Vec<PlanRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    plan_rows: Vec<PlanRow>,
}

/// Training state carried across checkpoints.
pub(super) struct State {
    pub(super) step: usize,
    pub(super) epoch_loss_sum: f64,
    pub(super) epoch_correct: f64,
    pub(super) epoch_seen: usize,
    pub(super) history: Vec<EpochRecord>,
    pub(super) angles: Vec<AngleRecord>,
    pub(super) plans: Vec<PlanRecord>,
    pub(super) plan_rows: Vec<PlanRow>,
}

pub(super) fn save_checkpoint(
    dir: &Path,
    net: &Network,
    sgd: &Sgd,
    cfg: &TrainConfig,
    st: &State,
    seconds: f64,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let weights = format!("checkpoint-step{}.safetensors", st.step);
    let momentum = format!("checkpoint-step{}.momentum.safetensors", st.step);
    let running = format!("checkpoint-step{}.running.safetensors", st.step);
    let tmp = |name: &str| dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let rename = |from: PathBuf, to: &str| {
        std::fs::rename(&from, dir.join(to)).map_err(|e| Error::io(dir.join(to), e))
    };
    net.params.varmap.save(tmp(&weights))?;
    rename(tmp(&weights), &weights)?;
    candle_core::safetensors::save(&sgd.buffers, tmp(&momentum))?;
    rename(tmp(&momentum), &momentum)?;
    candle_core::safetensors::save(&running_stats_map(net), tmp(&running))?;
    rename(tmp(&running), &running)?;
    let meta = CheckpointMeta {
        step: st.step,
        config: cfg.clone(),
        weights: weights.clone(),
        momentum: momentum.clone(),
        running: Some(running.clone()),
        epoch_loss_sum: st.epoch_loss_sum,
        epoch_correct: st.epoch_correct,
        epoch_seen: st.epoch_seen,
        seconds,
        history: st.history.clone(),
        angles: st.angles.clone(),
        plans: st.plans.clone(),
        plan_rows: st.plan_rows.clone(),
    };
    let text =
        serde_json::to_string_pretty(&meta).map_err(|e| Error::internal("checkpoint JSON", e))?;
    write_atomic(&dir.join(CHECKPOINT), text.as_bytes())?;
    // Older checkpoints are no longer referenced.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("checkpoint-step")
                && name.ends_with(".safetensors")
                && name != weights
                && name != momentum
                && name != running
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// The checkpoint record in `dir` of a run of `cfg` (`None` when there is none). Errors
/// ([`Error::Data`]): a file that is not a checkpoint, or the checkpoint of another
/// configuration.
fn read_checkpoint_meta(dir: &Path, cfg: &TrainConfig) -> Result<Option<CheckpointMeta>> {
    let path = dir.join(CHECKPOINT);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let meta: CheckpointMeta = serde_json::from_str(&text)
        .map_err(|e| Error::data(path.display(), "a training checkpoint", e))?;
    if meta.config != *cfg {
        let json = |c: &TrainConfig| serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
        let differences = crate::results::diff::config_differences(&json(&meta.config), &json(cfg));
        return Err(Error::data(
            path.display(),
            "the checkpoint of this configuration (for --resume)",
            format!(
                "one of a different configuration (it differs in {}); use another --out or drop --resume",
                differences.join("; ")
            ),
        ));
    }
    Ok(Some(meta))
}

/// The error of a `--resume` from a checkpoint of an older version (without the batch-norm
/// running statistics) already at the last step (`total`) of its run.
pub(super) fn finished_checkpoint(dir: &Path, total: usize) -> Error {
    Error::data(
        dir.join(CHECKPOINT).display(),
        "a checkpoint before the last step (drop --resume to train again)",
        format!("one at the last step ({total}): nothing to resume"),
    )
}

/// The step a `--resume` of `cfg` in `dir` would continue from, read without loading the
/// checkpoint's tensors (`None`: no checkpoint, the run starts from scratch); `total` is the
/// run's step count ([`total_steps`](super::total_steps); a finished run gives `total`:
/// nothing left to train). Fails exactly as the resume itself does: a checkpoint that does not
/// parse or belongs to another configuration, or an older one at the last step without running
/// statistics.
pub fn resumable_step(dir: &Path, cfg: &TrainConfig, total: usize) -> Result<Option<usize>> {
    match read_checkpoint_meta(dir, cfg)? {
        Some(meta) if meta.step >= total && meta.running.is_none() => {
            Err(finished_checkpoint(dir, total))
        }
        Some(meta) => Ok(Some(meta.step.min(total))),
        None => Ok(None),
    }
}

/// Load the checkpoint in `dir` into `net` and `sgd`: its state, recorded seconds and whether it
/// held the batch-norm running statistics; `None` when there is none.
pub(super) fn load_checkpoint(
    dir: &Path,
    net: &Network,
    sgd: &mut Sgd,
    cfg: &TrainConfig,
) -> Result<Option<(State, f64, bool)>> {
    let Some(meta) = read_checkpoint_meta(dir, cfg)? else {
        return Ok(None);
    };
    let weights = dir.join(&meta.weights);
    let mut varmap = net.params.varmap.clone();
    varmap
        .load(&weights)
        .map_err(|e| Error::data(weights.display(), "the checkpoint's weights", e))?;
    let momentum = dir.join(&meta.momentum);
    sgd.buffers = candle_core::safetensors::load(&momentum, &net.device)
        .map_err(|e| Error::data(momentum.display(), "the checkpoint's momentum", e))?;
    if let Some(name) = &meta.running {
        let path = dir.join(name);
        let map = candle_core::safetensors::load(&path, &net.device)
            .map_err(|e| Error::data(path.display(), "the checkpoint's running statistics", e))?;
        set_running_stats_map(net, &map);
    }
    let st = State {
        step: meta.step,
        epoch_loss_sum: meta.epoch_loss_sum,
        epoch_correct: meta.epoch_correct,
        epoch_seen: meta.epoch_seen,
        history: meta.history,
        angles: meta.angles,
        plans: meta.plans,
        plan_rows: meta.plan_rows,
    };
    Ok(Some((st, meta.seconds, meta.running.is_some())))
}

/// A network trained by a `train` run, loaded from its run directory ([`load_trained`]).
pub struct Trained {
    /// The network with the checkpoint's weights and batch-norm running statistics.
    pub net: Network,
    /// The run's configuration (as its checkpoint recorded it).
    pub config: TrainConfig,
    /// The run's data (the spec of `config`, loaded again).
    pub data: crate::data::DataSplit,
    /// The step of the checkpoint.
    pub step: usize,
}

/// Load the network of the `train` run in `dir` from its last checkpoint (`checkpoint.json`
/// and the safetensors files it names), built on `device` (the run's own device is not
/// required), whatever the run's configuration. Errors ([`Error::Data`], [`Error::Io`]): no
/// checkpoint in `dir`, a file that does not parse, weights that do not fit the network of the
/// recorded configuration.
pub fn load_trained(dir: &Path, device: &candle_core::Device) -> Result<Trained> {
    let path = dir.join(CHECKPOINT);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::data(
            path.display(),
            "the checkpoint of a `train` run (its --out directory)",
            e,
        )
    })?;
    let meta: CheckpointMeta = serde_json::from_str(&text)
        .map_err(|e| Error::data(path.display(), "a training checkpoint", e))?;
    let cfg = meta.config;
    let data = cfg.load_data()?;
    let net = Network::build_with(
        &cfg.net_config_for(&data)?,
        cfg.dtype.dtype(),
        device,
        cfg.backend,
    )?;
    let weights = dir.join(&meta.weights);
    let mut varmap = net.params.varmap.clone();
    varmap
        .load(&weights)
        .map_err(|e| Error::data(weights.display(), "the checkpoint's weights", e))?;
    if let Some(name) = &meta.running {
        let path = dir.join(name);
        let map = candle_core::safetensors::load(&path, device)
            .map_err(|e| Error::data(path.display(), "the checkpoint's running statistics", e))?;
        set_running_stats_map(&net, &map);
    }
    Ok(Trained {
        net,
        config: cfg,
        data,
        step: meta.step,
    })
}
