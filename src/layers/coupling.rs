//! Additive coupling (RevNet's reversible block, NICE/Real-NVP coupling) and the ordinary
//! residual block of the ResNet baseline.
//!
//! Coupling, channels split in halves `x = [x1, x2]`:
//! `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)`; inverse `x2 = y2 - G(y1)`, `x1 = y1 - F(x2)`.
//! F and G are arbitrary [`Chain`]s mapping `c/2` channels to `c/2` channels. The inverse runs F
//! and G forward with the batch statistics recorded by the training forward ([`Pass::Replay`]),
//! so that the reconstruction retraces the forward computation. The "invertible convolution" of
//! the paper (sec. 4.1.4) is a coupling whose F and G are single 3x3 convolutions
//! ([`AdditiveCoupling::inv_conv`]).
//!
//! Backward (docs/design.md section 3): the block input comes from the tape (stored mode) or from the analytic
//! inverse (reconstructed mode); then the gradient flows through G (input `y1`) and F (input
//! `x2`); their hidden activations are rebuilt according to [`InnerRebuild`].
//!
//! Gomez et al.'s Algorithm 1, the backward's rebuild policy
//! [`Rebuild::Algorithm1`](crate::backprop::Rebuild::Algorithm1), merges the two walks of the
//! reconstructed backward: `G(y1)` is computed once, keeping its hidden inputs, and serves both
//! the inverse (`x2 = y2 - G(y1)`) and the gradient through G; then likewise `F(x2)`. F and G
//! thus run forward once in the backward instead of twice (inverse, then recomputation), with
//! the same values (bitwise) as [`Rebuild::PerLayer`](crate::backprop::Rebuild::PerLayer) with
//! [`InnerRebuild::Recompute`].

use super::{
    split_channels, Chain, Invertible, Layer, Param, ParamStore, Pass, Role, Structure, Tape,
};
use crate::backend::{cpu, Backend};
use crate::error::{Error, Result};
use candle_core::Tensor;

/// Whether `backend` computes candle's op on `a` and `b` with the kernels of
/// [`crate::backend::cpu::add`]: [`Backend::Kernels`] and CPU `f32`/`f64` tensors not tracked by
/// autograd (a tracked forward keeps candle's ops).
fn fast(backend: Backend, a: &Tensor, b: &Tensor) -> bool {
    backend.applies(a) && a.dtype() == b.dtype() && a.rank() == 4 && !a.track_op() && !b.track_op()
}

/// `a + b` (same values as candle's, parallel over the images and without copying channel
/// halves first when the kernels apply).
fn add(backend: Backend, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fast(backend, a, b) && a.dims() == b.dims() {
        return cpu::add_images(a, b, false);
    }
    Ok((a + b)?)
}

/// `a - b`, as [`add`].
fn sub(backend: Backend, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fast(backend, a, b) && a.dims() == b.dims() {
        return cpu::add_images(a, b, true);
    }
    Ok((a - b)?)
}

/// `cat([a, b + c], 1)` in one pass, as [`add`].
fn cat_add(backend: Backend, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<Tensor> {
    if fast(backend, a, b) && fast(backend, b, c) && b.dims() == c.dims() {
        return cpu::cat_add_channels(a, b, c, false);
    }
    cat(backend, a, &add(backend, b, c)?)
}

/// `cat([a, b], 1)`, as [`add`].
fn cat(backend: Backend, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fast(backend, a, b) {
        return cpu::cat_channels(a, b);
    }
    Ok(Tensor::cat(&[a, b], 1)?)
}

/// How the hidden activations inside F and G are obtained in reconstructed mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InnerRebuild {
    /// Recompute forward from the chain input and hold them for the walk down (RevNet; the
    /// local memory bottleneck).
    Recompute,
    /// Rebuild each one by its layer's inverse from the chain output, as the gradient flows
    /// down (the hybrid architecture of Hascoet et al. Fig. 9; needs invertible layers).
    LayerwiseInverse,
}

/// Additive coupling with arbitrary F and G.
pub struct AdditiveCoupling {
    name: String,
    channels: usize,
    f: Chain,
    g: Chain,
    role: Role,
    backend: Backend,
}

impl AdditiveCoupling {
    /// A coupling on `channels` channels (must be even). `role` is how its input is labelled in
    /// a trace ([`Role::BlockInput`] for a reversible block, [`Role::Layer`] for an invertible
    /// convolution inside a layer-wise network).
    pub fn new(name: &str, channels: usize, f: Chain, g: Chain, role: Role) -> Result<Self> {
        if channels % 2 != 0 || channels == 0 {
            return Err(Error::BadChannels {
                layer: name.into(),
                expected: "an even, nonzero number of".into(),
                got: channels,
            });
        }
        Ok(AdditiveCoupling {
            name: name.into(),
            channels,
            f,
            g,
            role,
            backend: Backend::default(),
        })
    }

    /// The same coupling with its additions computed by `backend` (default
    /// [`Backend::Kernels`]). F and G keep the backends they were built with.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The backend of the coupling's own additions.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The paper's invertible convolution: F and G are single 3x3 convolutions (no bias) on
    /// `channels / 2` channels, weights `N(0, (init_scale sqrt(2 / fan_in))^2)`; computed by the
    /// default backend ([`AdditiveCoupling::inv_conv_with`] chooses it).
    pub fn inv_conv(
        store: &ParamStore,
        name: &str,
        channels: usize,
        init_scale: f64,
    ) -> Result<Self> {
        Self::inv_conv_with(store, name, channels, init_scale, Backend::default())
    }

    /// [`AdditiveCoupling::inv_conv`] computed by `backend` (its additions and both
    /// convolutions).
    pub fn inv_conv_with(
        store: &ParamStore,
        name: &str,
        channels: usize,
        init_scale: f64,
        backend: Backend,
    ) -> Result<Self> {
        if channels % 2 != 0 || channels == 0 {
            return Err(Error::BadChannels {
                layer: name.into(),
                expected: "an even, nonzero number of".into(),
                got: channels,
            });
        }
        let half = channels / 2;
        let f = super::Conv2d::new(
            store,
            &format!("{name}.f"),
            half,
            half,
            3,
            1,
            false,
            init_scale,
        )?
        .with_backend(backend);
        let g = super::Conv2d::new(
            store,
            &format!("{name}.g"),
            half,
            half,
            3,
            1,
            false,
            init_scale,
        )?
        .with_backend(backend);
        let f = Chain::new(
            format!("{name}.F"),
            vec![Box::new(f)],
            InnerRebuild::Recompute,
            Some(Role::Hidden),
        )?;
        let g = Chain::new(
            format!("{name}.G"),
            vec![Box::new(g)],
            InnerRebuild::Recompute,
            Some(Role::Hidden),
        )?;
        Ok(Self::new(name, channels, f, g, Role::Layer)?.with_backend(backend))
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// F.
    pub fn f(&self) -> &Chain {
        &self.f
    }

    /// G.
    pub fn g(&self) -> &Chain {
        &self.g
    }

    fn check(&self, x: &Tensor) -> Result<()> {
        let (_, c, _, _) = super::check_nchw(x, &self.name)?;
        if c != self.channels {
            return Err(Error::BadChannels {
                layer: self.name.clone(),
                expected: self.channels.to_string(),
                got: c,
            });
        }
        Ok(())
    }

    /// Inverse that also returns `F(x2)` and `G(y1)` as computed on the way.
    pub fn inverse_parts(&self, y: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        self.check(y)?;
        let (y1, y2) = split_channels(y, &self.name)?;
        let g_out = self.g.forward_pass(&y1, Pass::Replay)?;
        let x2 = self.sub(&y2, &g_out)?;
        let f_out = self.f.forward_pass(&x2, Pass::Replay)?;
        let x1 = self.sub(&y1, &f_out)?;
        Ok((self.cat(&x1, &x2)?, f_out, g_out))
    }

    /// `a + b` (kernel where the backend applies it; same values as candle's).
    pub(crate) fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        add(self.backend, a, b)
    }

    /// `a - b`, as [`Self::add`].
    pub(crate) fn sub(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        sub(self.backend, a, b)
    }

    /// `cat([a, b], 1)`.
    pub(crate) fn cat(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        cat(self.backend, a, b)
    }

    /// `cat([a, b + c], 1)` in one pass.
    pub(crate) fn cat_add(&self, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<Tensor> {
        cat_add(self.backend, a, b, c)
    }

    /// Whether [`Self::sub_maybe_in_place`] and [`Self::add_maybe_in_place`] can write over
    /// (views of) `t`: the backend's kernels apply to it.
    pub(crate) fn can_update_in_place(&self, t: &Tensor) -> bool {
        self.backend.applies(t) && t.rank() == 4 && !t.track_op()
    }

    /// `a - b`, written over `a` (a view of a buffer the caller holds alone) when `in_place`
    /// (the caller checked [`Self::can_update_in_place`]); else a new tensor with the same
    /// values.
    pub(crate) fn sub_maybe_in_place(
        &self,
        a: Tensor,
        b: &Tensor,
        in_place: bool,
    ) -> Result<Tensor> {
        if in_place {
            cpu::add_assign(&a, b, true)?;
            return Ok(a);
        }
        self.sub(&a, b)
    }

    /// `a + b`, as [`Self::sub_maybe_in_place`].
    pub(crate) fn add_maybe_in_place(
        &self,
        a: Tensor,
        b: &Tensor,
        in_place: bool,
    ) -> Result<Tensor> {
        if in_place {
            cpu::add_assign(&a, b, false)?;
            return Ok(a);
        }
        self.add(&a, b)
    }
}

impl Layer for AdditiveCoupling {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.check(x)?;
        let (x1, x2) = split_channels(x, &self.name)?;
        let y1 = self.add(&x1, &self.f.forward_pass(&x2, pass)?)?;
        self.cat_add(&y1, &x2, &self.g.forward_pass(&y1, pass)?)
    }
    fn is_invertible(&self) -> bool {
        true
    }
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(self.inverse_parts(y)?.0)
    }
    fn params(&self) -> Vec<Param> {
        super::primitives(self)
            .iter()
            .flat_map(|l| l.params())
            .collect()
    }
    fn input_role(&self) -> Role {
        self.role
    }
    fn forward_tape(&self, x: &Tensor, tape: &mut Tape, push_input: bool) -> Result<Tensor> {
        self.check(x)?;
        let (x1, x2) = split_channels(x, &self.name)?;
        let y1 = self.add(&x1, &self.f.forward_tape(&x2, tape, false)?)?;
        let g_out = self.g.forward_tape(&y1, tape, false)?;
        if push_input && tape.stores_input_of(&self.name) {
            tape.push(x.clone());
        }
        // y2 = x2 + G(y1), written straight into the second half of the output.
        self.cat_add(&y1, &x2, &g_out)
    }
    fn structure(&self) -> Structure<'_> {
        Structure::Coupling(self)
    }
}

impl candle_nn::Module for AdditiveCoupling {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_pass(xs, Pass::RecordGraph)
            .map_err(candle_core::Error::wrap)
    }
}

impl Invertible for AdditiveCoupling {
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Layer::inverse(self, y)
    }
}

/// Ordinary residual block `y = x + F(x)` (not invertible): the ResNet baseline, which stores
/// every activation.
pub struct Residual {
    name: String,
    f: Chain,
}

impl Residual {
    /// The branch F.
    pub fn f(&self) -> &Chain {
        &self.f
    }

    /// A residual block around `f`.
    pub fn new(name: &str, f: Chain) -> Self {
        Residual {
            name: name.into(),
            f,
        }
    }
}

impl Layer for Residual {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        Ok((x + self.f.forward_pass(x, pass)?)?)
    }
    fn is_invertible(&self) -> bool {
        false
    }
    fn params(&self) -> Vec<Param> {
        super::primitives(self)
            .iter()
            .flat_map(|l| l.params())
            .collect()
    }
    fn forward_tape(&self, x: &Tensor, tape: &mut Tape, push_input: bool) -> Result<Tensor> {
        let y = (x + self.f.forward_tape(x, tape, false)?)?;
        if push_input {
            tape.push(x.clone());
        }
        Ok(y)
    }
    fn structure(&self) -> Structure<'_> {
        Structure::Residual(self)
    }
}
