//! The linearised depth law (`predicted_snr_db_law`, the recommended one) and the per-layer
//! quantities that show why the scalar laws miss.
//!
//! Convention: entries are top-level layer inputs, top down, as in [`crate::measure::trace`];
//! SNRs in dB against the stored activation in the network's dtype; `alpha` in the paper's sense
//! (noise-to-signal ratio of a layer's output divided by that of its input, so `1/snr_in =
//! (1/snr_out) / alpha`).
//!
//! **The law.** Reconstruction error, to first order, is a sum of rounding errors each carried
//! down by the inverses below it. The scalar laws reduce every layer to two numbers, its
//! white-noise alpha and its one-step injection, and must guess how the injections add (in
//! power, [`crate::measure::trace::rounding_depth_law`], or in amplitude,
//! [`crate::measure::trace::coherent_depth_law`]). This law keeps the vectors instead:
//!
//! `e_i = J_i e_{i-1} + d_i`, `e_0` = the head input's noise (zero without output noise),
//!
//! where `d_i` is the layer's **measured one-step error** (its inverse, in the network's dtype,
//! applied to the forward of its stored input, minus that input: the same injection the scalar
//! laws use, kept as a tensor) and `J_i e` is the **Jacobian-vector product of the layer's
//! inverse** at its stored output, computed on the f64 shadow layer by a forward difference with a
//! step of `1e-7 rms(y) / rms(e)` (the f64 roundoff of that difference is about `1e-9`
//! relative; the layer's curvature adds about `1e-7`). The prediction is
//! `10 log10(|x_i|^2 / |e_i|^2)`. It needs one one-step inverse per layer (as the power law)
//! and one f64 forward and two f64 inverses per layer, and no parameter of any kind: nothing is
//! fitted. It leaves out what is second order: the rounding of an inverse fed a perturbed input
//! is a fresh draw of the same size rather than `d_i` itself, and the inverses are linearised
//! (a leaky ReLU whose input's sign the error flips; this is what breaks near 0 dB).
//!
//! **Diagnostics** (NaN where a vector is zero): `chain_step_snr_db`, the SNR of the injection
//! `d_i` the chain gets (against the one-step SNR, which leaves out the fresh roundings);
//! `alpha_error_db`, the alpha of the error that
//! actually arrives (`nsr(y)/nsr(x)` for `e_{i-1}` and `J_i e_{i-1}`), beside the white-noise
//! alpha of the scalar laws; `injection_corr`, the cosine between the carried error `J_i
//! e_{i-1}` and the new injection `d_i` (0: they add in power; 1: in amplitude);
//! `error_signal_corr`, the cosine between `e_i` and the signal `x_i`; and `error_lag1`, the
//! autocorrelation of `e_i` between horizontal neighbours (0 for white noise, toward 1 for
//! noise concentrated at low spatial frequencies).

use crate::error::Result;
use crate::layers::{Layer, Pass};
use crate::measure::snr::{to_db, Snr};
use crate::util::to_f64_vec;
use candle_core::{DType, Tensor};

/// The depth laws a trace predicts with, as (column of `snr_sweep.csv`, label), the
/// recommended one first: this linearised law, the amplitude and power sums
/// ([`crate::measure::trace`]) and eq. 19.
pub const LAWS: [(&str, &str); 4] = [
    ("predicted_snr_db_law", "linearised (recommended)"),
    ("predicted_snr_db_coherent", "amplitude sum"),
    ("predicted_snr_db_rounding", "power sum"),
    ("predicted_snr_db", "eq. 19"),
];

/// Relative size of the finite-difference step of the Jacobian-vector products.
pub const JVP_STEP: f64 = 1e-7;

/// The linearised law's prediction and diagnostics at one top-level entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LawEntry {
    /// Predicted SNR (dB) of the entry's reconstruction.
    pub predicted_snr_db: f64,
    /// Alpha (dB) of the error that reaches this layer's output (NaN if none does).
    pub alpha_error_db: f64,
    /// SNR (dB) of this layer's injection in the chain (`|x|^2 / |d|^2`): beside the one-step
    /// SNR, how much more a layer fed a moved input injects.
    pub chain_step_snr_db: f64,
    /// Cosine between the carried error and this layer's injection.
    pub injection_corr: f64,
    /// Cosine between the predicted error and the signal.
    pub error_signal_corr: f64,
    /// Lag-1 horizontal autocorrelation of the predicted error.
    pub error_lag1: f64,
}

/// One top-level layer as the law takes it: the layer in the network's dtype, its f64 shadow,
/// its stored input (network dtype) and its measured one-step error `d` (f64).
pub struct LawLayer<'a> {
    /// The layer in the network's dtype (state recorded by the network's stored forward).
    pub layer: &'a dyn Layer,
    /// The f64 shadow layer (state recorded by the shadow's stored forward).
    pub shadow: &'a dyn Layer,
    /// The stored input, in the network's dtype.
    pub input: &'a Tensor,
    /// The layer's forward of `input` in the network's dtype (bitwise the stored forward's).
    pub output: &'a Tensor,
    /// The one-step error `inverse(forward(input)) - input`, any dtype.
    pub step_error: &'a Tensor,
    /// Whether the layer's output is held exactly (stored, as the input of a layer above that
    /// is not rebuilt), so that no error reaches it from above.
    pub exact_output: bool,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (dot(a, a), dot(b, b));
    if na == 0.0 || nb == 0.0 {
        f64::NAN
    } else {
        dot(a, b) / (na * nb).sqrt()
    }
}

/// Autocorrelation at lag 1 along the last dimension of a tensor of shape `dims` held flat.
fn lag1(v: &[f64], last: usize) -> f64 {
    let energy = dot(v, v);
    if last < 2 || energy == 0.0 {
        return f64::NAN;
    }
    let mut s = 0.0;
    for row in v.chunks(last) {
        s += dot(&row[..last - 1], &row[1..]);
    }
    s / energy
}

/// Jacobian-vector product of `layer`'s inverse at `y` (f64) along `e` (f64), by a forward
/// difference (module doc).
pub fn inverse_jvp(layer: &dyn Layer, y: &Tensor, e: &Tensor) -> Result<Tensor> {
    let y_rms = (y.sqr()?.mean_all()?.to_scalar::<f64>()?).sqrt();
    let e_rms = (e.sqr()?.mean_all()?.to_scalar::<f64>()?).sqrt();
    let base = layer.inverse(y)?;
    if e_rms == 0.0 {
        return Ok(base.zeros_like()?);
    }
    let h = JVP_STEP * y_rms.max(f64::MIN_POSITIVE) / e_rms;
    let moved = layer.inverse(&(y + (e * h)?)?)?;
    Ok(((moved - base)? / h)?)
}

/// Unit roundoff of a floating dtype (half its machine epsilon).
pub fn unit_roundoff(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => 2f64.powi(-11),
        DType::BF16 => 2f64.powi(-8),
        DType::F32 => 2f64.powi(-24),
        _ => 2f64.powi(-53),
    }
}

/// Ulps by which [`chain_injection`] moves each element of a layer's output.
pub const FRESH_ULPS: f64 = 4.0;

/// The rounding error a layer's inverse injects in the chain (module doc). Where the carried
/// error `e_out` (f64) reaches at least an ulp of the layer's output `y` (network dtype), the rebuilt
/// output is not bitwise the forward's, so the inverse draws fresh roundings there: those
/// elements of `y` are moved by about [`FRESH_ULPS`] ulps, `y~ = y (1 + 4 u z)`, `z ~ N(0, 1)`
/// from `seed`, rounded to the dtype; the others are left as they are. The injection is
/// `inverse(y~) - x - J (y~ - y)`: the one-step error less the linear response to the move
/// (`J` on the f64 shadow, [`inverse_jvp`]). With nothing moved it is the one-step error itself.
/// `x64` is the stored input in f64 on `device`. Returned in f64 on `device`.
pub fn chain_injection(
    l: &LawLayer,
    x64: &Tensor,
    e_out: &Tensor,
    device: &candle_core::Device,
    seed: u64,
) -> Result<Tensor> {
    let y = l.output;
    let dtype = y.dtype();
    let u = unit_roundoff(dtype);
    let y64 = y.to_dtype(DType::F64)?;
    let reached = e_out
        .to_device(y.device())?
        .abs()?
        .ge(&(y64.abs()? * u)?)?
        .to_dtype(DType::F64)?;
    if reached.sum_all()?.to_scalar::<f64>()? == 0.0 {
        return Ok(l.step_error.to_dtype(DType::F64)?.to_device(device)?);
    }
    let mut rng = crate::util::rng_for(seed, "law-chain-injection");
    let z = crate::util::randn(&mut rng, y.dims(), 0.0, 1.0, DType::F64, y.device())?;
    let factor = ((z * reached)? * (FRESH_ULPS * u))?.affine(1.0, 1.0)?;
    let moved = (&y64 * factor)?.to_dtype(dtype)?;
    let step = (moved.to_dtype(DType::F64)? - &y64)?.to_device(device)?;
    let rebuilt = l
        .layer
        .inverse(&moved)?
        .to_dtype(DType::F64)?
        .to_device(device)?;
    let response = inverse_jvp(l.shadow, &y64.to_device(device)?, &step)?;
    Ok(((rebuilt - x64)? - response)?)
}

/// The linearised law over `layers` (top down), from the head input's error `head_error` (any
/// dtype; `None` without output noise): one entry per layer (module doc). The shadow layers'
/// device (the CPU when the network's device has no f64) is `device`.
pub fn linearised_law(
    head_error: Option<&Tensor>,
    layers: &[LawLayer],
    device: &candle_core::Device,
    seed: u64,
) -> Result<Vec<LawEntry>> {
    let mut carried_in: Option<Tensor> = match head_error {
        Some(e) => Some(e.to_dtype(DType::F64)?.to_device(device)?),
        None => None,
    };
    let mut out = Vec::with_capacity(layers.len());
    for l in layers {
        let x64 = l.input.to_dtype(DType::F64)?.to_device(device)?;
        let y64 = l.shadow.forward_pass(&x64, Pass::Replay)?;
        let e_out = match carried_in {
            Some(e) if !l.exact_output => e,
            _ => y64.zeros_like()?,
        };
        let carried = inverse_jvp(l.shadow, &y64, &e_out)?;
        // An inverse fed its forward's exact output repeats the forward's roundings (the
        // one-step error); where the error has moved it, it draws fresh ones.
        let d = chain_injection(l, &x64, &e_out, device, seed ^ (out.len() as u64))?;
        let e = (&carried + &d)?;
        let (xv, yv, eo, cv, dv, ev) = (
            to_f64_vec(&x64)?,
            to_f64_vec(&y64)?,
            to_f64_vec(&e_out)?,
            to_f64_vec(&carried)?,
            to_f64_vec(&d)?,
            to_f64_vec(&e)?,
        );
        let (sx, sy) = (dot(&xv, &xv), dot(&yv, &yv));
        let (n_out, n_carried, n_e) = (dot(&eo, &eo), dot(&cv, &cv), dot(&ev, &ev));
        let alpha_error_db = if n_out == 0.0 || n_carried == 0.0 {
            f64::NAN
        } else {
            to_db((n_out / sy) / (n_carried / sx))
        };
        let last = *x64.dims().last().unwrap_or(&1);
        let snr_db = |noise: f64| Snr { signal: sx, noise }.db();
        out.push(LawEntry {
            predicted_snr_db: snr_db(n_e),
            alpha_error_db,
            chain_step_snr_db: snr_db(dot(&dv, &dv)),
            injection_corr: cosine(&cv, &dv),
            error_signal_corr: cosine(&ev, &xv),
            error_lag1: lag1(&ev, last),
        });
        carried_in = Some(e);
    }
    Ok(out)
}

/// Median and max of |predicted - measured| over the pairs `(measured, predicted)` whose
/// measurement is finite and above 0 dB, with their count; a non-finite prediction counts as an
/// infinite error. `None` without such pairs.
pub fn error_stats(pairs: impl Iterator<Item = (f64, f64)>) -> Option<(usize, f64, f64)> {
    let e: Vec<f64> = pairs
        .filter(|(m, _)| m.is_finite() && *m > 0.0)
        .map(|(m, p)| {
            if p.is_finite() {
                (p - m).abs()
            } else {
                f64::INFINITY
            }
        })
        .collect();
    let max = e.iter().copied().fold(f64::NAN, f64::max);
    (!e.is_empty()).then(|| (e.len(), crate::util::median(&e), max))
}
