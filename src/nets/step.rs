//! The training step: one forward and the one backward ([`crate::backprop`]) with the
//! activations of a [`Source`], and the loss.

use super::{BackwardPlan, Network, Source};
use crate::backprop::{forward_checkpointed, Backward, Grads, Held};
use crate::error::{Error, Result};
use crate::layers::{InnerRebuild, Layer, Pass, Tape, TraceEntry};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

/// What a training step computed.
pub struct StepOutput {
    /// Mean cross-entropy of the batch.
    pub loss: f64,
    /// The logits (compute dtype).
    pub logits: Tensor,
    /// Parameter gradients by name (empty when not requested).
    pub grads: HashMap<String, Tensor>,
    /// Every activation the backward visited, top down (empty when not requested).
    pub trace: Vec<TraceEntry>,
    /// Bytes the forward kept on the tape for the backward.
    pub tape_bytes: usize,
    /// The input of the head (the output of the invertible part), as the backward started from.
    pub head_input: Option<Tensor>,
    /// From [`Network::step_with_grad_norm`] off the CPU: the sum of squares of every parameter
    /// gradient (reduced on the device in f64, f32 on Metal; non-finite when a gradient is),
    /// read with the loss so that the training loop needs no read of its own. `None` otherwise
    /// (on the CPU reading the gradients costs no transfer: [`crate::train::grad_sq_norm`]).
    pub grad_sq_norm: Option<f64>,
}

/// Options of [`Network::step`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StepOptions {
    /// Compute parameter gradients.
    pub grads: bool,
    /// Record every activation the backward visits.
    pub trace: bool,
    /// Add white Gaussian noise of this std (absolute) to the head's stored input before the
    /// backward starts reconstructing (reconstructed mode), drawn from `noise_seed`.
    pub output_noise: Option<f64>,
    /// Seed of the output noise.
    pub noise_seed: u64,
}

impl Network {
    /// Check an input batch: shape `(B, in_channels, size, size)`, finite values (off the CPU
    /// a device-side count, [`crate::util::ensure_finite`]).
    pub fn check_input(&self, x: &Tensor) -> Result<()> {
        let c = &self.config;
        let ok = matches!(x.dims4(), Ok((b, ch, h, w)) if b > 0 && ch == c.net.in_channels && h == c.input_size && w == c.input_size);
        if !ok {
            return Err(Error::ShapeMismatch {
                context: "network input".into(),
                expected: format!(
                    "(batch, {}, {}, {})",
                    c.net.in_channels, c.input_size, c.input_size
                ),
                got: x.dims().to_vec(),
            });
        }
        crate::util::ensure_finite(x, "network input")
    }

    /// Differentiable forward (whole-network autograd reference): logits.
    pub fn forward_graph(&self, x: &Tensor) -> Result<Tensor> {
        self.chain
            .forward_pass(&x.to_dtype(self.dtype)?, Pass::Graph)
    }

    /// Inference logits with running statistics.
    pub fn eval_logits(&self, x: &Tensor) -> Result<Tensor> {
        self.chain
            .forward_pass(&x.to_dtype(self.dtype)?, Pass::Eval)
    }

    /// Whole-network candle autograd: loss and gradients (the reference for the backward).
    pub fn autograd_grads(
        &self,
        x: &Tensor,
        labels: &Tensor,
    ) -> Result<(f64, HashMap<String, Tensor>)> {
        let logits = self.forward_graph(x)?;
        let loss = candle_nn::loss::cross_entropy(&logits, labels)?;
        let store = loss.backward()?;
        let mut grads = HashMap::new();
        for p in self.chain.params() {
            if let Some(g) = store.get(p.var.as_tensor()) {
                grads.insert(p.name.clone(), g.clone());
            }
        }
        Ok((loss.to_dtype(DType::F64)?.to_scalar::<f64>()?, grads))
    }

    /// The checkpointed segments for `every` units or blocks per segment (`None`: the default
    /// `ceil(sqrt(depth))`): the index in `chain.layers` of the first layer of each segment.
    /// The first segment starts at the stem (its checkpoint is the image); segment `j > 0`
    /// starts at unit `j * every` (the poolings between stages belong to the segment of the
    /// unit below them). Errors: `every` is 0 or more than the depth.
    pub fn checkpoint_segments(&self, every: Option<usize>) -> Result<Vec<usize>> {
        let depth = self.unit_starts.len();
        let k = crate::backprop::segment_length(every, depth)?;
        let mut segments = vec![0];
        segments.extend(self.unit_starts.iter().skip(k).step_by(k).copied());
        Ok(segments)
    }

    /// The layers an anchored backward can anchor, in network order: every layer whose input
    /// the reconstructed mode rebuilds (the invertible layers of a layer-wise chain, the
    /// reversible blocks, the layers of a hybrid's F and G), by name.
    pub fn anchorable(&self) -> Vec<String> {
        let mut out = Vec::new();
        anchorable_in(&self.chain, true, &mut out);
        out
    }

    /// Check that every anchor names an anchorable layer ([`Network::anchorable`]).
    fn check_anchors(&self, anchors: &[String]) -> Result<()> {
        let names = self.anchorable();
        match anchors.iter().find(|a| !names.contains(a)) {
            Some(a) => Err(Error::config(
                "anchor",
                format!(
                    "a layer whose input is rebuilt ({} of this network, e.g. {})",
                    names.len(),
                    names.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                ),
                format!("`{a}`"),
            )),
            None => Ok(()),
        }
    }

    /// One training step's forward and backward with activations from `source`. ResNet has no
    /// inverse, so its reconstructed mode is its stored mode. The checkpointed source stores
    /// the segment inputs of [`Network::checkpoint_segments`] (`plan.segment`) and the
    /// top segment whole.
    ///
    /// Host reads: one per step. The loss and, on a GPU, the device-side checks of the step
    /// (finite input, batch-norm zero scales) are read together at the end
    /// ([`crate::device::with_deferred_checks`]); a failed check is then the step's error. On
    /// the CPU the checks run at once, as before.
    pub fn step(
        &self,
        x: &Tensor,
        labels: &Tensor,
        plan: impl Into<BackwardPlan>,
        opts: StepOptions,
    ) -> Result<StepOutput> {
        self.step_reading(x, labels, plan.into(), opts, false)
    }

    /// [`Network::step`] that, off the CPU and with gradients, also reduces the gradients' sum
    /// of squares on the device and reads it with the loss ([`StepOutput::grad_sq_norm`]):
    /// what the training loop's clipping and divergence check need, without a read of its own.
    pub fn step_with_grad_norm(
        &self,
        x: &Tensor,
        labels: &Tensor,
        plan: impl Into<BackwardPlan>,
        opts: StepOptions,
    ) -> Result<StepOutput> {
        let want_norm = opts.grads && !self.device.is_cpu();
        self.step_reading(x, labels, plan.into(), opts, want_norm)
    }

    fn step_reading(
        &self,
        x: &Tensor,
        labels: &Tensor,
        plan: BackwardPlan,
        opts: StepOptions,
        want_norm: bool,
    ) -> Result<StepOutput> {
        let ((mut out, loss), values) = crate::device::with_deferred_checks(
            &self.device,
            || self.step_unread(x, labels, plan, opts),
            |(out, loss)| {
                let mut reads = vec![loss.clone()];
                if want_norm {
                    reads.push(grad_sq_norm_tensor(&out.grads, &self.device)?);
                }
                Ok(reads)
            },
        )?;
        drop(loss);
        out.loss = values[0];
        out.grad_sq_norm = want_norm.then(|| values[1]);
        Ok(out)
    }

    /// [`Network::step`] without its host read: the output (loss NaN) and the loss tensor.
    fn step_unread(
        &self,
        x: &Tensor,
        labels: &Tensor,
        plan: BackwardPlan,
        opts: StepOptions,
    ) -> Result<(StepOutput, Tensor)> {
        self.check_input(x)?;
        let source = plan.source;
        let segments = match source {
            Source::Checkpointed => Some(self.checkpoint_segments(plan.segment)?),
            Source::Stored | Source::Reconstructed | Source::Anchored => None,
        };
        let store_all = source.stores_all() || !self.config.arch.reconstructable();
        let mut tape = Tape::for_trace(store_all, opts.trace);
        if source == Source::Anchored {
            self.check_anchors(&plan.anchors)?;
            tape.anchors = plan.anchors.iter().cloned().collect();
        }
        let x = x.to_dtype(self.dtype)?;
        let logits = match &segments {
            Some(segments) => forward_checkpointed(&self.chain, &x, segments, &mut tape)?,
            None => self.chain.forward_tape(&x, &mut tape, true)?,
        };
        // The head pushed its input last: the output of the invertible part.
        let mut head_input = tape.pop("head")?;
        if let (Some(std), false) = (opts.output_noise, store_all) {
            let mut rng = crate::util::rng_for(opts.noise_seed, "output-noise");
            let noise = crate::util::randn(
                &mut rng,
                head_input.dims(),
                0.0,
                std,
                head_input.dtype(),
                head_input.device(),
            )?;
            head_input = (&head_input + noise)?;
        }
        let tape_bytes = tape.bytes() + bytes_of(&head_input);
        // The step keeps the head input for the caller only when tracing: otherwise the tape
        // holds it alone and the backward may overwrite it in place (crate::backprop).
        let kept_head_input = opts.trace.then(|| head_input.clone());
        tape.push(head_input);
        let (loss, grad_logits) = cross_entropy_unread(&logits, labels, opts.grads)?;
        let backward_source = match (&segments, store_all) {
            (Some(_), _) => Source::Checkpointed,
            (None, true) => Source::Stored,
            (None, false) => source,
        };
        let mut backward = Backward::new(
            BackwardPlan {
                source: backward_source,
                ..plan
            },
            tape,
            opts.grads,
            opts.trace,
        )
        .with_segments(segments.unwrap_or_default());
        let back = backward.step(
            &self.chain,
            Some(Held::shared(logits.clone())),
            grad_logits.map(Held::owned),
            None,
        )?;
        drop(back);
        let out = StepOutput {
            loss: f64::NAN,
            logits,
            grads: backward.grads.map(Grads::into_map).unwrap_or_default(),
            trace: backward.trace.unwrap_or_default(),
            tape_bytes,
            head_input: kept_head_input,
            grad_sq_norm: None,
        };
        Ok((out, loss))
    }
}

/// The layers of `chain` whose input a reconstructed backward rebuilds, in network order: an
/// invertible layer of a chain rebuilt layer-wise, except the first of a block's F or G (its
/// input is the block's); inside a block whose F and G are rebuilt layer-wise, theirs.
fn anchorable_in(chain: &crate::layers::Chain, top: bool, out: &mut Vec<String>) {
    if chain.rebuild != InnerRebuild::LayerwiseInverse {
        return;
    }
    for (k, layer) in chain.layers.iter().enumerate() {
        if (k > 0 || top) && layer.is_invertible() {
            out.push(layer.name().to_string());
        }
        if let crate::layers::Structure::Coupling(c) = layer.structure() {
            anchorable_in(c.f(), false, out);
            anchorable_in(c.g(), false, out);
        }
    }
}

/// Sum of squares of every gradient in `grads`, as a scalar tensor on `device`, reduced there
/// in f64 where `device` has it (f32 on Metal).
fn grad_sq_norm_tensor(grads: &HashMap<String, Tensor>, device: &Device) -> Result<Tensor> {
    let dtype = if crate::device::has_f64(device) {
        DType::F64
    } else {
        DType::F32
    };
    let mut total = Tensor::zeros((), dtype, device)?;
    for g in grads.values() {
        total = (total + g.to_dtype(dtype)?.sqr()?.sum_all()?)?;
    }
    Ok(total)
}

fn bytes_of(t: &Tensor) -> usize {
    t.elem_count() * t.dtype().size_in_bytes()
}

/// Mean cross-entropy of `logits (B, classes)` (compute dtype) against `labels (B,)` (u32),
/// and, when `grad`, its gradient in closed form: `(softmax(logits) - onehot(labels)) / B`.
pub fn cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    grad: bool,
) -> Result<(f64, Option<Tensor>)> {
    let (loss, g) = cross_entropy_unread(logits, labels, grad)?;
    Ok((loss.to_dtype(DType::F64)?.to_scalar::<f64>()?, g))
}

/// [`cross_entropy`] with the loss left on the device (a scalar tensor in the logits' dtype).
fn cross_entropy_unread(
    logits: &Tensor,
    labels: &Tensor,
    grad: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let (b, classes) = logits.dims2()?;
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    // The loss as candle_nn's `cross_entropy` computes it (same rounding).
    let loss = candle_nn::loss::nll(&log_p, labels)?;
    let g = if grad {
        let onehot = labels
            .to_dtype(DType::U32)?
            .reshape((b, 1))?
            .broadcast_eq(
                &Tensor::arange(0u32, classes as u32, labels.device())?.reshape((1, classes))?,
            )?
            .to_dtype(logits.dtype())?;
        Some(((log_p.exp()? - onehot)? / b as f64)?)
    } else {
        None
    };
    Ok((loss, g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::{Arch, NetConfig, StepOptions};

    /// The GPU's gradient norm (summed on the device, read once with the loss) equals the
    /// training loop's host sum, here on CPU tensors; `step_with_grad_norm` on the CPU leaves
    /// it to the host (nothing to save there).
    #[test]
    fn device_side_gradient_norm_equals_the_host_sum() {
        let mut cfg = NetConfig::new(Arch::Hybrid);
        cfg.depth = 2;
        let net = Network::build(&cfg, DType::F32, &Device::Cpu).unwrap();
        let x = crate::util::randn(
            &mut crate::util::rng_for(0, "norm-test"),
            &[4, cfg.net.in_channels, cfg.input_size, cfg.input_size],
            0.0,
            1.0,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let labels = Tensor::new(&[0u32, 1, 2, 3], &Device::Cpu).unwrap();
        let opts = StepOptions {
            grads: true,
            ..StepOptions::default()
        };
        let out = net
            .step_with_grad_norm(&x, &labels, Source::Reconstructed, opts)
            .unwrap();
        assert!(out.grad_sq_norm.is_none());
        assert!(!out.grads.is_empty());
        let host = crate::train::grad_sq_norm(&out.grads).unwrap();
        let device = grad_sq_norm_tensor(&out.grads, &Device::Cpu)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(host > 0.0 && host.is_finite(), "{host}");
        assert!(
            (device - host).abs() <= 1e-12 * host,
            "device {device} vs host {host}"
        );
        let plain = net.step(&x, &labels, Source::Reconstructed, opts).unwrap();
        assert_eq!(plain.loss, out.loss);
        assert!(plain.grad_sq_norm.is_none());
    }
}
