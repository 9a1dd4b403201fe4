//! Non-invertible building blocks: 2-D convolution, ReLU and the classification head. Their
//! inputs are stored by the backward in both modes.
//!
//! [`Conv2d`] and [`Relu`] take their backward step without autograd: the convolution's input
//! gradient is the same convolution of the output gradient with the flipped, transposed weights
//! and its weight gradient a correlation of input and output gradient (both with the kernels of
//! [`super::kernels`] for `f32`/`f64` CPU tensors, stride 1, kernel 1, 3 or 5); the ReLU's is
//! the gradient masked by `x > 0`. Other cases use the generic [`super::vjp`]. The forward of
//! an untracked pass ([`Pass::Record`], [`Pass::Replay`], [`Pass::Eval`]) uses the same kernels;
//! tracked passes use candle's ops (whole-network autograd stays the reference).

use super::{check_nchw, kernels, vjp, Back, BackCtx, Layer, Param, ParamStore, Pass};
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};

/// Convolution `k x k`, stride `stride`, zero padding `k / 2`, optional bias.
///
/// Weights are initialised `N(0, (scale * sqrt(2 / fan_in))^2)` with `fan_in = c_in k^2`
/// (`scale = 1` is Kaiming-normal for ReLU). `bf16` convolutions run in f32 and are rounded back
/// to bf16 (candle's CPU conv2d lacks bf16); other dtypes run natively.
pub struct Conv2d {
    name: String,
    weight: Param,
    bias: Option<Param>,
    in_channels: usize,
    kernel: usize,
    stride: usize,
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
            return Err(Error::Config(format!("{name}: convolution needs channels > 0, an odd kernel and stride > 0 (got {in_channels}->{out_channels}, k = {kernel}, stride = {stride})")));
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
        })
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
            && kernels::conv_supported(x, &w, self.stride)
        {
            kernels::conv2d_same(x, &w)?
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
    fn reads_output_when_stored(&self) -> bool {
        false
    }
    fn params(&self) -> Vec<Param> {
        let mut p = vec![self.weight.clone()];
        p.extend(self.bias.clone());
        p
    }
    /// Input from the caller or the tape (never rebuilt); gradients `dx = conv(g, w')` with
    /// `w'[i, o] = w[o, i]` flipped in space, `dw[o, i, a, b] = sum g[o] x[i]` shifted by
    /// `(a, b)`, `dbias = sum g`, without autograd where the kernels apply.
    fn backward(
        &self,
        _output: &Tensor,
        grad_output: Option<&Tensor>,
        ctx: &mut BackCtx,
        known_input: Option<Tensor>,
    ) -> Result<Back> {
        let input = match known_input {
            Some(x) => x,
            None => ctx.tape.pop(&self.name)?,
        };
        let w = self.weight.var.as_detached_tensor();
        let grad = match grad_output {
            Some(g)
                if kernels::conv_supported(&input, &w, self.stride)
                    && g.dtype() == input.dtype() =>
            {
                let dx = kernels::conv2d_same_input_grad(g, &w)?;
                if let Some(grads) = ctx.grads.as_mut() {
                    grads.insert(
                        self.weight.name.clone(),
                        kernels::conv2d_same_weight_grad(&input, g, self.kernel)?,
                    );
                    if let Some(b) = &self.bias {
                        grads.insert(b.name.clone(), g.sum((0, 2, 3))?);
                    }
                }
                Some(dx)
            }
            Some(g) => Some(vjp(self, &input, g, ctx)?),
            None => None,
        };
        Ok(Back {
            input,
            grad,
            rebuilt: false,
        })
    }
}

/// ReLU (not invertible).
pub struct Relu {
    name: String,
}

impl Relu {
    /// A ReLU layer.
    pub fn new(name: &str) -> Self {
        Relu { name: name.into() }
    }
}

impl Layer for Relu {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        if !pass.tracks_params() && !x.track_op() && kernels::supported(x) {
            return kernels::relu(x);
        }
        Ok(x.gt(0.0)?.where_cond(x, &x.zeros_like()?)?)
    }
    fn is_invertible(&self) -> bool {
        false
    }
    fn reads_output_when_stored(&self) -> bool {
        false
    }
    fn params(&self) -> Vec<Param> {
        Vec::new()
    }
    /// Input from the caller or the tape; gradient `dy` where `x > 0`, else 0.
    fn backward(
        &self,
        _output: &Tensor,
        grad_output: Option<&Tensor>,
        ctx: &mut BackCtx,
        known_input: Option<Tensor>,
    ) -> Result<Back> {
        let input = match known_input {
            Some(x) => x,
            None => ctx.tape.pop(&self.name)?,
        };
        let grad = match grad_output {
            Some(g) if kernels::supported(&input) && g.dtype() == input.dtype() => {
                Some(kernels::relu_backward(&input, g)?)
            }
            Some(g) => Some(vjp(self, &input, g, ctx)?),
            None => None,
        };
        Ok(Back {
            input,
            grad,
            rebuilt: false,
        })
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
            return Err(Error::Config(format!("{name}: head needs >= 2 classes and > 0 channels (got {classes} classes, {channels} channels)")));
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
}
