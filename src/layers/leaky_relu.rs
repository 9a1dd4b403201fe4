//! Invertible leaky ReLU (paper sec. 4.1.3, eq. 28).
//!
//! Convention (the usual slope; DESIGN.md 1): `y = x` if `x > 0`, else `y = n x`, with `n > 0`;
//! inverse `x = y` if `y > 0`, else `x = y / n`. The paper's eq. 28 prints `x / n`; its alpha
//! (eq. 32) is symmetric in `n <-> 1/n` so both conventions give the same SNR loss. `n <= 0` is not
//! invertible and is rejected. Computed in the storage dtype. Derivative: 1 for `x > 0`, `n`
//! otherwise (at `x = 0` the derivative is `n`; `where_cond` keeps it clean, with no split
//! gradient at ties).

use super::{Invertible, Layer, Param, Pass};
use crate::error::{Error, Result};
use candle_core::Tensor;

/// Invertible leaky ReLU with slope `n > 0`.
pub struct InvLeakyReLU {
    name: String,
    slope: f64,
}

impl InvLeakyReLU {
    /// A leaky ReLU of slope `slope`; [`Error::InvalidSlope`] unless `slope` is finite and > 0.
    pub fn new(name: &str, slope: f64) -> Result<Self> {
        if !(slope.is_finite() && slope > 0.0) {
            return Err(Error::InvalidSlope { slope });
        }
        Ok(InvLeakyReLU {
            name: name.into(),
            slope,
        })
    }

    /// The slope `n`.
    pub fn slope(&self) -> f64 {
        self.slope
    }
}

impl Layer for InvLeakyReLU {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, _pass: Pass) -> Result<Tensor> {
        let positive = x.gt(0.0)?;
        Ok(positive.where_cond(x, &x.affine(self.slope, 0.0)?)?)
    }
    fn is_invertible(&self) -> bool {
        true
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let positive = y.gt(0.0)?;
        Ok(positive.where_cond(y, &(y / self.slope)?)?)
    }
    fn params(&self) -> Vec<Param> {
        Vec::new()
    }
}

impl candle_nn::Module for InvLeakyReLU {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_pass(xs, Pass::Record)
            .map_err(candle_core::Error::wrap)
    }
}

impl Invertible for InvLeakyReLU {
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Layer::inverse(self, y)
    }
}
