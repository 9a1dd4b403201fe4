//! The training loop: [`train`] with its options ([`TrainOptions`], [`Progress`]), the data
//! order of each epoch, the gradient-angle probe, progress lines and checkpoints as it goes.

use super::anchoring;
use super::checkpoint::{finished_checkpoint, load_checkpoint, save_checkpoint, State};
use super::eval::{count_correct, diagnose, evaluate, lowest_snr, to_f64};
use super::records::{AngleRecord, EpochRecord, LayerAngle, TrainOutcome};
use super::{clip_scale, grad_sq_norm, keeping_running_stats, Sgd, TrainConfig};
use crate::data::DataSplit;
use crate::error::{Error, Result};
use crate::measure::grad_angle::grad_angle;
use crate::nets::{Network, Source, StepOptions};
use crate::util::rng_for;
use candle_core::{DType, Device, Tensor};
use rand::Rng;
use std::path::PathBuf;
use std::time::Instant;

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
        plans: Vec::new(),
        plan_rows: Vec::new(),
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
        Source::Reconstructed | Source::Anchored => Source::Stored,
    };
    let anchored = cfg.mode == Source::Anchored;
    let probe_batch = if anchored {
        Some(anchoring::probe_batch(data, cfg.batch, &device)?)
    } else {
        None
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
            let plan = match &probe_batch {
                Some(pb) => {
                    if anchoring::plan_due(&cfg.anchors, &st, st.step) {
                        anchoring::make_plan(&net, &cfg.anchors, pb, &mut st, cfg.seed)?;
                        if let Some(p) = st.plans.last() {
                            log(format!(
                                "{}step {}: plan of {} anchors, lowest SNR {:.1} dB on the probe batch (law {:.1} dB), {} bytes held",
                                opts.label,
                                st.step,
                                p.anchors.len(),
                                p.min_measured_snr_db,
                                p.predicted_snr_db,
                                p.bytes_held
                            ));
                        }
                    }
                    anchoring::current_plan(&st)
                }
                None => cfg.plan(),
            };
            let out = net.step_with_grad_norm(
                &x,
                &y,
                plan,
                StepOptions {
                    grads: true,
                    trace: probe || anchored,
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
            if anchored {
                anchoring::check_batch(&net, &x, &y, &out, &mut st)?;
            }
            if probe {
                // The probe must leave the run untouched: its extra forward would move the
                // batch-norm running statistics a second time with this batch.
                let second = keeping_running_stats(&net, || {
                    net.step(
                        &x,
                        &y,
                        other,
                        StepOptions {
                            grads: true,
                            trace: true,
                            ..StepOptions::default()
                        },
                    )
                })?;
                let (stored, rebuilt) = if cfg.mode.exact() {
                    (&out, &second)
                } else {
                    (&second, &out)
                };
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
        plans: st.plans,
        plan_rows: st.plan_rows,
        stopped,
    };
    Ok((net, outcome))
}
