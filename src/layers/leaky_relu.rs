//! Invertible leaky ReLU (paper sec. 4.1.3, eq. 28).
//!
//! Convention (the usual slope; docs/design.md section 1): `y = x` if `x > 0`, else `y = n x`, with `n > 0`;
//! inverse `x = y` if `y > 0`, else `x = y / n`. The paper's eq. 28 prints `x / n`; its alpha
//! (eq. 32) is symmetric in `n <-> 1/n` so both conventions give the same SNR loss. `n <= 0` is not
//! invertible and is rejected. Computed in the storage dtype (one fused pass for `f32`/`f64` CPU
//! tensors under [`Backend::Kernels`], [`crate::backend::cpu::leaky_relu()`], with the values of
//! candle's ops: `x * n`, and the correctly rounded division `y / n`, `n` rounded to the dtype;
//! not `y * (1/n)`, whose rounded reciprocal adds a rounding of its own). Derivative: 1 for
//! `x > 0`, `n` otherwise (at `x = 0` the derivative is `n`; `where_cond` keeps it clean, with no
//! split gradient at ties).

use super::{Grads, Invertible, Layer, Param, Pass};
use crate::backend::{cpu, Backend};
use crate::error::{Error, Result};
use candle_core::Tensor;

/// Invertible leaky ReLU with slope `n > 0`.
pub struct InvLeakyReLU {
    name: String,
    slope: f64,
    backend: Backend,
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
            backend: Backend::default(),
        })
    }

    /// The same layer computed by `backend` (default [`Backend::Kernels`]).
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The backend that computes it.
    pub fn backend(&self) -> Backend {
        self.backend
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
    fn forward_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        if !pass.tracks_params() && !x.track_op() && self.backend.applies(x) && x.rank() == 4 {
            return cpu::leaky_relu(x, self.slope, false);
        }
        let positive = x.gt(0.0)?;
        Ok(positive.where_cond(x, &x.affine(self.slope, 0.0)?)?)
    }
    fn is_invertible(&self) -> bool {
        true
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        if !y.track_op() && self.backend.applies(y) && y.rank() == 4 {
            return cpu::leaky_relu(y, self.slope, true);
        }
        let positive = y.gt(0.0)?;
        // A true division by `n` (in the dtype of `y`): candle's `tensor / f64` multiplies by
        // the rounded reciprocal, which adds a rounding of its own (about 4 dB of the first
        // reconstruction's SNR at n = 0.01).
        let n = Tensor::new(self.slope, y.device())?.to_dtype(y.dtype())?;
        Ok(positive.where_cond(y, &y.broadcast_div(&n)?)?)
    }
    fn params(&self) -> Vec<Param> {
        Vec::new()
    }
    fn vjp_at_output(&self) -> bool {
        true
    }
    /// `dx = dy` where `x > 0`, else `n dy` (`x` may be the output: same sign).
    fn vjp(
        &self,
        input: &Tensor,
        grad_output: &Tensor,
        _grads: Option<&mut Grads>,
    ) -> Result<Tensor> {
        if self.backend.applies(input) && grad_output.dtype() == input.dtype() && input.rank() == 4
        {
            return cpu::leaky_relu_backward(input, grad_output, self.slope);
        }
        let g = grad_output.to_dtype(input.dtype())?;
        Ok(input.gt(0.0)?.where_cond(&g, &g.affine(self.slope, 0.0)?)?)
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
