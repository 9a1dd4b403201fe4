//! Training: SGD with momentum and weight decay, the one-cycle learning-rate schedule, resumable
//! checkpoints, test accuracy, and the gradient-angle probe of Gomez et al. Fig. 4.
//!
//! Every network of [`crate::nets`] trains through [`Network::step`] with activations from
//! [`Source::Stored`] or [`Source::Reconstructed`]; the two modes differ only in where the
//! backward takes each layer's input from (docs/design.md section 3), so any difference in the trained model
//! is the effect of reconstruction error.
//!
//! - **Optimiser** ([`Sgd`]): PyTorch-style SGD with *coupled* L2 weight decay
//!   `d = g + wd w`, momentum buffer `v <- mu v + d` (`v = d` at the first step), update
//!   `w <- w - lr v`, on every parameter (convolutions, batch-norm `gamma` and `beta`, head).
//!   Buffers and the update are computed in the compute dtype (f32 for f16/bf16 storage) and the
//!   weight is rounded to the storage dtype.
//! - **Schedule** ([`OneCycle`]): the cyclical / one-cycle policy the paper cites (Smith & Topin,
//!   ref. 23), per step: linear from `lr / lr_div` up to `lr` over the first `warmup` fraction of
//!   the steps, then linear down to `lr / lr_final_div` at the last step.
//! - **Divergence**: a non-finite loss or non-finite gradients stop the run with
//!   [`Error::Diverged`] *before* the update, so the weights stay finite and the diagnosis
//!   ([`diagnose`]) can trace the reconstruction SNR of every layer on the offending batch.
//! - **Checkpoints** (in the run directory): `checkpoint-stepN.safetensors` (the `VarMap`),
//!   `checkpoint-stepN.momentum.safetensors` (momentum buffers) and `checkpoint.json` (step,
//!   config, epoch accumulators, history), each written atomically, the JSON last. Resuming
//!   replays the data order from the seed, so a resumed run reaches the same weights as an
//!   uninterrupted one. The batch-norm running statistics, which are not part of the `VarMap`,
//!   are saved beside it (`checkpoint-stepN.running.safetensors`), so a resumed run also
//!   evaluates bitwise as the uninterrupted one.
//! - **Gradient-angle probe** (every `angle_every` steps and at the last step): on the same
//!   batch and weights, the other mode's gradients are computed by a second `step` (its update
//!   is discarded), and the whole-network and per-layer angles, the lowest-layer reconstruction
//!   SNR, the loss and the train/test error are recorded. The extra forward's update of the
//!   batch-norm running statistics is undone, so a probed run trains and evaluates bitwise as
//!   an unprobed one.

use crate::data::{DataSplit, Dataset};
use crate::device::compute_dtype;
use crate::error::{Error, Result};
use crate::layers::{Layer, Role, Structure};
use crate::measure::grad_angle::grad_angle;
use crate::measure::snr::Snr;
use crate::measure::trace::{snr_trace, TraceOptions};
use crate::nets::{Network, Source, StepOptions, StepOutput};
use crate::results::text::fmt_f;
use crate::util::{rng_for, write_atomic};
use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod config;
pub use config::{read_toml, TrainConfig, DEFAULT_DATA};

/// The one-cycle learning-rate schedule (per step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneCycle {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// Fraction of the steps spent going up.
    pub warmup: f64,
    /// Start at `max_lr / lr_div`.
    pub lr_div: f64,
    /// End at `max_lr / lr_final_div`.
    pub lr_final_div: f64,
}

impl OneCycle {
    /// Learning rate of step `step` (0-based): `lr0 + (max - lr0) t / W` for `t < W` with
    /// `W = round(warmup T)`, then linear from `max` at `t = W` to `max / lr_final_div` at
    /// `t = T - 1`.
    pub fn lr(&self, step: usize) -> f64 {
        let total = self.total_steps.max(1);
        let start = self.max_lr / self.lr_div;
        let end = self.max_lr / self.lr_final_div;
        let up = ((self.warmup * total as f64).round() as usize).min(total - 1);
        let t = step.min(total - 1);
        if t < up {
            start + (self.max_lr - start) * t as f64 / up as f64
        } else if total - 1 > up {
            self.max_lr + (end - self.max_lr) * (t - up) as f64 / (total - 1 - up) as f64
        } else {
            self.max_lr
        }
    }
}

/// SGD with momentum and coupled L2 weight decay (see the module doc for the update).
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Momentum `mu`.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Momentum buffers by parameter name (compute dtype).
    pub buffers: HashMap<String, Tensor>,
}

impl Sgd {
    /// An optimiser with empty buffers.
    pub fn new(momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            weight_decay,
            buffers: HashMap::new(),
        }
    }

    /// One update of every parameter in `params` with `grads` (same names) at learning rate `lr`.
    pub fn step(
        &mut self,
        params: &[(String, Var)],
        grads: &HashMap<String, Tensor>,
        lr: f64,
    ) -> Result<()> {
        self.step_scaled(params, grads, lr, 1.0)
    }

    /// [`Sgd::step`] with every gradient multiplied by `scale` first (gradient clipping,
    /// [`clip_scale`]; a scale of 1 multiplies nothing).
    pub fn step_scaled(
        &mut self,
        params: &[(String, Var)],
        grads: &HashMap<String, Tensor>,
        lr: f64,
        scale: f64,
    ) -> Result<()> {
        for (name, var) in params {
            let grad = grads
                .get(name)
                .ok_or_else(|| Error::internal(format!("parameter `{name}`"), "no gradient"))?;
            let dtype = var.dtype();
            let cd = compute_dtype(dtype);
            let weight = var.as_detached_tensor().to_dtype(cd)?;
            let mut direction = grad.detach().to_dtype(cd)?;
            if scale != 1.0 {
                direction = (direction * scale)?;
            }
            if self.weight_decay > 0.0 {
                direction = (direction + (&weight * self.weight_decay)?)?;
            }
            let velocity = match self.buffers.get(name) {
                Some(v) if self.momentum > 0.0 => ((v * self.momentum)? + direction)?,
                _ => direction,
            };
            let updated = (weight - (&velocity * lr)?)?;
            var.set(&updated.to_dtype(dtype)?)?;
            self.buffers.insert(name.clone(), velocity);
        }
        Ok(())
    }
}

/// Mean loss and accuracy of one training epoch (train-mode batch statistics, the batches as
/// trained on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, counted from 1 as the console prints it (`history.csv`'s `epoch`).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (fraction).
    pub train_acc: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Seconds since the start of the run (including earlier, resumed-from sessions).
    pub seconds: f64,
}

/// Angle of one layer's gradients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerAngle {
    /// Layer name (parameter name up to the last `.`).
    pub layer: String,
    /// Angle between stored and reconstructed gradients, degrees.
    #[serde(with = "float_text")]
    pub angle_deg: f64,
}

/// One gradient-angle probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AngleRecord {
    /// Updates applied before the probe.
    pub step: usize,
    /// Epoch of the probe (0-based).
    pub epoch: usize,
    /// Training mode of the run.
    pub mode: Source,
    /// Loss of the batch.
    pub loss: f64,
    /// Error (fraction) on the first `eval_samples` training images, eval mode.
    pub train_err: f64,
    /// Error (fraction) on the first `eval_samples` test images, eval mode.
    pub test_err: f64,
    /// Whole-network angle between stored and reconstructed gradients, degrees.
    #[serde(with = "float_text")]
    pub angle_deg: f64,
    /// The lowest rebuilt top-level activation (lowest layer / block input).
    pub lowest_layer: String,
    /// Its reconstruction SNR (dB) against the stored activation.
    #[serde(with = "float_text")]
    pub lowest_snr_db: f64,
    /// Per-layer angles.
    pub per_layer: Vec<LayerAngle>,
}

/// Floats as exact text in JSON (`inf` and `nan` survive).
use crate::results::text::float_text;

/// What a training run produced.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    /// Test accuracy (fraction), eval mode (running batch-norm statistics).
    pub test_acc: f64,
    /// Mean test loss, eval mode.
    pub test_loss: f64,
    /// Mean training loss of the last epoch.
    pub train_loss: f64,
    /// Training accuracy of the last epoch.
    pub train_acc: f64,
    /// Epochs completed.
    pub epochs: usize,
    /// Updates applied.
    pub steps: usize,
    /// Seconds of training and evaluation (summed over resumed sessions).
    pub seconds: f64,
    /// Primitive layers of the network.
    pub layers: usize,
    /// Per-epoch records.
    pub history: Vec<EpochRecord>,
    /// Gradient-angle probes.
    pub angles: Vec<AngleRecord>,
    /// True when the run stopped early at `stop_after` (checkpoint written, no evaluation).
    pub stopped: bool,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing.
    Silent,
    /// One line per epoch on stderr.
    Lines,
    /// An indicatif bar over the steps (and the epoch lines above it).
    Bar,
}

/// How to run [`train`].
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Directory of the checkpoints (none: no checkpoints).
    pub run_dir: Option<PathBuf>,
    /// Continue from the last checkpoint in `run_dir` (a fresh start when there is none).
    pub resume: bool,
    /// Stop after this many updates (global step), writing a checkpoint (for tests and time
    /// limits).
    pub stop_after: Option<usize>,
    /// Progress display.
    pub progress: Progress,
    /// Prefix of progress lines.
    pub label: String,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            run_dir: None,
            resume: false,
            stop_after: None,
            progress: Progress::Silent,
            label: String::new(),
        }
    }
}

/// The shuffle (and augmentation) seed of `epoch`.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    rng_for(seed, &format!("train/epoch{epoch}")).gen()
}

/// Accuracy (fraction) and mean cross-entropy of `net` on the first `limit` samples of `data`
/// (0: all), eval mode, in batches of `batch`.
pub fn evaluate(net: &Network, data: &Dataset, limit: usize, batch: usize) -> Result<(f64, f64)> {
    let n = if limit == 0 {
        data.len()
    } else {
        limit.min(data.len())
    };
    if n == 0 {
        return Err(Error::config(
            "evaluation",
            "at least one sample",
            "an empty data set",
        ));
    }
    let (mut correct, mut loss_sum) = (0.0, 0.0);
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        let x = data.images.narrow(0, start, len)?.to_device(&net.device)?;
        let y = data.labels.narrow(0, start, len)?.to_device(&net.device)?;
        let logits = net.eval_logits(&x)?;
        correct += count_correct(&logits, &y)?;
        loss_sum += to_f64(&candle_nn::loss::cross_entropy(
            &logits.to_dtype(DType::F32)?,
            &y,
        )?)? * len as f64;
        start += len;
    }
    Ok((correct / n as f64, loss_sum / n as f64))
}

fn to_f64(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Correct training predictions not yet added to the epoch's count: on the CPU they are added
/// at once; on another device they are summed there and read when the epoch's accuracy or a
/// checkpoint needs them (once per epoch or checkpoint, not once per step).
#[derive(Default)]
struct PendingCorrect(Option<Tensor>);

impl PendingCorrect {
    fn add(&mut self, st: &mut State, logits: &Tensor, labels: &Tensor) -> Result<()> {
        if logits.device().is_cpu() {
            st.epoch_correct += count_correct(logits, labels)?;
            return Ok(());
        }
        // f32 counts are exact up to 2^24 predictions between two reads.
        let correct = logits
            .argmax(1)?
            .eq(labels)?
            .to_dtype(DType::F32)?
            .sum_all()?;
        self.0 = Some(match self.0.take() {
            Some(sum) => (sum + correct)?,
            None => correct,
        });
        Ok(())
    }

    fn read_into(&mut self, st: &mut State) -> Result<()> {
        if let Some(sum) = self.0.take() {
            st.epoch_correct += to_f64(&sum)?;
        }
        Ok(())
    }
}

fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<f64> {
    to_f64(
        &logits
            .argmax(1)?
            .eq(labels)?
            .to_dtype(DType::F64)?
            .sum_all()?,
    )
}

/// The factor that clips a gradient of global L2 norm `norm` to at most `max_norm`:
/// `min(1, max_norm / norm)`; 1 when clipping is off (`max_norm` 0) or the norm is within it.
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / norm
    } else {
        1.0
    }
}

/// Sum of squares of every gradient (f64); non-finite when any gradient is. Reads each
/// gradient's sum: for CPU tensors (on a GPU, [`crate::nets::StepOutput::grad_sq_norm`] comes
/// with the step's one read).
pub fn grad_sq_norm(grads: &HashMap<String, Tensor>) -> Result<f64> {
    let mut total = 0.0;
    for g in grads.values() {
        total += to_f64(&g.to_dtype(DType::F64)?.sqr()?.sum_all()?)?;
    }
    Ok(total)
}

/// Say where a network that produced a non-finite loss or gradient on `(x, labels)` broke:
/// the lowest layer whose *stored* forward activation is non-finite (the forward itself
/// overflowed), and from [`snr_trace`] the first rebuilt activation, top down, whose
/// reconstruction SNR collapsed (non-finite, or below 0 dB), else the lowest-SNR one.
pub fn diagnose(net: &Network, x: &Tensor, labels: &Tensor) -> Diagnosis {
    let mut parts = Vec::new();
    let mut collapsed_at = None;
    let trace_only = StepOptions {
        grads: false,
        trace: true,
        ..StepOptions::default()
    };
    match net.step(x, labels, Source::Stored, trace_only) {
        Ok(out) => {
            let non_finite = |t: &Tensor| crate::util::count_non_finite(t).unwrap_or(0);
            // The trace is top down: the last non-finite entry is the lowest one.
            if let Some(e) = out.trace.iter().rev().find(|e| non_finite(&e.tensor) > 0) {
                parts.push(format!("the forward pass itself overflowed: the stored input of layer `{}` holds {} non-finite value(s)", e.layer, non_finite(&e.tensor)));
            } else if non_finite(&out.logits) > 0 {
                parts.push(
                    "the forward pass overflowed in the head (non-finite logits)".to_string(),
                );
            }
        }
        Err(e) => parts.push(format!("the stored forward failed: {e}")),
    }
    match snr_trace(net, None, x, labels, TraceOptions::default()) {
        Ok(trace) => {
            let collapsed = trace
                .points
                .iter()
                .find(|p| p.snr_db.is_nan() || p.snr_db == f64::NEG_INFINITY || p.snr_db < 0.0);
            let lowest = trace
                .points
                .iter()
                .filter(|p| !p.snr_db.is_nan())
                .min_by(|a, b| a.snr_db.total_cmp(&b.snr_db));
            collapsed_at = collapsed.map(|p| p.layer.clone());
            match (collapsed, lowest) {
                (Some(p), _) => parts.push(format!(
                    "reconstruction SNR collapsed at layer `{}` ({} input, entry {} of {} top down): {} dB against the stored activation",
                    p.layer,
                    p.role.as_str(),
                    p.index + 1,
                    trace.points.len(),
                    fmt_f(p.snr_db)
                )),
                (None, Some(p)) => parts.push(format!("reconstructions stay usable: lowest SNR {} dB at layer `{}` ({} input)", fmt_f(p.snr_db), p.layer, p.role.as_str())),
                (None, None) => parts.push("no rebuilt activation to trace".to_string()),
            }
            if let Some(l) = trace.lowest() {
                parts.push(format!(
                    "lowest-layer SNR {} dB (`{}`)",
                    fmt_f(l.snr_db),
                    l.layer
                ));
            }
        }
        Err(e) => parts.push(format!("the SNR trace failed: {e}")),
    }
    Diagnosis {
        text: parts.join("; "),
        collapsed_at,
    }
}

/// What [`diagnose`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// The whole diagnosis, one line.
    pub text: String,
    /// The highest layer (top down) whose reconstruction SNR collapsed: NaN, -inf or below
    /// 0 dB against the stored activation; `None` when none did.
    pub collapsed_at: Option<String>,
}

/// The lowest rebuilt top-level activation of two traces of the same batch: its layer and
/// its SNR (dB) with the stored trace as reference.
pub fn lowest_snr(stored: &StepOutput, rebuilt: &StepOutput) -> Result<(String, f64)> {
    let pos = stored.trace.iter().rposition(|e| e.role != Role::Hidden);
    match pos {
        Some(i) if i < rebuilt.trace.len() && rebuilt.trace[i].layer == stored.trace[i].layer => {
            Ok((
                stored.trace[i].layer.clone(),
                Snr::of(&stored.trace[i].tensor, &rebuilt.trace[i].tensor)?.db(),
            ))
        }
        Some(_) => Err(Error::internal(
            "lowest_snr",
            "stored and reconstructed traces do not line up",
        )),
        None => Ok(("none".into(), f64::INFINITY)),
    }
}

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
}

/// Training state carried across checkpoints.
struct State {
    step: usize,
    epoch_loss_sum: f64,
    epoch_correct: f64,
    epoch_seen: usize,
    history: Vec<EpochRecord>,
    angles: Vec<AngleRecord>,
}

/// The layers of `layer` that keep training state outside the parameters (batch norms), in
/// network order, walking the composites as the backward driver does.
fn stateful_layers<'a>(layer: &'a dyn Layer, out: &mut Vec<&'a dyn Layer>) {
    match layer.structure() {
        Structure::Chain(c) => {
            for l in &c.layers {
                stateful_layers(l.as_ref(), out);
            }
        }
        Structure::Coupling(c) => {
            stateful_layers(c.f(), out);
            stateful_layers(c.g(), out);
        }
        Structure::Residual(r) => stateful_layers(r.f(), out),
        Structure::Primitive => {
            if layer.running_stats().is_some() {
                out.push(layer);
            }
        }
    }
}

/// The batch-norm running statistics of `net`, in network order: the layer's name and its
/// (mean, unbiased variance), `None` before its first training forward. The tensors are
/// immutable (every update makes new ones), so this is a snapshot.
pub fn running_stats(net: &Network) -> Vec<(String, Option<(Tensor, Tensor)>)> {
    let mut layers = Vec::new();
    stateful_layers(&net.chain, &mut layers);
    layers
        .into_iter()
        .map(|l| (l.name().to_string(), l.running_stats().flatten()))
        .collect()
}

/// Put back a snapshot of [`running_stats`] (the same network).
pub fn restore_running_stats(net: &Network, stats: &[(String, Option<(Tensor, Tensor)>)]) {
    let mut layers = Vec::new();
    stateful_layers(&net.chain, &mut layers);
    for (layer, (_, s)) in layers.into_iter().zip(stats) {
        layer.set_running_stats(s.clone());
    }
}

/// [`running_stats`] as safetensors entries `<index>.<layer>.mean` / `.var`.
fn running_stats_map(net: &Network) -> std::collections::HashMap<String, Tensor> {
    let mut map = std::collections::HashMap::new();
    for (i, (name, s)) in running_stats(net).into_iter().enumerate() {
        if let Some((mean, var)) = s {
            map.insert(format!("{i}.{name}.mean"), mean);
            map.insert(format!("{i}.{name}.var"), var);
        }
    }
    map
}

/// Restore the entries of [`running_stats_map`] (a layer without entries has none yet).
fn set_running_stats_map(net: &Network, map: &std::collections::HashMap<String, Tensor>) {
    let stats: Vec<(String, Option<(Tensor, Tensor)>)> = running_stats(net)
        .into_iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let get = |what: &str| map.get(&format!("{i}.{name}.{what}")).cloned();
            let s = get("mean").zip(get("var"));
            (name, s)
        })
        .collect();
    restore_running_stats(net, &stats);
}

fn save_checkpoint(
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
fn finished_checkpoint(dir: &Path, total: usize) -> Error {
    Error::data(
        dir.join(CHECKPOINT).display(),
        "a checkpoint before the last step (drop --resume to train again)",
        format!("one at the last step ({total}): nothing to resume"),
    )
}

/// The number of training steps of a run of `cfg` on `train_len` training samples: `epochs`
/// times the whole batches of one epoch (a last partial batch is dropped, as [`train`] does).
/// Errors ([`Error::Config`]) when the batch is larger than the training set.
pub fn total_steps(cfg: &TrainConfig, train_len: usize) -> Result<usize> {
    let steps_per_epoch = train_len / cfg.batch.max(1);
    if steps_per_epoch == 0 {
        return Err(Error::config(
            "batch",
            format!("at most the training set's {train_len} samples"),
            cfg.batch,
        ));
    }
    Ok(steps_per_epoch * cfg.epochs)
}

/// The step a `--resume` of `cfg` in `dir` would continue from, read without loading the
/// checkpoint's tensors (`None`: no checkpoint, the run starts from scratch); `total` is the
/// run's step count ([`total_steps`]; a finished run gives `total`: nothing left to train).
/// Fails exactly as the resume itself does: a checkpoint that does not parse or belongs to
/// another configuration, or an older one at the last step without running statistics.
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
fn load_checkpoint(
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
    };
    Ok(Some((st, meta.seconds, meta.running.is_some())))
}

/// Train `cfg` on `data` (see the module doc); returns the trained network and the outcome.
/// Errors: [`Error::Diverged`] on a non-finite loss or gradient, configuration errors, I/O
/// errors of the checkpoints.
pub fn train(
    cfg: &TrainConfig,
    data: &DataSplit,
    opts: &TrainOptions,
) -> Result<(Network, TrainOutcome)> {
    cfg.validate()?;
    let device: Device = cfg.device.open()?;
    let dtype = cfg.dtype.dtype();
    let net = Network::build_with(&cfg.net_config_for(data)?, dtype, &device, cfg.backend)?;
    let params = net.named_params();
    let total = total_steps(cfg, data.train.len())?;
    // Not 0: `total_steps` refuses a batch larger than the training set.
    let steps_per_epoch = data.train.len() / cfg.batch.max(1);
    let schedule = cfg.schedule(total);
    let augment = cfg.augmentation(data.train.image_dims().1);
    let mut sgd = Sgd::new(cfg.momentum, cfg.weight_decay);
    let mut st = State {
        step: 0,
        epoch_loss_sum: 0.0,
        epoch_correct: 0.0,
        epoch_seen: 0,
        history: Vec::new(),
        angles: Vec::new(),
    };
    let mut seconds_before = 0.0;
    if let (true, Some(dir)) = (opts.resume, &opts.run_dir) {
        if let Some((loaded, secs, has_running)) = load_checkpoint(dir, &net, &mut sgd, cfg)? {
            if loaded.step >= total && !has_running {
                // A checkpoint of an older version, without the batch-norm running statistics:
                // its final weights cannot be evaluated as the run evaluated them.
                return Err(finished_checkpoint(dir, total));
            }
            st = loaded;
            seconds_before = secs;
            if opts.progress != Progress::Silent {
                if st.step >= total {
                    eprintln!(
                        "{}the run already finished (step {} of {total}): nothing to train; its final weights are evaluated again",
                        opts.label, st.step
                    );
                } else {
                    eprintln!("{}resumed from step {} of {total}", opts.label, st.step);
                }
            }
        }
    }
    // A resumed run that had already finished trains nothing: its wall time stays the one its
    // last checkpoint recorded (its evaluation aside), and its history and accuracy are
    // rewritten byte for byte.
    let finished_before = st.step >= total;
    let start = Instant::now();
    let elapsed = |start: &Instant| {
        if finished_before {
            seconds_before
        } else {
            seconds_before + start.elapsed().as_secs_f64()
        }
    };
    let bar = (opts.progress == Progress::Bar).then(|| {
        let b = indicatif::ProgressBar::new(total as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} steps  {elapsed} elapsed, eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_position(st.step as u64);
        b
    });
    let log = |line: String| match &bar {
        Some(b) => b.println(line),
        None if opts.progress == Progress::Lines => eprintln!("{line}"),
        None => {}
    };
    // The probe's other step: an exact source is compared with the reconstructed one.
    let other = match cfg.mode {
        Source::Stored | Source::Checkpointed => Source::Reconstructed,
        Source::Reconstructed => Source::Stored,
    };
    let mut stopped = false;
    let mut pending_correct = PendingCorrect::default();
    'epochs: for epoch in st.step / steps_per_epoch..cfg.epochs {
        let done_in_epoch = st.step - epoch * steps_per_epoch;
        let batches = data
            .train
            .batch_iter(cfg.batch, Some(epoch_seed(cfg.seed, epoch)), augment)?
            .skip(done_in_epoch);
        for batch in batches {
            let (x, y) = batch?;
            let (x, y) = (x.to_device(&device)?, y.to_device(&device)?);
            let probe =
                cfg.angle_every > 0 && (st.step % cfg.angle_every == 0 || st.step + 1 == total);
            let out = net.step_with_grad_norm(
                &x,
                &y,
                cfg.mode,
                StepOptions {
                    grads: true,
                    trace: probe,
                    segment: cfg.segment,
                    ..StepOptions::default()
                },
            )?;
            let grad_norm = match out.grad_sq_norm {
                Some(sq) => sq,
                None => grad_sq_norm(&out.grads)?,
            }
            .sqrt();
            if !out.loss.is_finite() || !grad_norm.is_finite() {
                let what = if out.loss.is_finite() {
                    format!("finite loss {:.4} but non-finite gradients", out.loss)
                } else {
                    format!("loss {}", out.loss)
                };
                if let Some(b) = &bar {
                    b.abandon();
                }
                let d = diagnose(&net, &x, &y);
                return Err(Error::Diverged {
                    step: st.step,
                    diagnosis: format!("{what} ({} mode); {}", cfg.mode.as_str(), d.text),
                    layer: d.collapsed_at,
                });
            }
            if probe {
                // The probe must leave the run untouched: its extra forward would move the
                // batch-norm running statistics a second time with this batch.
                let before = running_stats(&net);
                let second = net.step(
                    &x,
                    &y,
                    other,
                    StepOptions {
                        grads: true,
                        trace: true,
                        ..StepOptions::default()
                    },
                )?;
                let (stored, rebuilt) = if cfg.mode.exact() {
                    (&out, &second)
                } else {
                    (&second, &out)
                };
                restore_running_stats(&net, &before);
                let angle = grad_angle(&stored.grads, &rebuilt.grads)?;
                let (lowest_layer, lowest_snr_db) = lowest_snr(stored, rebuilt)?;
                let (train_acc, _) = evaluate(&net, &data.train, cfg.eval_samples, cfg.eval_batch)?;
                let (test_acc, _) = evaluate(&net, &data.test, cfg.eval_samples, cfg.eval_batch)?;
                st.angles.push(AngleRecord {
                    step: st.step,
                    epoch,
                    mode: cfg.mode,
                    loss: out.loss,
                    train_err: 1.0 - train_acc,
                    test_err: 1.0 - test_acc,
                    angle_deg: angle.whole_deg,
                    lowest_layer,
                    lowest_snr_db,
                    per_layer: angle
                        .per_layer
                        .into_iter()
                        .map(|(layer, angle_deg)| LayerAngle { layer, angle_deg })
                        .collect(),
                });
            }
            let lr = schedule.lr(st.step);
            let scale = clip_scale(grad_norm, cfg.clip_grad_norm);
            sgd.step_scaled(&params, &out.grads, lr, scale)?;
            st.step += 1;
            st.epoch_loss_sum += out.loss * x.dim(0)? as f64;
            pending_correct.add(&mut st, &out.logits, &y)?;
            st.epoch_seen += x.dim(0)?;
            if let Some(b) = &bar {
                b.set_position(st.step as u64);
                b.set_message(format!(
                    "epoch {} loss {:.3} lr {lr:.4}",
                    epoch + 1,
                    out.loss
                ));
            }
            let epoch_end = st.step % steps_per_epoch == 0;
            // Without a terminal: a line every tenth of an epoch, so a long first epoch is not
            // silent (the epoch's own line follows at its end).
            let in_epoch = st.step - epoch * steps_per_epoch;
            if opts.progress == Progress::Lines
                && !epoch_end
                && in_epoch % steps_per_epoch.div_ceil(10).max(1) == 0
            {
                eprintln!(
                    "{}epoch {}/{}: step {in_epoch}/{steps_per_epoch}, loss {:.4}, lr {lr:.4}, {:.1} s",
                    opts.label,
                    epoch + 1,
                    cfg.epochs,
                    out.loss,
                    elapsed(&start)
                );
            }
            let checkpoint_due = opts.run_dir.is_some()
                && (opts.stop_after == Some(st.step)
                    || (cfg.checkpoint_every > 0 && st.step % cfg.checkpoint_every == 0));
            if epoch_end || checkpoint_due {
                pending_correct.read_into(&mut st)?;
            }
            if epoch_end {
                let rec = EpochRecord {
                    epoch: epoch + 1,
                    train_loss: st.epoch_loss_sum / st.epoch_seen as f64,
                    train_acc: st.epoch_correct / st.epoch_seen as f64,
                    lr,
                    seconds: elapsed(&start),
                };
                log(format!(
                    "{}epoch {}/{}: train loss {:.4}, train acc {:.1}%, lr {:.4}, {:.1} s",
                    opts.label,
                    epoch + 1,
                    cfg.epochs,
                    rec.train_loss,
                    100.0 * rec.train_acc,
                    lr,
                    rec.seconds
                ));
                st.history.push(rec);
                st.epoch_loss_sum = 0.0;
                st.epoch_correct = 0.0;
                st.epoch_seen = 0;
            }
            let stop_now = opts.stop_after == Some(st.step);
            if let Some(dir) = &opts.run_dir {
                // The last step is always saved, whatever `checkpoint_every` is: a finished run
                // keeps its final state.
                let due = st.step == total
                    || if cfg.checkpoint_every == 0 {
                        epoch_end
                    } else {
                        st.step % cfg.checkpoint_every == 0
                    };
                if due || stop_now {
                    save_checkpoint(dir, &net, &sgd, cfg, &st, elapsed(&start))?;
                }
            }
            if stop_now && st.step < total {
                stopped = true;
                break 'epochs;
            }
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let (test_acc, test_loss) = if stopped {
        (f64::NAN, f64::NAN)
    } else {
        evaluate(&net, &data.test, 0, cfg.eval_batch)?
    };
    let last = st.history.last().cloned();
    let outcome = TrainOutcome {
        test_acc,
        test_loss,
        train_loss: last.as_ref().map_or(f64::NAN, |r| r.train_loss),
        train_acc: last.as_ref().map_or(f64::NAN, |r| r.train_acc),
        epochs: st.history.len(),
        steps: st.step,
        seconds: elapsed(&start),
        layers: net.num_layers,
        history: st.history,
        angles: st.angles,
        stopped,
    };
    Ok((net, outcome))
}
