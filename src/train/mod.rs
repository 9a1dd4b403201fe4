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
//!
//! - **Anchored** ([`Source::Anchored`]): the anchors are planned on a fixed probe batch
//!   before the first step and again every `replan_every` steps, and every training batch's
//!   lowest rebuilt-input SNR is checked against a stored forward of it (`anchoring`).
//!
//! [`Source::Anchored`]: crate::nets::Source::Anchored
//! [`Network::step`]: crate::nets::Network::step
//! [`Source::Stored`]: crate::nets::Source::Stored
//! [`Source::Reconstructed`]: crate::nets::Source::Reconstructed
//! [`Error::Diverged`]: crate::Error::Diverged

mod anchoring;
mod checkpoint;
mod config;
mod eval;
mod optim;
mod records;
mod run;
mod running;

pub use checkpoint::{load_trained, resumable_step, Trained};
pub use config::{read_toml, TrainConfig, DEFAULT_DATA};
pub use eval::{diagnose, evaluate, lowest_snr, Diagnosis};
pub use optim::{clip_scale, grad_sq_norm, OneCycle, Sgd};
pub use records::{AngleRecord, EpochRecord, LayerAngle, PlanRecord, TrainOutcome};
pub use run::{total_steps, train, Progress, TrainOptions};
pub use running::{keeping_running_stats, restore_running_stats, running_stats};
