//! Pooling: the volume-preserving permutations P_c (channel pooling, space-to-depth) and P_b
//! (batch pooling, space-to-batch) of paper sec. 4.1.5, eq. 33, and the non-invertible 2x2 max
//! pooling of ResNet/RevNet.
//!
//! Index conventions (2x2 regions, offsets `i, j` in `{0, 1}`):
//! - P_c: `y[n, 4c + 2i + j, u, v] = x[n, c, 2u + i, 2v + j]`, `(b,c,h,w) -> (b,4c,h/2,w/2)`;
//! - P_b: `y[(2i + j) b + n, c, u, v] = x[n, c, 2u + i, 2v + j]`, `(b,c,h,w) -> (4b,c,h/2,w/2)`.
//!
//! Both are pure permutations: their inverse is exact in every dtype (infinite SNR). Odd heights
//! or widths are an [`Error::OddSpatial`].

use super::{check_nchw, Grads, Invertible, Layer, Param, Pass};
use crate::error::{Error, Result};
use candle_core::Tensor;

fn check_even(x: &Tensor, layer: &str) -> Result<(usize, usize, usize, usize)> {
    let (b, c, h, w) = check_nchw(x, layer)?;
    if h % 2 != 0 || w % 2 != 0 {
        return Err(Error::OddSpatial {
            layer: layer.into(),
            height: h,
            width: w,
        });
    }
    Ok((b, c, h, w))
}

/// Channel pooling P_c (space-to-depth).
pub struct ChannelPool {
    name: String,
}

impl ChannelPool {
    /// A channel pooling layer.
    pub fn new(name: &str) -> Self {
        ChannelPool { name: name.into() }
    }
}

impl Layer for ChannelPool {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, _pass: Pass) -> Result<Tensor> {
        let (b, c, h, w) = check_even(x, &self.name)?;
        Ok(x.reshape((b, c, h / 2, 2, w / 2, 2))?
            .permute((0, 1, 3, 5, 2, 4))?
            .reshape((b, 4 * c, h / 2, w / 2))?)
    }
    fn is_invertible(&self) -> bool {
        true
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let (b, c4, h2, w2) = check_nchw(y, &self.name)?;
        if c4 % 4 != 0 {
            return Err(Error::BadChannels {
                layer: self.name.clone(),
                expected: "a multiple of 4".into(),
                got: c4,
            });
        }
        let c = c4 / 4;
        Ok(y.reshape((b, c, 2, 2, h2, w2))?
            .permute((0, 1, 4, 2, 5, 3))?
            .reshape((b, c, 2 * h2, 2 * w2))?)
    }
    fn params(&self) -> Vec<Param> {
        Vec::new()
    }
    /// A permutation: the input gradient is the inverse permutation of the output gradient.
    fn vjp(
        &self,
        _input: &Tensor,
        grad_output: &Tensor,
        _grads: Option<&mut Grads>,
    ) -> Result<Tensor> {
        Layer::inverse(self, grad_output)
    }
}

/// Batch pooling P_b (space-to-batch).
pub struct BatchPool {
    name: String,
}

impl BatchPool {
    /// A batch pooling layer.
    pub fn new(name: &str) -> Self {
        BatchPool { name: name.into() }
    }
}

impl Layer for BatchPool {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, _pass: Pass) -> Result<Tensor> {
        let (b, c, h, w) = check_even(x, &self.name)?;
        Ok(x.reshape((b, c, h / 2, 2, w / 2, 2))?
            .permute((3, 5, 0, 1, 2, 4))?
            .reshape((4 * b, c, h / 2, w / 2))?)
    }
    fn is_invertible(&self) -> bool {
        true
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let (b4, c, h2, w2) = check_nchw(y, &self.name)?;
        if b4 % 4 != 0 {
            return Err(Error::ShapeMismatch {
                context: format!("{}: inverse", self.name),
                expected: "a batch that is a multiple of 4".into(),
                got: y.dims().to_vec(),
            });
        }
        let b = b4 / 4;
        Ok(y.reshape((2, 2, b, c, h2, w2))?
            .permute((2, 3, 4, 0, 5, 1))?
            .reshape((b, c, 2 * h2, 2 * w2))?)
    }
    fn params(&self) -> Vec<Param> {
        Vec::new()
    }
    /// A permutation: the input gradient is the inverse permutation of the output gradient.
    fn vjp(
        &self,
        _input: &Tensor,
        grad_output: &Tensor,
        _grads: Option<&mut Grads>,
    ) -> Result<Tensor> {
        Layer::inverse(self, grad_output)
    }
}

/// 2x2 max pooling, stride 2 (not invertible: its input is stored).
pub struct MaxPool2 {
    name: String,
}

impl MaxPool2 {
    /// A 2x2 max pooling layer.
    pub fn new(name: &str) -> Self {
        MaxPool2 { name: name.into() }
    }
}

impl Layer for MaxPool2 {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, _pass: Pass) -> Result<Tensor> {
        // A max over the 4 elements of each region rather than candle's `max_pool2d`, whose
        // backward (candle 0.11) scales the gradient by (number of maxima)/4 instead of
        // 1/(number of maxima), i.e. returns a quarter of the true gradient.
        let (b, c, h, w) = check_even(x, &self.name)?;
        Ok(x.reshape((b, c, h / 2, 2, w / 2, 2))?
            .permute((0, 1, 2, 4, 3, 5))?
            .reshape((b, c, h / 2, w / 2, 4))?
            .max(4)?)
    }
    fn is_invertible(&self) -> bool {
        false
    }
    fn params(&self) -> Vec<Param> {
        Vec::new()
    }
    /// The output gradient goes to every element equal to its region's maximum (candle's
    /// gradient of `max`: with ties, each maximum gets the whole gradient).
    fn vjp(
        &self,
        input: &Tensor,
        grad_output: &Tensor,
        _grads: Option<&mut Grads>,
    ) -> Result<Tensor> {
        let (b, c, h, w) = check_even(input, &self.name)?;
        let regions = input
            .reshape((b, c, h / 2, 2, w / 2, 2))?
            .permute((0, 1, 2, 4, 3, 5))?
            .reshape((b, c, h / 2, w / 2, 4))?;
        let max = regions.max_keepdim(4)?;
        let mask = regions.broadcast_eq(&max)?.to_dtype(input.dtype())?;
        let g = grad_output
            .to_dtype(input.dtype())?
            .reshape((b, c, h / 2, w / 2, 1))?;
        Ok(mask
            .broadcast_mul(&g)?
            .reshape((b, c, h / 2, w / 2, 2, 2))?
            .permute((0, 1, 2, 4, 3, 5))?
            .reshape((b, c, h, w))?)
    }
}

macro_rules! module_impl {
    ($t:ty) => {
        impl candle_nn::Module for $t {
            fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
                self.forward_pass(xs, Pass::Record)
                    .map_err(candle_core::Error::wrap)
            }
        }
    };
}
module_impl!(ChannelPool);
module_impl!(BatchPool);
module_impl!(MaxPool2);

impl Invertible for ChannelPool {
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Layer::inverse(self, y)
    }
}

impl Invertible for BatchPool {
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Layer::inverse(self, y)
    }
}
