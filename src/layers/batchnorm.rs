//! Invertible batch normalisation (paper sec. 4.1.2, eq. 20 and the reparameterisation eq. 27).
//!
//! Forward (train mode, batch statistics over N, H, W of each channel):
//!
//! `y = g~ (x - mu_B) / s + beta`, with `s = sqrt(var_B + eps)` and
//! `g~ = |gamma + eps_i|` (reparameterised, the default) or `g~ = gamma` (plain batch norm).
//!
//! Inverse: `x = s (y - beta) / g~ + mu_B`, using the `mu_B`, `var_B` recorded by the last
//! training forward (2c numbers). Where:
//! - `var_B` is the *biased* batch variance in both directions (the paper's public code mixes the
//!   biased and unbiased estimators, a systematic `~1/(2N)` error; we do not);
//! - `eps` (default `1e-5`) sits inside the square root;
//! - `eps_i` (default `0`) lower-bounds small `|gamma|`; `eps_i = 0` with the reparameterisation
//!   is `|gamma|`;
//! - statistics and the affine map are computed in f32 for f16/bf16 tensors (f64 for f64) and the
//!   result is rounded to the storage dtype.
//!
//! Eval mode uses running statistics (momentum 0.1, unbiased running variance, as PyTorch).
//!
//! Speed: under [`Backend::Kernels`] (the default, [`InvBatchNorm::with_backend`]), for
//! `f32`/`f64` CPU tensors, untracked passes ([`Pass::Record`], [`Pass::Replay`],
//! [`Pass::Eval`]) and the inverse use the fused kernels of [`crate::backend::cpu::batch_norm`]
//! (per-channel statistics accumulated in f64, one pass for the affine map, same order of
//! operations), and the backward step uses the closed form
//! `dx = (g~ / s) (dy - mean(dy) - x^ mean(dy x^))`, `dg~ = sum(dy x^)`, `dbeta = sum(dy)` with
//! the batch statistics of the layer's input (what autograd of the training forward gives);
//! tracked passes use candle's ops.
//!
//! # Shapes
//! `x`, `y`: `(N, C, H, W)`; `gamma`, `beta`: `(C,)`.

pub use super::gamma_init::GammaInit;
use super::{check_nchw, Grads, Invertible, Layer, Param, ParamStore, Pass, Tape};
use crate::backend::{cpu, Backend};
use crate::device::compute_dtype;
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};
use std::sync::Mutex;

/// Options of [`InvBatchNorm`].
#[derive(Debug, Clone, Copy)]
pub struct BatchNormConfig {
    /// `eps` inside the square root.
    pub eps: f64,
    /// The paper's `eps_i` in `|gamma + eps_i|`.
    pub eps_i: f64,
    /// Use `g~ = |gamma + eps_i|` (true) or `g~ = gamma` (false, plain batch norm).
    pub reparam: bool,
    /// Running-statistics momentum.
    pub momentum: f64,
    /// Spread of the gamma initialisation: `gamma = exp(spread * N(0,1))` (0 gives ones); used
    /// when `gamma_init` is `None` (the older spelling of [`GammaInit::LogNormal`]).
    pub gamma_spread: f64,
    /// The gamma initialisation; `None`: log-normal with `gamma_spread`.
    pub gamma_init: Option<GammaInit>,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            eps_i: 0.0,
            reparam: true,
            momentum: 0.1,
            gamma_spread: 0.0,
            gamma_init: None,
        }
    }
}

#[derive(Clone)]
struct Stats {
    mean: Tensor, // (1, C, 1, 1), compute dtype
    var: Tensor,  // (1, C, 1, 1), compute dtype, biased
}

/// Invertible batch norm; see the module documentation for the formula.
pub struct InvBatchNorm {
    name: String,
    channels: usize,
    gamma: Param,
    beta: Param,
    config: BatchNormConfig,
    recorded: Mutex<Option<Stats>>,
    running: Mutex<Option<Stats>>,
    /// The f64 batch statistics of the last training forward's input (kernel path), by the
    /// input's tensor id: a stored-mode backward gets that same tensor from the tape and reuses
    /// them instead of reading it twice more (the same numbers: the kernel is deterministic).
    /// A reconstructed input is another tensor, and its statistics are computed afresh.
    input_stats: Mutex<Option<(candle_core::TensorId, Vec<f64>, Vec<f64>)>>,
    /// The same f64 statistics kept for the recomputation of a checkpointed segment
    /// ([`Tape::replay`]): its input is bitwise the training forward's, so its backward reuses
    /// them as the stored backward does (the same numbers, without reading the input again).
    recorded_exact: Mutex<Option<(Vec<f64>, Vec<f64>)>>,
    backend: Backend,
}

impl InvBatchNorm {
    /// A batch norm over `channels` channels, parameters `name.gamma`, `name.beta` in `store`.
    pub fn new(
        store: &ParamStore,
        name: &str,
        channels: usize,
        config: BatchNormConfig,
    ) -> Result<Self> {
        if !(config.eps >= 0.0) || !config.eps_i.is_finite() {
            return Err(Error::config(
                format!("{name}: eps and eps_i"),
                "eps >= 0 and a finite eps_i",
                format!("eps = {}, eps_i = {}", config.eps, config.eps_i),
            ));
        }
        let gamma_name = format!("{name}.gamma");
        let gamma = match GammaInit::resolve(config.gamma_init, config.gamma_spread) {
            // The log-normal draw with spread 0 (what `Ones` was before it had a name): ones.
            GammaInit::Ones => store.log_normal(&gamma_name, &[channels], 0.0)?,
            GammaInit::LogNormal { spread } => {
                store.log_normal(&gamma_name, &[channels], spread)?
            }
            GammaInit::AbsNormal { std, offset } => {
                store.abs_normal(&gamma_name, &[channels], std, offset)?
            }
        };
        let beta = store.constant(&format!("{name}.beta"), &[channels], 0.0)?;
        Ok(InvBatchNorm {
            name: name.into(),
            channels,
            gamma,
            beta,
            config,
            recorded: Mutex::new(None),
            running: Mutex::new(None),
            input_stats: Mutex::new(None),
            recorded_exact: Mutex::new(None),
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

    /// The configuration.
    pub fn config(&self) -> &BatchNormConfig {
        &self.config
    }

    /// The `gamma` parameter.
    pub fn gamma(&self) -> &Param {
        &self.gamma
    }

    /// The `beta` parameter.
    pub fn beta(&self) -> &Param {
        &self.beta
    }

    /// Set the recorded batch statistics directly (mean and biased variance per channel), e.g.
    /// to invert a given output without a forward.
    pub fn set_recorded(
        &self,
        mean: &[f64],
        var: &[f64],
        dtype: DType,
        device: &candle_core::Device,
    ) -> Result<()> {
        let cd = compute_dtype(dtype);
        let shape = (1, self.channels, 1, 1);
        let mean = Tensor::from_slice(mean, self.channels, device)?
            .to_dtype(cd)?
            .reshape(shape)?;
        let var = Tensor::from_slice(var, self.channels, device)?
            .to_dtype(cd)?
            .reshape(shape)?;
        *self.recorded.lock().expect("poisoned") = Some(Stats { mean, var });
        Ok(())
    }

    /// The recorded batch statistics `(mean, biased var)` per channel, as f64.
    pub fn recorded(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let guard = self.recorded.lock().ok()?;
        let s = guard.as_ref()?;
        Some((
            crate::util::to_f64_vec(&s.mean).ok()?,
            crate::util::to_f64_vec(&s.var).ok()?,
        ))
    }

    /// `g~` per channel, shape `(1, C, 1, 1)` in the compute dtype.
    fn scale(&self, pass: Pass, cd: DType) -> Result<Tensor> {
        let gamma = self.gamma.tensor(pass).to_dtype(cd)?;
        let g = if self.config.reparam {
            (gamma + self.config.eps_i)?.abs()?
        } else {
            gamma
        };
        Ok(g.reshape((1, self.channels, 1, 1))?)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let (_, c, _, _) = check_nchw(x, &self.name)?;
        if c != self.channels {
            return Err(Error::BadChannels {
                layer: self.name.clone(),
                expected: self.channels.to_string(),
                got: c,
            });
        }
        Ok(())
    }

    /// `g~` per channel and `d g~ / d gamma` (the sign of `gamma + eps_i`, +1 at 0 as candle's
    /// `abs`; 1 without the reparameterisation), in f64.
    fn scale_f64(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let gamma = crate::util::to_f64_vec(self.gamma.var.as_tensor())?;
        if self.config.reparam {
            Ok(gamma
                .iter()
                .map(|g| (g + self.config.eps_i).abs())
                .zip(gamma.iter().map(|g| {
                    if g + self.config.eps_i >= 0.0 {
                        1.0
                    } else {
                        -1.0
                    }
                }))
                .unzip())
        } else {
            Ok((gamma.clone(), vec![1.0; gamma.len()]))
        }
    }

    /// [`Self::scale_f64`] computed on the parameters' device in `cd`, nothing read to the host:
    /// `g~` of shape `(1, C, 1, 1)` and `d g~ / d gamma = 2 [gamma + eps_i >= 0] - 1` of shape
    /// `(C,)` (all ones without the reparameterisation).
    fn scale_on_device(&self, cd: DType) -> Result<(Tensor, Tensor)> {
        let g = self.scale(Pass::Record, cd)?;
        let gamma = self.gamma.var.as_tensor();
        let dsign = if self.config.reparam {
            let shifted = (gamma.to_dtype(cd)? + self.config.eps_i)?;
            ((shifted.ge(0.0)?.to_dtype(cd)? * 2.0)? - 1.0)?
        } else {
            Tensor::ones(self.channels, cd, gamma.device())?
        };
        Ok((g, dsign))
    }

    /// The number of zero scales `|gamma + eps_i| == 0` of `g` (from [`Self::scale`]) as a
    /// device-side reduction, queued with [`crate::device::defer_check`]: the check of the
    /// inverse off the CPU.
    fn defer_zero_scale_check(&self, g: &Tensor) -> Result<()> {
        let (layer, eps_i) = (self.name.clone(), self.config.eps_i);
        let (scale, gamma) = (g.clone(), self.gamma.var.as_tensor().clone());
        crate::device::defer_check(g.eq(0.0)?.to_dtype(DType::F32)?.sum_all()?, move |_| {
            zero_scale_error(layer, eps_i, &scale, &gamma)
        })
    }

    /// Forward of an untracked pass with the kernels.
    fn forward_fast(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let cd = compute_dtype(x.dtype());
        let (mean, var) = match pass {
            Pass::Replay | Pass::Eval => {
                let guard = if pass == Pass::Replay {
                    self.recorded.lock()
                } else {
                    self.running.lock()
                };
                let stats = guard.expect("poisoned").clone().ok_or_else(|| {
                    let what = if pass == Pass::Replay {
                        "replay"
                    } else {
                        "eval (no running statistics)"
                    };
                    Error::internal(&self.name, format!("{what} before any training forward"))
                })?;
                (
                    crate::util::to_f64_vec(&stats.mean)?,
                    crate::util::to_f64_vec(&stats.var)?,
                )
            }
            _ => {
                let (mean, var) = cpu::channel_stats(x)?;
                *self.input_stats.lock().expect("poisoned") =
                    Some((x.id(), mean.clone(), var.clone()));
                *self.recorded_exact.lock().expect("poisoned") = Some((mean.clone(), var.clone()));
                let shape = (1, self.channels, 1, 1);
                let stats = Stats {
                    mean: Tensor::from_slice(&mean, shape, x.device())?.to_dtype(cd)?,
                    var: Tensor::from_slice(&var, shape, x.device())?.to_dtype(cd)?,
                };
                let (n, _, h, w) = x.dims4()?;
                self.update_running(&stats, n * h * w)?;
                // What the inverse and replays use: the statistics rounded to the compute dtype.
                let rounded = (
                    crate::util::to_f64_vec(&stats.mean)?,
                    crate::util::to_f64_vec(&stats.var)?,
                );
                *self.recorded.lock().expect("poisoned") = Some(stats);
                rounded
            }
        };
        let s: Vec<f64> = var.iter().map(|v| (v + self.config.eps).sqrt()).collect();
        let scale = crate::util::to_f64_vec(&self.scale(pass, cd)?)?;
        let beta = crate::util::to_f64_vec(self.beta.var.as_tensor())?;
        cpu::channel_affine(x, &mean, &s, &scale, &beta)
    }

    fn batch_stats(x: &Tensor) -> Result<Stats> {
        let mean = x.mean_keepdim((0, 2, 3))?;
        let var = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim((0, 2, 3))?;
        Ok(Stats { mean, var })
    }

    fn update_running(&self, batch: &Stats, count: usize) -> Result<()> {
        let m = self.config.momentum;
        let unbiased = if count > 1 {
            (&batch.var * (count as f64 / (count as f64 - 1.0)))?
        } else {
            batch.var.clone()
        };
        let mut running = self.running.lock().expect("poisoned");
        *running = Some(match running.take() {
            None => Stats {
                mean: batch.mean.clone(),
                var: unbiased,
            },
            Some(r) => Stats {
                mean: ((&r.mean * (1.0 - m))? + (&batch.mean * m)?)?,
                var: ((&r.var * (1.0 - m))? + (&unbiased * m)?)?,
            },
        });
        Ok(())
    }
}

impl Layer for InvBatchNorm {
    fn running_stats(&self) -> Option<Option<(Tensor, Tensor)>> {
        let running = self.running.lock().expect("poisoned");
        Some(running.as_ref().map(|r| (r.mean.clone(), r.var.clone())))
    }

    fn set_running_stats(&self, stats: Option<(Tensor, Tensor)>) {
        *self.running.lock().expect("poisoned") = stats.map(|(mean, var)| Stats { mean, var });
    }

    /// As the default ([`Layer::forward_tape`]); in the recomputation of a checkpointed segment
    /// ([`Tape::replay`], whose input is bitwise the training forward's) the f64 statistics of
    /// the training forward are handed to the backward by the input's id, as a stored step's.
    fn forward_tape(&self, x: &Tensor, tape: &mut Tape, push_input: bool) -> Result<Tensor> {
        let pushes = push_input && (tape.stores_input_of(&self.name) || !self.is_invertible());
        if tape.stores_for(&self.name, pushes, self.vjp_at_output()) {
            tape.push(x.clone());
        }
        let y = self.forward_pass(x, tape.pass)?;
        if tape.pass == Pass::Replay {
            if let Some((mean, var)) = self.recorded_exact.lock().expect("poisoned").clone() {
                *self.input_stats.lock().expect("poisoned") = Some((x.id(), mean, var));
            }
        }
        Ok(y)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn forward_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.check_input(x)?;
        if !pass.tracks_params() && !x.track_op() && self.backend.applies(x) {
            return self.forward_fast(x, pass);
        }
        let dtype = x.dtype();
        let cd = compute_dtype(dtype);
        let xc = x.to_dtype(cd)?;
        let stats = match pass {
            Pass::Record | Pass::RecordGraph | Pass::Graph => {
                let stats = Self::batch_stats(&xc)?;
                if pass != Pass::Graph {
                    let detached = Stats {
                        mean: stats.mean.detach(),
                        var: stats.var.detach(),
                    };
                    let (n, _, h, w) = x.dims4()?;
                    self.update_running(&detached, n * h * w)?;
                    *self.recorded.lock().expect("poisoned") = Some(detached);
                }
                stats
            }
            Pass::Replay => self
                .recorded
                .lock()
                .expect("poisoned")
                .clone()
                .ok_or_else(|| Error::internal(&self.name, "replay before any training forward"))?,
            Pass::Eval => self
                .running
                .lock()
                .expect("poisoned")
                .clone()
                .ok_or_else(|| {
                    Error::internal(
                        &self.name,
                        "eval before any training forward (no running statistics)",
                    )
                })?,
        };
        let s = (stats.var + self.config.eps)?.sqrt()?;
        let g = self.scale(pass, cd)?;
        let beta = self
            .beta
            .tensor(pass)
            .to_dtype(cd)?
            .reshape((1, self.channels, 1, 1))?;
        let y = xc
            .broadcast_sub(&stats.mean)?
            .broadcast_div(&s)?
            .broadcast_mul(&g)?
            .broadcast_add(&beta)?;
        Ok(y.to_dtype(dtype)?)
    }

    fn is_invertible(&self) -> bool {
        true
    }

    /// `x = s (y - beta) / g~ + mu_B` with the recorded statistics. Errors with
    /// [`Error::ZeroScale`] when some `|gamma + eps_i| == 0`: on the CPU at once; on another
    /// device the number of zero scales is a device-side reduction queued with
    /// [`crate::device::defer_check`], read once at the end of the step (the inverse itself
    /// then returns inf/NaN, which the error discards).
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        self.check_input(y)?;
        let dtype = y.dtype();
        let cd = compute_dtype(dtype);
        let stats = self
            .recorded
            .lock()
            .expect("poisoned")
            .clone()
            .ok_or_else(|| {
                Error::internal(
                    &self.name,
                    "inverse before any training forward (no recorded batch statistics)",
                )
            })?;
        let g = self.scale(Pass::Record, cd)?;
        if !y.device().is_cpu() {
            self.defer_zero_scale_check(&g)?;
        } else if crate::util::to_f64_vec(&g)?.contains(&0.0) {
            return Err(zero_scale_error(
                self.name.clone(),
                self.config.eps_i,
                &g,
                self.gamma.var.as_tensor(),
            ));
        }
        if self.backend.applies(y) && !y.track_op() {
            let gv = crate::util::to_f64_vec(&g)?;
            let var = crate::util::to_f64_vec(&stats.var)?;
            let s: Vec<f64> = var.iter().map(|v| (v + self.config.eps).sqrt()).collect();
            let beta = crate::util::to_f64_vec(self.beta.var.as_tensor())?;
            return cpu::channel_affine(y, &beta, &gv, &s, &crate::util::to_f64_vec(&stats.mean)?);
        }
        let s = (stats.var + self.config.eps)?.sqrt()?;
        let beta =
            self.beta
                .tensor(Pass::Record)
                .to_dtype(cd)?
                .reshape((1, self.channels, 1, 1))?;
        let x = y
            .to_dtype(cd)?
            .broadcast_sub(&beta)?
            .broadcast_div(&g)?
            .broadcast_mul(&s)?
            .broadcast_add(&stats.mean)?;
        Ok(x.to_dtype(dtype)?)
    }

    fn params(&self) -> Vec<Param> {
        vec![self.gamma.clone(), self.beta.clone()]
    }

    /// With `x^ = (x - mu_B) / s` from the batch statistics of `input` (biased variance,
    /// `s = sqrt(var_B + eps)`): `dx = (g~ / s) (dy - mean(dy) - x^ mean(dy x^))`,
    /// `dg~ = sum(dy x^)` (so `dgamma = sign(gamma + eps_i) dg~` with the reparameterisation),
    /// `dbeta = sum(dy)`, means and sums over N, H, W per channel. The fused kernel where the
    /// backend applies it (statistics in f64); candle's ops in the compute dtype otherwise.
    fn vjp(
        &self,
        input: &Tensor,
        grad_output: &Tensor,
        grads: Option<&mut Grads>,
    ) -> Result<Tensor> {
        self.check_input(input)?;
        if self.backend.applies(input) && grad_output.dtype() == input.dtype() {
            let (scale, dscale) = self.scale_f64()?;
            let cached = self.input_stats.lock().expect("poisoned").take();
            let (mean, var) = match cached {
                Some((id, mean, var)) if id == input.id() => (mean, var),
                _ => cpu::channel_stats(input)?,
            };
            let s: Vec<f64> = var.iter().map(|v| (v + self.config.eps).sqrt()).collect();
            let r = cpu::batch_norm_backward(input, grad_output, &mean, &s, &scale)?;
            if let Some(grads) = grads {
                let dgamma: Vec<f64> = r.dscale.iter().zip(&dscale).map(|(a, b)| a * b).collect();
                grads.insert(
                    self.gamma.name.clone(),
                    Tensor::from_vec(dgamma, self.channels, input.device())?
                        .to_dtype(self.gamma.var.dtype())?,
                );
                grads.insert(
                    self.beta.name.clone(),
                    Tensor::from_vec(r.dshift, self.channels, input.device())?
                        .to_dtype(self.beta.var.dtype())?,
                );
            }
            return Ok(r.dx);
        }
        let dtype = input.dtype();
        let cd = compute_dtype(dtype);
        let x = input.to_dtype(cd)?;
        let dy = grad_output.to_dtype(cd)?;
        let stats = Self::batch_stats(&x)?;
        let s = (stats.var + self.config.eps)?.sqrt()?;
        let xhat = x.broadcast_sub(&stats.mean)?.broadcast_div(&s)?;
        drop(x);
        let shape = (1, self.channels, 1, 1);
        // `g~` and `d g~ / d gamma`: from f64 on the CPU; on another device computed there (no
        // host round trip), `d g~ / d gamma = 2 [gamma + eps_i >= 0] - 1`.
        let (g, dsign) = if input.device().is_cpu() {
            let (scale, dscale) = self.scale_f64()?;
            (
                Tensor::from_vec(scale, shape, input.device())?.to_dtype(cd)?,
                Tensor::from_vec(dscale, self.channels, input.device())?.to_dtype(cd)?,
            )
        } else {
            self.scale_on_device(cd)?
        };
        let mean_dy = dy.mean_keepdim((0, 2, 3))?;
        let dy_xhat = (&dy * &xhat)?;
        let mean_dy_xhat = dy_xhat.mean_keepdim((0, 2, 3))?;
        let dx = dy
            .broadcast_sub(&mean_dy)?
            .sub(&xhat.broadcast_mul(&mean_dy_xhat)?)?
            .broadcast_mul(&g.broadcast_div(&s)?)?;
        if let Some(grads) = grads {
            let dg = dy_xhat.sum((0, 2, 3))?;
            grads.insert(
                self.gamma.name.clone(),
                (dg * dsign)?.to_dtype(self.gamma.var.dtype())?,
            );
            grads.insert(
                self.beta.name.clone(),
                dy.sum((0, 2, 3))?.to_dtype(self.beta.var.dtype())?,
            );
        }
        Ok(dx.to_dtype(dtype)?)
    }
}

/// The [`Error::ZeroScale`] of a batch norm whose scale `g~` (`scale`) is 0 somewhere: the first
/// such channel and its gamma (read from the tensors; this runs only on failure).
fn zero_scale_error(layer: String, eps_i: f64, scale: &Tensor, gamma: &Tensor) -> Error {
    let scale = crate::util::to_f64_vec(scale).unwrap_or_default();
    let channel = scale.iter().position(|v| *v == 0.0).unwrap_or(0);
    let gamma = crate::util::to_f64_vec(gamma)
        .ok()
        .and_then(|g| g.get(channel).copied())
        .unwrap_or(f64::NAN);
    Error::ZeroScale {
        layer,
        channel,
        gamma,
        eps_i,
    }
}

impl candle_nn::Module for InvBatchNorm {
    /// Training forward: records the batch statistics for [`Invertible::inverse`].
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_pass(xs, Pass::RecordGraph)
            .map_err(candle_core::Error::wrap)
    }
}

impl Invertible for InvBatchNorm {
    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Layer::inverse(self, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::with_deferred_checks;
    use candle_core::Device;

    fn layer_with_gamma(gamma: &[f32], eps_i: f64) -> InvBatchNorm {
        let store = ParamStore::new(0, DType::F32, &Device::Cpu);
        let config = BatchNormConfig {
            eps_i,
            ..Default::default()
        };
        let layer = InvBatchNorm::new(&store, "bn", gamma.len(), config).unwrap();
        layer
            .gamma
            .var
            .set(&Tensor::new(gamma, &Device::Cpu).unwrap())
            .unwrap();
        layer
    }

    /// The GPU's scale and its derivative (computed where the parameters live) equal the f64
    /// ones the CPU reads, including the sign at and around `gamma + eps_i = 0`.
    #[test]
    fn device_side_scale_and_sign_match_the_host_ones() {
        let layer = layer_with_gamma(&[1.5, -0.25, -0.5, 0.0, -2.0], 0.5);
        let (scale, dscale) = layer.scale_f64().unwrap();
        let (g, dsign) = layer.scale_on_device(DType::F32).unwrap();
        let g = crate::util::to_f64_vec(&g).unwrap();
        let dsign = crate::util::to_f64_vec(&dsign).unwrap();
        for c in 0..scale.len() {
            assert!(
                (g[c] - scale[c]).abs() <= 1e-7,
                "channel {c}: {} vs {}",
                g[c],
                scale[c]
            );
            assert_eq!(dsign[c], dscale[c], "channel {c}");
        }
        let plain = InvBatchNorm {
            config: BatchNormConfig {
                reparam: false,
                ..layer.config
            },
            ..layer_with_gamma(&[1.5, -0.25], 0.0)
        };
        let (_, dsign) = plain.scale_on_device(DType::F32).unwrap();
        assert_eq!(crate::util::to_f64_vec(&dsign).unwrap(), vec![1.0, 1.0]);
    }

    /// The deferred zero-scale check (the GPU path, driven here on CPU tensors) gives the CPU's
    /// error, channel and gamma included, when its queue is read; a healthy layer passes.
    #[test]
    fn deferred_zero_scale_check_reports_the_channel_when_read() {
        let layer = layer_with_gamma(&[1.0, -0.5, 2.0], 0.5);
        let g = layer.scale(Pass::Record, DType::F32).unwrap();
        let err = with_deferred_checks(
            &Device::Cpu,
            || layer.defer_zero_scale_check(&g),
            |_| Ok(Vec::new()),
        )
        .unwrap_err();
        match err {
            Error::ZeroScale {
                channel,
                gamma,
                eps_i,
                ..
            } => {
                assert_eq!(channel, 1);
                assert_eq!(gamma, -0.5);
                assert_eq!(eps_i, 0.5);
            }
            other => panic!("expected ZeroScale, got {other}"),
        }
        let healthy = layer_with_gamma(&[1.0, 0.5], 0.5);
        let g = healthy.scale(Pass::Record, DType::F32).unwrap();
        with_deferred_checks(
            &Device::Cpu,
            || healthy.defer_zero_scale_check(&g),
            |_| Ok(Vec::new()),
        )
        .unwrap();
    }
}
