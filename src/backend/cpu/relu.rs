//! ReLU `y = max(x, 0)` ([`relu`]) and its backward ([`relu_backward`]), in parallel over runs
//! of `RUN` = 16384 elements.

use super::{par_fill, supported, unsupported, with_slice, Real, RUN};
use crate::error::Result;
use candle_core::{DType, Device, Tensor};

/// `x` where `x > 0`, else 0 (NaN gives 0).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if !supported(x) {
        return Err(unsupported("relu", x));
    }
    fn go<T: Real>(x: &Tensor) -> Result<Tensor> {
        let out = with_slice::<T, _>(x, |xs| {
            Ok(par_fill(xs.len(), RUN, |i, o: &mut [T]| {
                let s = &xs[i * RUN..][..o.len()];
                // A select (not a conditional store) so that the loop vectorises.
                for (o, v) in o.iter_mut().zip(s) {
                    *o = if *v > T::zero() { *v } else { T::zero() };
                }
            }))
        })?;
        Ok(Tensor::from_vec(out, x.shape(), &Device::Cpu)?)
    }
    match x.dtype() {
        DType::F32 => go::<f32>(x),
        _ => go::<f64>(x),
    }
}

/// Gradient of [`relu`]: `dy` where `x > 0`, else 0.
pub fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    if !supported(x) || x.dtype() != dy.dtype() || x.dims() != dy.dims() {
        return Err(unsupported("relu_backward", x));
    }
    fn go<T: Real>(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
        let out = with_slice::<T, _>(x, |xs| {
            with_slice::<T, _>(dy, |gs| {
                Ok(par_fill(xs.len(), RUN, |i, o: &mut [T]| {
                    let (s, g) = (&xs[i * RUN..][..o.len()], &gs[i * RUN..][..o.len()]);
                    for ((o, v), gv) in o.iter_mut().zip(s).zip(g) {
                        *o = if *v > T::zero() { *gv } else { T::zero() };
                    }
                }))
            })
        })?;
        Ok(Tensor::from_vec(out, x.shape(), &Device::Cpu)?)
    }
    match x.dtype() {
        DType::F32 => go::<f32>(x, dy),
        _ => go::<f64>(x, dy),
    }
}
