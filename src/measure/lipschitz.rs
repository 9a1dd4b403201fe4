//! Local Lipschitz constants of a layer's forward and inverse at a batch (Behrmann et al. 2021,
//! "Understanding and mitigating exploding inverses in invertible neural networks").
//!
//! The local Lipschitz constant of a differentiable map `f` at `x` is the largest singular value
//! of its Jacobian, `sigma_max(J_f(x)) = max_v |J v| / |v|`: no perturbation of `x` small enough
//! for the linearisation to hold grows by more than that factor (a plain ratio of 2-norms, no
//! unit). For an inverse it bounds how much a reconstruction can amplify the error it is fed; alpha
//! ([`crate::measure::alpha`]) measures what *white* noise actually suffers, in SNR terms.
//!
//! Algorithm: power iteration on `J^T J`, [`POWER_ITERATIONS`] steps at most, stopping when the
//! estimate changes by less than [`POWER_TOL`] (relative) between two steps. Each step:
//! - `J v` by a central finite difference in f64, `(f(x + h v) - f(x - h v)) / (2 h)` with
//!   `|v| = 1` and `h = `[`FD_STEP`]` * |x|` (about `1e-6` of an element's magnitude per
//!   element: the layers are affine or piecewise linear, so the difference is exact up to f64
//!   rounding, about `1e-10` relative, and to the few leaky-ReLU inputs within `h` of zero);
//! - `J^T (J v)` by candle's autograd of the same `f` at `x` (a vector-Jacobian product);
//! - the estimate is `|J v|`, and `v <- J^T J v / |J^T J v|`.
//!
//! The start vector is Gaussian from the seed. Power iteration approaches `sigma_max` from below
//! (each estimate is a lower bound): with close leading singular values it may stop short; the
//! [`SpectralEstimate`] says how many steps ran and whether the tolerance was met.
//!
//! Conventions of [`layer_lipschitz`]: the whole batch tensor is one vector (the norms are over
//! every element of the batch); the layer runs on the f64 shadow network, its forward in
//! [`Pass::Replay`] (the batch statistics recorded by the stored forward held fixed) and its
//! inverse with the same recorded state, which are the maps the reconstruction applies. With the
//! statistics fixed, batch norm does not couple samples, so the batch value is the largest of the
//! per-sample ones. [`spectral_norm_of_layer`] takes the forward's pass: [`Pass::Graph`]
//! (training mode: batch statistics from the input, which couples the samples) or [`Pass::Eval`]
//! (running statistics).

use crate::error::{Error, Result};
use crate::layers::{Layer, Pass};
use candle_core::{DType, Tensor, Var};

/// Most power-iteration steps per estimate.
pub const POWER_ITERATIONS: usize = 30;
/// Relative change of the estimate between two steps below which the iteration stops.
pub const POWER_TOL: f64 = 1e-4;
/// Finite-difference step relative to `|x|` (2-norm of the whole batch tensor).
pub const FD_STEP: f64 = 1e-6;

/// A power-iteration estimate of a Jacobian's largest singular value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectralEstimate {
    /// The estimate of `sigma_max` (a plain ratio of 2-norms).
    pub sigma: f64,
    /// Power-iteration steps run.
    pub iterations: usize,
    /// Whether the relative change fell below the tolerance.
    pub converged: bool,
}

/// Options of [`spectral_norm`].
#[derive(Debug, Clone, Copy)]
pub struct PowerOptions {
    /// Most steps.
    pub max_iterations: usize,
    /// Relative tolerance on the estimate.
    pub tol: f64,
    /// Seed of the start vector.
    pub seed: u64,
}

impl Default for PowerOptions {
    fn default() -> Self {
        PowerOptions {
            max_iterations: POWER_ITERATIONS,
            tol: POWER_TOL,
            seed: 0,
        }
    }
}

/// Forward and inverse Lipschitz estimates of one layer at a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerLipschitz {
    /// `sigma_max` of the forward's Jacobian.
    pub forward: SpectralEstimate,
    /// `sigma_max` of the inverse's Jacobian (at the forward's output).
    pub inverse: SpectralEstimate,
}

fn norm(t: &Tensor) -> Result<f64> {
    Ok(t.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt())
}

/// `sigma_max` of the Jacobian of `f` at `x` by power iteration on `J^T J` (module doc). `x` must
/// be f64 and `f` differentiable by candle's autograd (candle ops on a tracked input).
pub fn spectral_norm<F>(f: F, x: &Tensor, opts: PowerOptions) -> Result<SpectralEstimate>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    if x.dtype() != DType::F64 {
        let got = format!("{:?}", x.dtype());
        return Err(Error::config(
            "spectral norm: the input",
            "an f64 tensor",
            got,
        ));
    }
    if opts.max_iterations == 0 || !(opts.tol.is_finite() && opts.tol > 0.0) {
        return Err(Error::config(
            "spectral norm: max_iterations and tol",
            "max_iterations >= 1 and a finite tol > 0",
            format!("{}, {}", opts.max_iterations, opts.tol),
        ));
    }
    crate::util::ensure_finite(x, "spectral norm input")?;
    let x = x.detach();
    let x_norm = norm(&x)?;
    let h = if x_norm > 0.0 {
        FD_STEP * x_norm
    } else {
        FD_STEP
    };
    let mut rng = crate::util::rng_for(opts.seed, "lipschitz-start");
    let mut v = crate::util::randn(&mut rng, x.dims(), 0.0, 1.0, DType::F64, x.device())?;
    v = (&v / norm(&v)?)?;
    let mut previous = f64::NAN;
    let mut sigma = 0.0;
    for k in 1..=opts.max_iterations {
        let step = (&v * h)?;
        let jv = ((f(&(&x + &step)?)? - f(&(&x - &step)?)?)? / (2.0 * h))?;
        sigma = norm(&jv)?;
        if sigma == 0.0 {
            return Ok(SpectralEstimate {
                sigma,
                iterations: k,
                converged: true,
            });
        }
        let leaf = Var::from_tensor(&x)?;
        let out = f(leaf.as_tensor())?;
        let dot = out.mul(&jv.to_dtype(out.dtype())?)?.sum_all()?;
        let grads = dot.backward()?;
        let jtjv = grads
            .get(leaf.as_tensor())
            .ok_or_else(|| {
                Error::numeric(
                    "spectral norm",
                    "a gradient at the input (a function differentiable by autograd)",
                    "none",
                )
            })?
            .detach();
        let n = norm(&jtjv)?;
        if !n.is_finite() || n == 0.0 {
            return Err(Error::numeric(
                "spectral norm: |J^T J v|",
                format!("a finite nonzero norm (|J v| = {sigma})"),
                n,
            ));
        }
        v = (&jtjv / n)?;
        if previous.is_finite() && (sigma - previous).abs() <= opts.tol * sigma {
            return Ok(SpectralEstimate {
                sigma,
                iterations: k,
                converged: true,
            });
        }
        previous = sigma;
    }
    Ok(SpectralEstimate {
        sigma,
        iterations: opts.max_iterations,
        converged: false,
    })
}

/// `sigma_max` of the Jacobian of `layer`'s forward under `pass` at `x` (f64).
pub fn spectral_norm_of_layer(
    layer: &dyn Layer,
    x: &Tensor,
    pass: Pass,
    opts: PowerOptions,
) -> Result<SpectralEstimate> {
    spectral_norm(|t| layer.forward_pass(t, pass), x, opts)
}

/// `sigma_max` of the Jacobian of `layer`'s inverse at `y` (f64), with the state recorded by the
/// layer's last recording forward.
pub fn spectral_norm_of_inverse(
    layer: &dyn Layer,
    y: &Tensor,
    opts: PowerOptions,
) -> Result<SpectralEstimate> {
    if !layer.is_invertible() {
        let e = "an invertible layer (to take the Lipschitz constant of its inverse)";
        return Err(Error::config(layer.name(), e, "a layer without an inverse"));
    }
    spectral_norm(|t| layer.inverse(t), y, opts)
}

/// Forward and inverse Lipschitz estimates of an (f64, recorded) layer at its input `x`, with the
/// conventions of the module doc: forward in [`Pass::Replay`], inverse at `y = forward(x)`.
pub fn layer_lipschitz(layer: &dyn Layer, x: &Tensor, seed: u64) -> Result<LayerLipschitz> {
    let opts = PowerOptions {
        seed,
        ..Default::default()
    };
    let forward = spectral_norm_of_layer(layer, x, Pass::Replay, opts)?;
    let y = layer.forward_pass(x, Pass::Replay)?;
    let inverse = spectral_norm_of_inverse(layer, &y, opts)?;
    Ok(LayerLipschitz { forward, inverse })
}
