//! Per-layer SNR trace of a network's reconstructions (paper Fig. 10, 13).
//!
//! For one batch and one set of weights:
//! 1. the stored run: the forward stores every activation the backward would rebuild;
//! 2. the reconstructed run: the backward rebuilds them top down (by inverses, the block
//!    inverse, or recomputation), starting from the head's stored input — exact, unless
//!    `output_noise` is given;
//! 3. the f64 shadow: the same network with the same (cast) weights in f64, stored run.
//!
//! Each entry's `snr_db` compares the reconstruction with the stored activation in the same dtype
//! (the paper's reference); `snr_db_f64` compares it with the f64 shadow (the true error, which
//! also contains the forward pass's own rounding). Both are `+inf` for exact reconstructions.
//!
//! Depth law (eq. 19): `predicted_snr_db` of a top-level entry is the anchor SNR plus the sum of
//! `10 log10(alpha)` of the layers between, where each layer's alpha is measured on the same batch
//! by [`crate::measure::alpha::empirical_alpha_with`] on the f64 shadow layer at its stored input
//! (the first [`ALPHA_SAMPLES`] samples, with the batch statistics of the whole batch) with
//! output noise of std `1e-6 * rms(y)`. The anchor is the output SNR when noise is injected, else
//! the measured SNR of the topmost inexact reconstruction (rounding of the first inverse that
//! rounds), whose own prediction is therefore equal to it; the exact reconstructions above it
//! (`+inf`) have no prediction (NaN). Entries inside reversible blocks (role `hidden`) have no
//! prediction (NaN).
//!
//! Rounding-aware depth law (`predicted_snr_db_rounding`): eq. 19 leaves out the rounding that
//! every inverse adds, so it is always optimistic. Working in noise-to-signal ratios (noise
//! powers relative to the signal, which add for independent noise; SNRs do not), the input of
//! the `i`-th top-level layer (top down) is predicted as
//! `1/snr_i = (1/snr_{i-1}) / alpha_i + delta_i`, starting from `1/snr_out` (0 without output
//! noise), i.e. `1/snr_i = (1/snr_out) / prod(alpha_k, k <= i) + sum_j delta_j / prod(alpha_k,
//! j < k <= i)`: each injection is divided by the alphas of the inverses it still passes
//! through ([`rounding_depth_law`]). The injection `delta_i = 1/step_snr_i` is **measured**: the
//! one-step SNR (`step_snr_db`) of that layer in that run, its inverse applied alone to its exact
//! stored output (the layer's forward in [`Pass::Replay`] of its stored input, bitwise the
//! stored forward) and compared with its stored input, in the network's dtype. Measured rather
//! than `u^2` (the dtype's unit roundoff squared) because the injection depends on the layer:
//! an exact inverse (pool, leaky ReLU of slope 0.5 or 1) injects nothing, a coupling's
//! subtraction loses relative precision where `F(x2)` is large beside `x1`, and a batch-norm
//! inverse rounds several operations; `u^2` would misstate each of these by several dB. This law
//! needs no anchor: its first inexact entry equals the measurement by construction (that
//! entry's one-step error is its whole error).
//!
//! The power sum assumes the injections are independent; measured, the rounding errors of
//! successive inverses are partly correlated and the law stays optimistic by a few dB.
//! `predicted_snr_db_coherent` is the other end ([`coherent_depth_law`]): the rounding
//! injections add in *amplitude* (`sqrt(1/snr)`, each propagated by `1/sqrt(alpha)`), which by
//! the triangle inequality is the least SNR the same alphas and injections allow (fully
//! correlated rounding); the output noise, independent of the rounding, still adds in power.
//! The measurement lies between the two laws.
//!
//! Lipschitz estimates (optional, [`TraceOptions::lipschitz`]): per top-level layer, the largest
//! singular value of the Jacobian of its forward (`lip_forward`) and of its inverse
//! (`lip_inverse`) at the batch, plain ratios, by [`crate::measure::lipschitz::layer_lipschitz`]
//! on the f64 shadow at the layer's stored input (the whole batch as one vector, batch
//! statistics fixed as recorded). NaN when not measured and for hidden entries.

use crate::error::{Error, Result};
use crate::layers::Pass;
use crate::layers::{Layer, Role};
use crate::measure::alpha::empirical_alpha_with;
use crate::measure::law::{linearised_law, LawLayer};
use crate::measure::lipschitz::layer_lipschitz;

/// Samples of the batch on which each layer's alpha is measured for the depth law.
pub const ALPHA_SAMPLES: usize = 2;
use crate::measure::snr::{to_db, Snr};
use crate::nets::{Network, Source, StepOptions};
use candle_core::Tensor;

/// One traced activation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TracePoint {
    /// Position top down (0 = first reconstruction).
    pub index: usize,
    /// The layer whose input this is.
    pub layer: String,
    /// Layer input, block input or hidden.
    pub role: Role,
    /// SNR (dB) against the stored activation in the same dtype.
    pub snr_db: f64,
    /// SNR (dB) against the f64 shadow.
    pub snr_db_f64: f64,
    /// `10 log10(alpha)` of this entry's layer (top-level entries; NaN otherwise).
    pub alpha_db: f64,
    /// Depth-law prediction (dB); NaN for hidden entries.
    pub predicted_snr_db: f64,
    /// One-step SNR (dB) of this entry's layer: its inverse applied alone to its exact stored
    /// output, against its stored input (the injection of the rounding-aware law); NaN for
    /// hidden entries and without the depth law.
    pub step_snr_db: f64,
    /// Rounding-aware depth-law prediction (dB, [`rounding_depth_law`]); NaN for hidden entries
    /// and without the depth law.
    pub predicted_snr_db_rounding: f64,
    /// Coherent (amplitude-sum) rounding-aware prediction (dB, [`coherent_depth_law`]); NaN for
    /// hidden entries and without the depth law.
    pub predicted_snr_db_coherent: f64,
    /// Linearised-law prediction (dB, [`crate::measure::law`]), the recommended law; NaN for
    /// hidden entries and without the depth law.
    pub predicted_snr_db_law: f64,
    /// Alpha (dB) of the error that actually reaches this layer's output
    /// ([`crate::measure::law::LawEntry::alpha_error_db`]).
    pub alpha_error_db: f64,
    /// SNR (dB) of this layer's injection in the chain
    /// ([`crate::measure::law::LawEntry::chain_step_snr_db`]).
    pub chain_step_snr_db: f64,
    /// Cosine between the carried error and this layer's injection in the chain.
    pub injection_corr: f64,
    /// Cosine between the linearised law's error and the signal.
    pub error_signal_corr: f64,
    /// Lag-1 horizontal autocorrelation of the linearised law's error.
    pub error_lag1: f64,
    /// Local Lipschitz constant of the layer's forward at the batch (plain ratio); NaN unless
    /// [`TraceOptions::lipschitz`] and for hidden entries.
    pub lip_forward: f64,
    /// Local Lipschitz constant of the layer's inverse at the batch (plain ratio); NaN unless
    /// [`TraceOptions::lipschitz`] and for hidden entries.
    pub lip_inverse: f64,
}

/// A whole trace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnrTrace {
    /// Entries top down.
    pub points: Vec<TracePoint>,
    /// SNR (dB) of the head input the backward started from (`inf` without noise).
    pub output_snr_db: f64,
}

impl SnrTrace {
    /// The lowest (last, bottom-most) top-level entry: the lowest layer's input in a layer-wise
    /// network, the lowest block input in a hybrid or RevNet.
    pub fn lowest(&self) -> Option<&TracePoint> {
        self.points.iter().rev().find(|p| p.role != Role::Hidden)
    }

    /// The smallest SNR (dB) of all entries, against the same-dtype reference.
    pub fn min_snr_db(&self) -> f64 {
        self.points
            .iter()
            .map(|p| p.snr_db)
            .fold(f64::INFINITY, f64::min)
    }
}

/// Options of [`snr_trace`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceOptions {
    /// Absolute std of noise added to the head's input before reconstructing.
    pub output_noise: Option<f64>,
    /// Seed of that noise and of the alpha measurements.
    pub seed: u64,
    /// Measure per-layer alphas and the depth-law predictions (eq. 19 and rounding-aware).
    pub depth_law: bool,
    /// Estimate each top-level layer's forward and inverse Lipschitz constants (power
    /// iteration on the f64 shadow: about 30 forward-and-backward passes per layer and map, so
    /// off unless asked).
    pub lipschitz: bool,
}

/// Trace the reconstruction SNR of `net` on batch `(x, labels)`; see the module doc. `shadow` is
/// the f64 copy of `net` (see [`Network::f64_shadow`]: on the CPU when `net`'s device has no
/// f64); pass `None` to build it here.
pub fn snr_trace(
    net: &Network,
    shadow: Option<&Network>,
    x: &Tensor,
    labels: &Tensor,
    opts: TraceOptions,
) -> Result<SnrTrace> {
    let owned;
    let shadow = match shadow {
        Some(s) => s,
        None => {
            owned = net.f64_shadow()?;
            &owned
        }
    };
    let trace_only = StepOptions {
        grads: false,
        trace: true,
        output_noise: None,
        noise_seed: opts.seed,
    };
    let stored = net.step(x, labels, Source::Stored, trace_only)?;
    let rebuilt = net.step(
        x,
        labels,
        Source::Reconstructed,
        StepOptions {
            output_noise: opts.output_noise,
            ..trace_only
        },
    )?;
    // The shadow may live on the CPU (a device without f64, Network::f64_shadow).
    let truth = shadow.step(
        &x.to_device(&shadow.device)?,
        &labels.to_device(&shadow.device)?,
        Source::Stored,
        trace_only,
    )?;
    if stored.trace.len() != rebuilt.trace.len() || truth.trace.len() != rebuilt.trace.len() {
        return Err(Error::internal(
            "trace",
            format!(
                "lengths differ: stored {}, reconstructed {}, shadow {}",
                stored.trace.len(),
                rebuilt.trace.len(),
                truth.trace.len()
            ),
        ));
    }
    let output_snr_db = match (&stored.head_input, &rebuilt.head_input) {
        (Some(a), Some(b)) => Snr::of(a, b)?.db(),
        _ => f64::INFINITY,
    };
    let mut points = Vec::with_capacity(rebuilt.trace.len());
    for (index, ((s, r), t)) in stored
        .trace
        .iter()
        .zip(&rebuilt.trace)
        .zip(&truth.trace)
        .enumerate()
    {
        if s.layer != r.layer || t.layer != r.layer {
            return Err(Error::internal(
                format!("trace entry {index}"),
                format!("layers differ: {} / {} / {}", s.layer, r.layer, t.layer),
            ));
        }
        points.push(TracePoint {
            index,
            layer: r.layer.clone(),
            role: r.role,
            snr_db: Snr::of(&s.tensor, &r.tensor)?.db(),
            snr_db_f64: Snr::of(&t.tensor, &r.tensor)?.db(),
            alpha_db: f64::NAN,
            predicted_snr_db: f64::NAN,
            step_snr_db: f64::NAN,
            predicted_snr_db_rounding: f64::NAN,
            predicted_snr_db_coherent: f64::NAN,
            predicted_snr_db_law: f64::NAN,
            alpha_error_db: f64::NAN,
            chain_step_snr_db: f64::NAN,
            injection_corr: f64::NAN,
            error_signal_corr: f64::NAN,
            error_lag1: f64::NAN,
            lip_forward: f64::NAN,
            lip_inverse: f64::NAN,
        });
    }
    if opts.depth_law {
        depth_law(shadow, &truth.trace, &mut points, output_snr_db, opts)?;
        let steps = rounding_law(net, &stored.trace, &mut points, output_snr_db)?;
        let head_error = match (&stored.head_input, &rebuilt.head_input) {
            (Some(a), Some(b)) if opts.output_noise.is_some() => Some((b - a)?),
            _ => None,
        };
        linear_law(
            net,
            shadow,
            &stored.trace,
            &steps,
            &mut points,
            head_error,
            opts.seed,
        )?;
    }
    if opts.lipschitz {
        lipschitz(shadow, &truth.trace, &mut points, opts.seed)?;
    }
    Ok(SnrTrace {
        points,
        output_snr_db,
    })
}

/// Indices of the top-level (not hidden) entries of a trace, top down.
fn top_level_indices(points: &[TracePoint]) -> Vec<usize> {
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.role != Role::Hidden)
        .map(|(i, _)| i)
        .collect()
}

/// Noise-to-signal ratio of an SNR in dB: `+inf` dB -> 0, `-inf` dB -> `+inf`.
fn nsr(db: f64) -> f64 {
    10f64.powf(-db / 10.0)
}

/// SNR in dB of a noise-to-signal ratio: 0 -> `+inf` (no noise has entered).
fn nsr_db(nsr: f64) -> f64 {
    if nsr == 0.0 {
        f64::INFINITY
    } else {
        -10.0 * nsr.log10()
    }
}

/// The top-level layer of `net` named `name`.
fn top_level_layer<'a>(net: &'a Network, name: &str) -> Result<&'a dyn Layer> {
    net.chain
        .layers
        .iter()
        .find(|l| l.name() == name)
        .map(|l| l.as_ref())
        .ok_or_else(|| Error::config("depth law", "a top-level layer", format!("`{name}`")))
}

/// Rounding-aware depth law (module doc): for top-level layers top down, each with
/// `(alpha_db, step_snr_db)` (its `10 log10(alpha)` and its one-step SNR in dB, `+inf` for an
/// exact inverse), starting from the head input's SNR `output_snr_db` (`+inf` without noise),
/// the predicted SNR (dB) of each layer's reconstructed input:
/// `1/snr_i = (1/snr_{i-1}) / alpha_i + 1/step_snr_i`, computed in noise-to-signal ratios
/// (f64), `+inf` while no noise has entered.
pub fn rounding_depth_law(output_snr_db: f64, layers: &[(f64, f64)]) -> Vec<f64> {
    let mut running = nsr(output_snr_db);
    layers
        .iter()
        .map(|&(alpha_db, step_db)| {
            let carried = if running == 0.0 {
                0.0
            } else {
                running / 10f64.powf(alpha_db / 10.0)
            };
            running = carried + nsr(step_db);
            nsr_db(running)
        })
        .collect()
}

/// Coherent rounding-aware depth law (module doc): as [`rounding_depth_law`], but the rounding
/// injections add in amplitude, `a_i = a_{i-1} / sqrt(alpha_i) + sqrt(1/step_snr_i)` with
/// `a = 0` at the head, while the output noise `o_i = o_{i-1} / alpha_i` (from `1/snr_out`) adds
/// in power: `1/snr_i = o_i + a_i^2`. The least SNR the same alphas and injections allow.
pub fn coherent_depth_law(output_snr_db: f64, layers: &[(f64, f64)]) -> Vec<f64> {
    coherent_depth_law_anchored(output_snr_db, layers, &vec![false; layers.len()])
}

/// [`coherent_depth_law`] with anchors: where `anchored[i]`, layer `i`'s input is stored, so
/// its prediction is `+inf` (exact) and every error above it is dropped: the next layer down
/// starts from an exact input, as the head's does. Without anchors, [`coherent_depth_law`].
pub fn coherent_depth_law_anchored(
    output_snr_db: f64,
    layers: &[(f64, f64)],
    anchored: &[bool],
) -> Vec<f64> {
    let mut output = nsr(output_snr_db);
    let mut amplitude = 0.0f64;
    layers
        .iter()
        .zip(anchored)
        .map(|(&(alpha_db, step_db), &anchor)| {
            if anchor {
                output = 0.0;
                amplitude = 0.0;
                return f64::INFINITY;
            }
            let alpha = 10f64.powf(alpha_db / 10.0);
            if output != 0.0 {
                output /= alpha;
            }
            if amplitude != 0.0 {
                amplitude /= alpha.sqrt();
            }
            amplitude += nsr(step_db).sqrt();
            nsr_db(output + amplitude * amplitude)
        })
        .collect()
}

/// The linearised law ([`crate::measure::law`]) over the top-level entries, from the outputs
/// and one-step errors `steps` of [`rounding_law`] (top down, one per top-level entry).
fn linear_law(
    net: &Network,
    shadow: &Network,
    stored: &[crate::layers::TraceEntry],
    steps: &[(Tensor, Tensor)],
    points: &mut [TracePoint],
    head_error: Option<Tensor>,
    seed: u64,
) -> Result<()> {
    let top_level = top_level_indices(points);
    let mut layers = Vec::with_capacity(top_level.len());
    // Where a layer's output is not the rebuilt input of the traced layer just above it (or,
    // at the top, the head input), that output is stored: no error comes down through it.
    let position = |name: &str| net.chain.layers.iter().position(|l| l.name() == name);
    // The head is the chain's last layer; its input carries the output noise.
    let mut above = position("head").or(Some(net.chain.layers.len()));
    for (&i, (output, step_error)) in top_level.iter().zip(steps) {
        let here = position(&points[i].layer);
        let exact_output = match (here, above) {
            (Some(h), Some(a)) => h + 1 != a,
            _ => true,
        };
        above = here;
        layers.push(LawLayer {
            exact_output,
            layer: top_level_layer(net, &points[i].layer)?,
            shadow: top_level_layer(shadow, &points[i].layer)?,
            input: &stored[i].tensor,
            output,
            step_error,
        });
    }
    let entries = linearised_law(head_error.as_ref(), &layers, &shadow.device, seed)?;
    for (&i, e) in top_level.iter().zip(entries) {
        let p = &mut points[i];
        p.predicted_snr_db_law = e.predicted_snr_db;
        p.alpha_error_db = e.alpha_error_db;
        p.chain_step_snr_db = e.chain_step_snr_db;
        p.injection_corr = e.injection_corr;
        p.error_signal_corr = e.error_signal_corr;
        p.error_lag1 = e.error_lag1;
    }
    Ok(())
}

/// One-step SNR of each top-level layer of `net` (its inverse applied to the forward of its
/// stored input) and the rounding-aware prediction; needs the alphas of [`depth_law`]. Returns
/// each layer's forward of its stored input and its one-step error `inverse(forward(x)) - x`,
/// top down.
fn rounding_law(
    net: &Network,
    stored: &[crate::layers::TraceEntry],
    points: &mut [TracePoint],
    output_snr_db: f64,
) -> Result<Vec<(Tensor, Tensor)>> {
    let top_level = top_level_indices(points);
    let mut chain = Vec::with_capacity(top_level.len());
    let mut steps = Vec::with_capacity(top_level.len());
    for &i in &top_level {
        let layer = top_level_layer(net, &points[i].layer)?;
        let x = &stored[i].tensor;
        let y = layer.forward_pass(x, Pass::Replay)?;
        let rebuilt = layer.inverse(&y)?;
        let step = Snr::of(x, &rebuilt)?.db();
        let error =
            (rebuilt.to_dtype(candle_core::DType::F64)? - x.to_dtype(candle_core::DType::F64)?)?;
        steps.push((y, error));
        points[i].step_snr_db = step;
        chain.push((points[i].alpha_db, step));
    }
    let coherent = coherent_depth_law(output_snr_db, &chain);
    for ((&i, predicted), coherent) in top_level
        .iter()
        .zip(rounding_depth_law(output_snr_db, &chain))
        .zip(coherent)
    {
        points[i].predicted_snr_db_rounding = predicted;
        points[i].predicted_snr_db_coherent = coherent;
    }
    Ok(steps)
}

/// Forward and inverse Lipschitz estimates of every top-level layer (module doc).
fn lipschitz(
    shadow: &Network,
    truth: &[crate::layers::TraceEntry],
    points: &mut [TracePoint],
    seed: u64,
) -> Result<()> {
    for (i, p) in points.iter_mut().enumerate() {
        if p.role == Role::Hidden {
            continue;
        }
        let layer = top_level_layer(shadow, &p.layer)?;
        let est = layer_lipschitz(layer, &truth[i].tensor, seed ^ (i as u64))?;
        p.lip_forward = est.forward.sigma;
        p.lip_inverse = est.inverse.sigma;
    }
    Ok(())
}

fn depth_law(
    shadow: &Network,
    truth: &[crate::layers::TraceEntry],
    points: &mut [TracePoint],
    output_snr_db: f64,
    opts: TraceOptions,
) -> Result<()> {
    let top_level = top_level_indices(points);
    let mut running: Option<f64> = None;
    for &i in &top_level {
        let layer = top_level_layer(shadow, &points[i].layer)?;
        // A sub-batch of ALPHA_SAMPLES samples, with the statistics recorded on the whole batch.
        let full = &truth[i].tensor;
        let input = full.narrow(0, 0, full.dim(0)?.min(ALPHA_SAMPLES))?;
        let y = layer.forward_pass(&input, Pass::Replay)?;
        let rms = (Snr::of(&y.zeros_like()?, &y)?.noise / y.elem_count() as f64).sqrt();
        let alpha = if rms > 0.0 {
            empirical_alpha_with(
                layer,
                &input,
                1e-6 * rms,
                opts.seed ^ (i as u64),
                Pass::Replay,
            )?
            .alpha
        } else {
            1.0
        };
        let alpha_db = to_db(alpha);
        points[i].alpha_db = alpha_db;
        // Anchored at the first inexact reconstruction: an exact one (+inf, e.g. a pool or a
        // leaky ReLU of slope 0.5 or 1) anchored every prediction below it at +inf.
        let predicted = match running {
            Some(above) => Some(above + alpha_db),
            None if opts.output_noise.is_some() => Some(output_snr_db + alpha_db),
            None if points[i].snr_db.is_finite() => Some(points[i].snr_db),
            None => None,
        };
        points[i].predicted_snr_db = predicted.unwrap_or(f64::NAN);
        running = predicted;
    }
    Ok(())
}
