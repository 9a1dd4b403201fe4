//! alpha, the SNR reduction factor of an inverse (paper eq. 17-18): `alpha = snr_in / snr_out`
//! when the inverse of a layer is fed its output plus noise, `x_hat = f^{-1}(y + e_y)`.
//! `alpha < 1` means the inverse loses SNR; in dB, `10 log10(alpha)` adds to the SNR.
//!
//! Theory (docs/design.md section 4):
//! - toy batch norm, 2 channels, `beta = 0`, `gamma = [1, rho]`, unit Gaussian input (eq. 23c):
//!   `alpha = 4 / ((1 + 1/rho^2)(1 + rho^2))`;
//! - leaky ReLU of slope `n`, while noise << signal (eq. 32c): the same with `n` for `rho`;
//! - general batch norm, `c` channels with input means `mu_i`, variances `v_i`,
//!   `s_i = sqrt(v_i + eps)`, `g~_i = |gamma_i + eps_i|`, white output noise:
//!   `alpha = [sum(mu_i^2 + v_i) / sum(g~_i^2 + beta_i^2)] * [c / sum(s_i^2 / g~_i^2)]`.
//!   The paper's printed eq. 25g/26d drops the squares in the last sum
//!   (`c / sum(s_i / g~_i)`, [`alpha_general_bn_printed`]); the squared form is the one that
//!   reduces to the toy case and the one the measurements follow (see the tests).

use crate::error::{Error, Result};
use crate::layers::{Layer, Pass};
use crate::measure::snr::Snr;
use candle_core::Tensor;

/// Toy batch norm alpha, eq. 23c: `4 / ((1 + 1/rho^2)(1 + rho^2))`. Symmetric in `rho <-> 1/rho`.
pub fn alpha_toy_bn(rho: f64) -> f64 {
    4.0 / ((1.0 + 1.0 / (rho * rho)) * (1.0 + rho * rho))
}

/// Leaky ReLU alpha, eq. 32c, slope `n > 0` (valid while noise << signal).
pub fn alpha_leaky_relu(slope: f64) -> f64 {
    alpha_toy_bn(slope)
}

/// Per-channel description of a batch norm and its input, for [`alpha_general_bn`].
#[derive(Debug, Clone)]
pub struct BnChannels {
    /// Input means `mu_i`.
    pub mean: Vec<f64>,
    /// Input variances `v_i`.
    pub var: Vec<f64>,
    /// `gamma_i`.
    pub gamma: Vec<f64>,
    /// `beta_i`.
    pub beta: Vec<f64>,
    /// `eps` inside the square root.
    pub eps: f64,
    /// The reparameterisation's `eps_i`; `g~ = |gamma + eps_i|`.
    pub eps_i: f64,
}

impl BnChannels {
    fn check(&self) -> Result<()> {
        let c = self.mean.len();
        if c == 0 || self.var.len() != c || self.gamma.len() != c || self.beta.len() != c {
            return Err(Error::ShapeMismatch {
                context: "batch-norm alpha: the lengths of mean, var, gamma and beta".into(),
                expected: "four equal nonzero lengths".into(),
                got: vec![c, self.var.len(), self.gamma.len(), self.beta.len()],
            });
        }
        Ok(())
    }

    fn scales(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        // (s_i, g~_i)
        self.var
            .iter()
            .zip(&self.gamma)
            .map(|(v, g)| ((v + self.eps).sqrt(), (g + self.eps_i).abs()))
    }

    fn signal_ratio(&self) -> f64 {
        let x2: f64 = self
            .mean
            .iter()
            .zip(&self.var)
            .map(|(m, v)| m * m + v)
            .sum();
        let y2: f64 = self
            .scales()
            .zip(&self.beta)
            .map(|((_, g), b)| g * g + b * b)
            .sum();
        x2 / y2
    }
}

/// General batch norm alpha, squared form (docs/design.md section 4).
pub fn alpha_general_bn(bn: &BnChannels) -> Result<f64> {
    bn.check()?;
    let c = bn.mean.len() as f64;
    let noise: f64 = bn.scales().map(|(s, g)| (s * s) / (g * g)).sum();
    Ok(bn.signal_ratio() * c / noise)
}

/// General batch norm alpha as printed in the paper (eq. 25g/26d, no squares in the last sum).
/// Kept to show that the measurements do *not* follow it.
pub fn alpha_general_bn_printed(bn: &BnChannels) -> Result<f64> {
    bn.check()?;
    let c = bn.mean.len() as f64;
    let noise: f64 = bn.scales().map(|(s, g)| s / g).sum();
    Ok(bn.signal_ratio() * c / noise)
}

/// An empirical alpha measurement.
#[derive(Debug, Clone, Copy)]
pub struct AlphaEstimate {
    /// `snr_in / snr_out`.
    pub alpha: f64,
    /// SNR of the reconstructed input.
    pub snr_in: f64,
    /// SNR of the noisy output fed to the inverse.
    pub snr_out: f64,
}

/// Empirical alpha of `layer` at input `x`: forward (recording the state the inverse needs), add
/// white Gaussian noise of std `noise_std` to the output (drawn in f64 from `seed`, then cast to
/// the output dtype), invert, and return `snr_in / snr_out`. Both SNRs are computed in f64 against
/// the exact `x` and `y`.
///
/// The paper's setting (Fig. 5-6) is a unit Gaussian input and `noise_std = 1e-5`.
pub fn empirical_alpha(
    layer: &dyn Layer,
    x: &Tensor,
    noise_std: f64,
    seed: u64,
) -> Result<AlphaEstimate> {
    empirical_alpha_with(layer, x, noise_std, seed, Pass::Record)
}

/// [`empirical_alpha`] with the forward run under `pass`: [`Pass::Replay`] keeps the batch
/// statistics recorded by an earlier forward (e.g. to measure a network's layers on a sub-batch
/// with the statistics of the whole batch).
pub fn empirical_alpha_with(
    layer: &dyn Layer,
    x: &Tensor,
    noise_std: f64,
    seed: u64,
    pass: Pass,
) -> Result<AlphaEstimate> {
    if !(noise_std.is_finite() && noise_std > 0.0) {
        return Err(Error::config("noise std", "a finite value > 0", noise_std));
    }
    crate::util::ensure_finite(x, &format!("empirical alpha of {}", layer.name()))?;
    let y = layer.forward_pass(x, pass)?;
    let mut rng = crate::util::rng_for(seed, "alpha-noise");
    let noise = crate::util::randn(&mut rng, y.dims(), 0.0, noise_std, y.dtype(), y.device())?;
    let y_noisy = (&y + &noise)?;
    let x_hat = layer.inverse(&y_noisy)?;
    let snr_out = Snr::of(&y, &y_noisy)?.ratio();
    let snr_in = Snr::of(x, &x_hat)?.ratio();
    Ok(AlphaEstimate {
        alpha: snr_in / snr_out,
        snr_in,
        snr_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toy_formula_closed_forms() {
        assert!((alpha_toy_bn(1.0) - 1.0).abs() < 1e-15);
        // rho = 2: 4 / (1.25 * 5) = 0.64
        assert!((alpha_toy_bn(2.0) - 0.64).abs() < 1e-15);
        // symmetric in rho <-> 1/rho
        assert!((alpha_toy_bn(0.1) - alpha_toy_bn(10.0)).abs() < 1e-15);
    }

    #[test]
    fn general_reduces_to_toy() {
        for rho in [0.01, 0.3, 1.0, 7.0, 100.0] {
            let bn = BnChannels {
                mean: vec![0.0, 0.0],
                var: vec![1.0, 1.0],
                gamma: vec![1.0, rho],
                beta: vec![0.0, 0.0],
                eps: 0.0,
                eps_i: 0.0,
            };
            let a = alpha_general_bn(&bn).unwrap();
            assert!(
                (a / alpha_toy_bn(rho) - 1.0).abs() < 1e-12,
                "rho {rho}: {a} vs {}",
                alpha_toy_bn(rho)
            );
        }
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        let bn = BnChannels {
            mean: vec![0.0],
            var: vec![1.0, 1.0],
            gamma: vec![1.0],
            beta: vec![0.0],
            eps: 0.0,
            eps_i: 0.0,
        };
        assert!(matches!(
            alpha_general_bn(&bn),
            Err(Error::ShapeMismatch { .. })
        ));
    }
}
