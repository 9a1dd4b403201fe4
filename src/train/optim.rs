//! The optimiser and its schedule: [`OneCycle`] learning rates, [`Sgd`] with momentum and
//! coupled weight decay, and gradient clipping by global norm ([`clip_scale`],
//! [`grad_sq_norm`]).

use super::eval::to_f64;
use crate::device::compute_dtype;
use crate::error::{Error, Result};
use candle_core::{DType, Tensor, Var};
use std::collections::HashMap;

/// The one-cycle learning-rate schedule (per step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneCycle {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// Fraction of the steps spent going up.
    pub warmup: f64,
    /// Start at `max_lr / lr_div`.
    pub lr_div: f64,
    /// End at `max_lr / lr_final_div`.
    pub lr_final_div: f64,
}

impl OneCycle {
    /// Learning rate of step `step` (0-based): `lr0 + (max - lr0) t / W` for `t < W` with
    /// `W = round(warmup T)`, then linear from `max` at `t = W` to `max / lr_final_div` at
    /// `t = T - 1`.
    pub fn lr(&self, step: usize) -> f64 {
        let total = self.total_steps.max(1);
        let start = self.max_lr / self.lr_div;
        let end = self.max_lr / self.lr_final_div;
        let up = ((self.warmup * total as f64).round() as usize).min(total - 1);
        let t = step.min(total - 1);
        if t < up {
            start + (self.max_lr - start) * t as f64 / up as f64
        } else if total - 1 > up {
            self.max_lr + (end - self.max_lr) * (t - up) as f64 / (total - 1 - up) as f64
        } else {
            self.max_lr
        }
    }
}

/// SGD with momentum and coupled L2 weight decay (see the module doc for the update).
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Momentum `mu`.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Momentum buffers by parameter name (compute dtype).
    pub buffers: HashMap<String, Tensor>,
}

impl Sgd {
    /// An optimiser with empty buffers.
    pub fn new(momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            weight_decay,
            buffers: HashMap::new(),
        }
    }

    /// One update of every parameter in `params` with `grads` (same names) at learning rate `lr`.
    pub fn step(
        &mut self,
        params: &[(String, Var)],
        grads: &HashMap<String, Tensor>,
        lr: f64,
    ) -> Result<()> {
        self.step_scaled(params, grads, lr, 1.0)
    }

    /// [`Sgd::step`] with every gradient multiplied by `scale` first (gradient clipping,
    /// [`clip_scale`]; a scale of 1 multiplies nothing).
    pub fn step_scaled(
        &mut self,
        params: &[(String, Var)],
        grads: &HashMap<String, Tensor>,
        lr: f64,
        scale: f64,
    ) -> Result<()> {
        for (name, var) in params {
            let grad = grads
                .get(name)
                .ok_or_else(|| Error::internal(format!("parameter `{name}`"), "no gradient"))?;
            let dtype = var.dtype();
            let cd = compute_dtype(dtype);
            let weight = var.as_detached_tensor().to_dtype(cd)?;
            let mut direction = grad.detach().to_dtype(cd)?;
            if scale != 1.0 {
                direction = (direction * scale)?;
            }
            if self.weight_decay > 0.0 {
                direction = (direction + (&weight * self.weight_decay)?)?;
            }
            let velocity = match self.buffers.get(name) {
                Some(v) if self.momentum > 0.0 => ((v * self.momentum)? + direction)?,
                _ => direction,
            };
            let updated = (weight - (&velocity * lr)?)?;
            var.set(&updated.to_dtype(dtype)?)?;
            self.buffers.insert(name.clone(), velocity);
        }
        Ok(())
    }
}

/// The factor that clips a gradient of global L2 norm `norm` to at most `max_norm`:
/// `min(1, max_norm / norm)`; 1 when clipping is off (`max_norm` 0) or the norm is within it.
pub fn clip_scale(norm: f64, max_norm: f64) -> f64 {
    if max_norm > 0.0 && norm > max_norm {
        max_norm / norm
    } else {
        1.0
    }
}

/// Sum of squares of every gradient (f64); non-finite when any gradient is. Reads each
/// gradient's sum: for CPU tensors (on a GPU, [`crate::nets::StepOutput::grad_sq_norm`] comes
/// with the step's one read).
pub fn grad_sq_norm(grads: &HashMap<String, Tensor>) -> Result<f64> {
    let mut total = 0.0;
    for g in grads.values() {
        total += to_f64(&g.to_dtype(DType::F64)?.sqr()?.sum_all()?)?;
    }
    Ok(total)
}
