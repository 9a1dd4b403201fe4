//! Signal-to-noise ratio of a reconstruction (paper eq. 17).
//!
//! `snr(z, z_hat) = sum(z^2) / sum((z_hat - z)^2)`, accumulated in f64 whatever the tensors'
//! dtype, so that half-precision tensors are not summed in half precision. An exact
//! reconstruction gives `+inf` (never NaN); a zero signal with a nonzero error gives `0`; a
//! reconstruction that overflowed to inf or NaN (while the reference is finite) has infinite noise,
//! so its SNR is `0` (`-inf` dB).

use crate::error::{Error, Result};
use crate::util::to_f64_vec;
use candle_core::Tensor;

/// Signal and noise energies of a reconstruction, kept apart so that sums over several tensors
/// (or layers) can be combined before taking the ratio.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Snr {
    /// `sum(z^2)`
    pub signal: f64,
    /// `sum((z_hat - z)^2)`
    pub noise: f64,
}

impl Snr {
    /// Compare `reconstructed` with `reference` (same shape, any dtypes).
    pub fn of(reference: &Tensor, reconstructed: &Tensor) -> Result<Snr> {
        if reference.dims() != reconstructed.dims() {
            return Err(Error::ShapeMismatch {
                context: "snr: reconstruction vs reference".into(),
                expected: format!("{:?}", reference.dims()),
                got: reconstructed.dims().to_vec(),
            });
        }
        let z = to_f64_vec(reference)?;
        let z_hat = to_f64_vec(reconstructed)?;
        Ok(Self::of_slices(&z, &z_hat))
    }

    /// Compare two f64 slices of equal length.
    pub fn of_slices(reference: &[f64], reconstructed: &[f64]) -> Snr {
        let mut signal = 0.0;
        let mut noise = 0.0;
        for (a, b) in reference.iter().zip(reconstructed) {
            signal += a * a;
            // A reconstruction that overflowed (inf, or inf - inf = NaN) carries infinite noise.
            let d = if b.is_finite() || !a.is_finite() {
                b - a
            } else {
                f64::INFINITY
            };
            noise += d * d;
        }
        Snr { signal, noise }
    }

    /// The ratio `signal / noise`: `+inf` for a zero noise (exact reconstruction), NaN only if
    /// an input held NaN.
    pub fn ratio(&self) -> f64 {
        if self.noise == 0.0 {
            f64::INFINITY
        } else {
            self.signal / self.noise
        }
    }

    /// `10 log10(ratio)`: `+inf` for an exact reconstruction.
    pub fn db(&self) -> f64 {
        to_db(self.ratio())
    }
}

/// SNR as a ratio (see the module doc).
pub fn snr(reference: &Tensor, reconstructed: &Tensor) -> Result<f64> {
    Ok(Snr::of(reference, reconstructed)?.ratio())
}

/// SNR in dB, `10 log10(snr)`; `+inf` for an exact reconstruction.
pub fn snr_db(reference: &Tensor, reconstructed: &Tensor) -> Result<f64> {
    Ok(Snr::of(reference, reconstructed)?.db())
}

/// `10 log10(ratio)`, with `+inf` for `+inf`.
pub fn to_db(ratio: f64) -> f64 {
    if ratio.is_infinite() && ratio > 0.0 {
        f64::INFINITY
    } else {
        10.0 * ratio.log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn exact_reconstruction_is_infinite_not_nan() {
        let z = Tensor::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap();
        assert_eq!(snr(&z, &z).unwrap(), f64::INFINITY);
        assert_eq!(snr_db(&z, &z).unwrap(), f64::INFINITY);
        let zero = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(snr(&zero, &zero).unwrap(), f64::INFINITY);
    }

    #[test]
    fn closed_form_ratio_and_db() {
        // signal 1+4 = 5, noise 0.01+0.04 = 0.05 -> ratio 100, 20 dB
        let z = Tensor::new(&[1.0f64, 2.0], &Device::Cpu).unwrap();
        let zh = Tensor::new(&[1.1f64, 2.2], &Device::Cpu).unwrap();
        let r = snr(&z, &zh).unwrap();
        assert!((r - 100.0).abs() < 1e-9, "ratio {r}");
        assert!((snr_db(&z, &zh).unwrap() - 20.0).abs() < 1e-9);
    }

    #[test]
    fn half_precision_is_accumulated_in_f64() {
        // 100000 ones in f16 would sum to 2048 in f16; the SNR must see the whole signal.
        let z = Tensor::ones(100_000, DType::F16, &Device::Cpu).unwrap();
        let zh = (&z * 2.0).unwrap();
        let s = Snr::of(&z, &zh).unwrap();
        assert_eq!(s.signal, 100_000.0);
        assert_eq!(s.noise, 100_000.0);
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let a = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(snr(&a, &b), Err(Error::ShapeMismatch { .. })));
    }
}
