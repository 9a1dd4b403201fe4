//! Non-invertible building blocks: 2-D convolution, ReLU and the classification head. Their
//! inputs are stored by the backward in both modes.
//!
//! [`Conv2d`] and [`Relu`] take their backward step without autograd: the convolution's input
//! gradient is the same convolution of the output gradient with the flipped, transposed weights
//! and its weight gradient a correlation of input and output gradient (both with the kernels of
//! [`crate::backend::cpu::conv`] under [`Backend::Kernels`] for CPU tensors, f16 and bf16 in
//! f32, stride 1, kernel 1, 3 or 5; candle's convolutions otherwise); the ReLU's is the gradient
//! masked by `x > 0`. The forward of an untracked pass ([`Pass::Record`], [`Pass::Replay`],
//! [`Pass::Eval`]) uses the same kernels; tracked passes use candle's ops (whole-network
//! autograd stays the reference). The layers hold their [`Backend`] (default
//! [`Backend::Kernels`], [`Conv2d::with_backend`], [`Relu::with_backend`]).

use super::{check_nchw, Grads, Layer, Param, ParamStore, Pass};
use crate::backend::{cpu, Backend};
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};

/// Convolution `k x k`, stride `stride`, zero padding `k / 2`, optional bias.
///
/// Weights are initialised `N(0, (scale * sqrt(2 / fan_in))^2)` with `fan_in = c_in k^2`
/// (`scale = 1` is Kaiming-normal for ReLU). Under [`Backend::Kernels`] on the CPU, `f16` and
/// `bf16` convolutions run the f32 kernels and are rounded once to the dtype; with candle's ops
/// `bf16` convolutions run in f32 and are rounded back to bf16 (candle's CPU conv2d lacks bf16),
/// other dtypes natively.
pub struct Conv2d {
    name: String,
    weight: Param,
    bias: Option<Param>,
    in_channels: usize,
    kernel: usize,
    stride: usize,
    backend: Backend,
}

impl Conv2d {
    /// A convolution `in_channels -> out_channels` named `name` (`name.weight`, `name.bias`).
    pub fn new(
        store: &ParamStore,
        name: &str,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        bias: bool,
        init_scale: f64,
    ) -> Result<Self> {
        if in_channels == 0 || out_channels == 0 || kernel == 0 || kernel % 2 == 0 || stride == 0 {
            return Err(Error::config(
                format!("{name}: convolution"),
                "channels > 0, an odd kernel and stride > 0",
                format!("{in_channels}->{out_channels}, k = {kernel}, stride = {stride}"),
            ));
        }
        let fan_in = (in_channels * kernel * kernel) as f64;
        let std = init_scale * (2.0 / fan_in).sqrt();
        let weight = store.normal(
            &format!("{name}.weight"),
            &[out_channels, in_channels, kernel, kernel],
            0.0,
            std,
        )?;
        let bias = if bias {
            Some(store.constant(&format!("{name}.bias"), &[out_channels], 0.0)?)
        } else {
            None
        };
        Ok(Conv2d {
            name: name.into(),
            weight,
            bias,
            in_channels,
            kernel,
            stride,
            backend: Backend::default(),
        })
    }

    /// The same convolution computed by `backend` (default [`Backend::Kernels`]).
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The backend that computes it.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The weight parameter.
    pub fn weight(&self) -> &Param {
        &self.weight
    }
}

impl Layer for Conv2d {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let (_, c, _, _) = check_nchw(x, &self.name)?;
        if c != self.in_channels {
            return Err(Error::BadChannels {
                layer: self.name.clone(),
                expected: self.in_channels.to_string(),
                got: c,
            });
        }
        let dtype = x.dtype();
        let w = self.weight.tensor(pass);
        let y = if !pass.tracks_params()
            && !x.track_op()
            && self.backend.applies_conv(x, &w, self.stride)
        {
            cpu::conv2d_same(x, &w)?
        } else if dtype == DType::BF16 {
            x.to_dtype(DType::F32)?.conv2d(
                &w.to_dtype(DType::F32)?,
                self.kernel / 2,
                self.stride,
                1,
                1,
            )?
        } else {
            x.conv2d(&w, self.kernel / 2, self.stride, 1, 1)?
        };
        let y = match &self.bias {
            Some(b) => {
                let b = b.tensor(pass).to_dtype(y.dtype())?;
                let n = b.dim(0)?;
                y.broadcast_add(&b.reshape((1, n, 1, 1))?)?
            }
            None => y,
        };
        Ok(y.to_dtype(dtype)?)
    }
    fn is_invertible(&self) -> bool {
        false
    }
    fn params(&self) -> Vec<Param> {
        let mut p = vec![self.weight.clone()];
        p.extend(self.bias.clone());
        p
    }
    /// `dx = conv(dy, w')` with `w'[i, o] = w[o, i]` flipped in space (stride 1; candle's
    /// `conv_transpose2d` otherwise), `dw[o, i, a, b] = sum_{n, y, x} dy[n, o, y, x]
    /// x[n, i, y + a - p, x + b - p]`, `dbias = sum dy`. The kernels of
    /// [`crate::backend::cpu::conv`] where the backend applies them; candle's convolutions
    /// otherwise (bf16 in f32).
    fn vjp(
        &self,
        input: &Tensor,
        grad_output: &Tensor,
        grads: Option<&mut Grads>,
    ) -> Result<Tensor> {
        let w = self.weight.var.as_detached_tensor();
        let g = grad_output;
        if self.backend.applies_conv(input, &w, self.stride) && g.dtype() == input.dtype() {
            let dx = cpu::conv2d_same_input_grad(g, &w)?;
            if let Some(grads) = grads {
                grads.insert(
                    self.weight.name.clone(),
                    cpu::conv2d_same_weight_grad(input, g, self.kernel)?,
                );
                if let Some(b) = &self.bias {
                    grads.insert(b.name.clone(), g.sum((0, 2, 3))?);
                }
            }
            return Ok(dx);
        }
        // Candle's convolutions in the compute dtype (bf16 convolutions run in f32).
        let dtype = input.dtype();
        let cd = if dtype == DType::BF16 {
            DType::F32
        } else {
            dtype
        };
        let (x, g, w) = (
            input.to_dtype(cd)?.contiguous()?,
            g.to_dtype(cd)?.contiguous()?,
            w.to_dtype(cd)?,
        );
        let p = self.kernel / 2;
        let (_, _, h, wd) = x.dims4()?;
        let (_, _, gh, gw) = g.dims4()?;
        // Output padding that makes the transposed convolution recover the input size.
        let out_pad = (h + 2 * p - self.kernel) % self.stride;
        let dx = g.conv_transpose2d(&w, p, out_pad, self.stride, 1)?;
        let dx = if dx.dims4()?.2 != h || dx.dims4()?.3 != wd {
            dx.narrow(2, 0, h)?.narrow(3, 0, wd)?
        } else {
            dx
        };
        if let Some(grads) = grads {
            // dw via candle's identity: conv of x^T with dy^T (dilation = stride), transposed.
            let dw = x
                .transpose(0, 1)?
                .conv2d(&g.transpose(0, 1)?, p, 1, self.stride, 1)?
                .transpose(0, 1)?;
            let (_, _, kh, kw) = dw.dims4()?;
            let dw = if kh > self.kernel || kw > self.kernel {
                dw.narrow(2, 0, self.kernel)?.narrow(3, 0, self.kernel)?
            } else {
                dw
            };
            let _ = (gh, gw);
            grads.insert(
                self.weight.name.clone(),
                dw.contiguous()?.to_dtype(self.weight.var.dtype())?,
            );
            if let Some(b) = &self.bias {
                grads.insert(b.name.clone(), g.sum((0, 2, 3))?.to_dtype(b.var.dtype())?);
            }
        }
        Ok(dx.to_dtype(dtype)?)
    }
}

/// ReLU (not invertible).
pub struct Relu {
    name: String,
    backend: Backend,
}

impl Relu {
    /// A ReLU layer.
    pub fn new(name: &str) -> Self {
        Relu {
            name: name.into(),
            backend: Backend::default(),
        }
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
}

impl Layer for Relu {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        if !pass.tracks_params() && !x.track_op() && self.backend.applies(x) {
            return cpu::relu(x);
        }
        Ok(x.gt(0.0)?.where_cond(x, &x.zeros_like()?)?)
    }
    fn is_invertible(&self) -> bool {
        false
    }
    fn params(&self) -> Vec<Param> {
        Vec::new()
    }
    fn vjp_at_output(&self) -> bool {
        true
    }
    /// `dx = dy` where `x > 0`, else 0 (`x` may be the output: `y > 0` exactly where `x > 0`).
    fn vjp(
        &self,
        input: &Tensor,
        grad_output: &Tensor,
        _grads: Option<&mut Grads>,
    ) -> Result<Tensor> {
        if self.backend.applies(input) && grad_output.dtype() == input.dtype() {
            return cpu::relu_backward(input, grad_output);
        }
        let g = grad_output.to_dtype(input.dtype())?;
        Ok(input.gt(0.0)?.where_cond(&g, &g.zeros_like()?)?)
    }
}

/// Classification head: global average pool (over space and over the `groups` batch-pooled
/// copies of each image that [`super::BatchPool`] created) and a linear map to the logits.
/// Computed in f32 for half dtypes; logits are returned in the compute dtype.
pub struct Head {
    name: String,
    weight: Param,
    bias: Param,
    channels: usize,
    groups: usize,
}

impl Head {
    /// A head from `channels` features to `classes` logits; `groups = 4^k` after `k` batch
    /// poolings.
    pub fn new(
        store: &ParamStore,
        name: &str,
        channels: usize,
        classes: usize,
        groups: usize,
    ) -> Result<Self> {
        if classes < 2 || channels == 0 || groups == 0 {
            return Err(Error::config(
                format!("{name}: head"),
                ">= 2 classes and > 0 channels",
                format!("{classes} classes, {channels} channels"),
            ));
        }
        let weight = store.normal(
            &format!("{name}.weight"),
            &[classes, channels],
            0.0,
            (1.0 / channels as f64).sqrt(),
        )?;
        let bias = store.constant(&format!("{name}.bias"), &[classes], 0.0)?;
        Ok(Head {
            name: name.into(),
            weight,
            bias,
            channels,
            groups,
        })
    }
}

impl Layer for Head {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let (gb, c, h, w) = check_nchw(x, &self.name)?;
        if c != self.channels || gb % self.groups != 0 {
            return Err(Error::ShapeMismatch {
                context: self.name.clone(),
                expected: format!("(k*{}, {}, h, w)", self.groups, self.channels),
                got: x.dims().to_vec(),
            });
        }
        let cd = crate::device::compute_dtype(x.dtype());
        let b = gb / self.groups;
        let pooled = x
            .to_dtype(cd)?
            .reshape((self.groups, b, c, h * w))?
            .mean_keepdim(3)?
            .mean_keepdim(0)?
            .reshape((b, c))?;
        let w = self.weight.tensor(pass).to_dtype(cd)?;
        let bias = self.bias.tensor(pass).to_dtype(cd)?;
        Ok(pooled.matmul(&w.t()?)?.broadcast_add(&bias)?)
    }
    fn is_invertible(&self) -> bool {
        false
    }
    fn params(&self) -> Vec<Param> {
        vec![self.weight.clone(), self.bias.clone()]
    }
    /// With `p` the pooled features (mean over the `groups` copies and space, compute dtype)
    /// and `dz` the logits' gradient: `dW = dz^T p`, `dbias = sum_n dz`, and every element of
    /// the input gets `(dz W)[n, c] / (groups h w)`.
    fn vjp(
        &self,
        input: &Tensor,
        grad_output: &Tensor,
        grads: Option<&mut Grads>,
    ) -> Result<Tensor> {
        let (gb, c, h, w) = check_nchw(input, &self.name)?;
        let cd = crate::device::compute_dtype(input.dtype());
        let b = gb / self.groups;
        let dz = grad_output.to_dtype(cd)?;
        let weight = self.weight.var.as_detached_tensor().to_dtype(cd)?;
        if let Some(grads) = grads {
            let pooled = input
                .to_dtype(cd)?
                .reshape((self.groups, b, c, h * w))?
                .mean_keepdim(3)?
                .mean_keepdim(0)?
                .reshape((b, c))?;
            grads.insert(
                self.weight.name.clone(),
                dz.t()?.matmul(&pooled)?.to_dtype(self.weight.var.dtype())?,
            );
            grads.insert(
                self.bias.name.clone(),
                dz.sum(0)?.to_dtype(self.bias.var.dtype())?,
            );
        }
        let dpooled = (dz.matmul(&weight)? / (self.groups * h * w) as f64)?;
        Ok(dpooled
            .reshape((1, b, c, 1))?
            .broadcast_as((self.groups, b, c, h * w))?
            .reshape((gb, c, h, w))?
            .to_dtype(input.dtype())?)
    }
}
