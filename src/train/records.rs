//! What a training run records: per-epoch [`EpochRecord`]s, gradient-angle probes
//! ([`AngleRecord`], [`LayerAngle`]) and the run's [`TrainOutcome`].

use crate::nets::Source;
use serde::{Deserialize, Serialize};

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

/// One plan of an anchored run ([`crate::measure::anchors`]), made on the probe batch at
/// `step` (before that step's update), with how the training batches trained under it fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// Updates applied before the plan was made.
    pub step: usize,
    /// The anchors, top down.
    pub anchors: Vec<String>,
    /// The lowest measured SNR (dB) of the plan's rebuilt inputs on the probe batch.
    #[serde(with = "float_text")]
    pub min_measured_snr_db: f64,
    /// The depth law's lowest prediction (dB) for the same anchors.
    #[serde(with = "float_text")]
    pub predicted_snr_db: f64,
    /// Bytes the anchors hold on the probe batch.
    pub bytes_held: usize,
    /// The lowest SNR (dB) of the first training batch trained under the plan (NaN when the
    /// batches are not checked).
    #[serde(with = "float_text")]
    pub next_batch_snr_db: f64,
    /// The lowest SNR (dB) over every checked training batch trained under the plan.
    #[serde(with = "float_text")]
    pub lowest_batch_snr_db: f64,
    /// How many training batches were checked under the plan.
    pub batches_checked: usize,
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
    /// Anchored runs: every plan, in order (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<PlanRecord>,
    /// Anchored runs: the rows of the last plan (`plan.csv`; empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan_rows: Vec<crate::measure::anchors::PlanRow>,
    /// True when the run stopped early at `stop_after` (checkpoint written, no evaluation).
    pub stopped: bool,
}
