//! Measurements of a network during and after training: test/train accuracy and loss
//! ([`evaluate`]), the probe's lowest-layer reconstruction SNR ([`lowest_snr`]) and where a
//! diverged step broke ([`diagnose`]).

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::layers::Role;
use crate::measure::snr::Snr;
use crate::measure::trace::{snr_trace, TraceOptions};
use crate::nets::{Network, Source, StepOptions, StepOutput};
use crate::results::text::fmt_f;
use candle_core::{DType, Tensor};

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

pub(super) fn to_f64(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

pub(super) fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<f64> {
    to_f64(
        &logits
            .argmax(1)?
            .eq(labels)?
            .to_dtype(DType::F64)?
            .sum_all()?,
    )
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
