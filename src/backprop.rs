//! The one backward (docs/design.md section 3): a single driver walks the layers from the top, decides where
//! each layer's input comes from, and calls the layer's closed-form vector-Jacobian product
//! ([`Layer::vjp`]). The sources differ only in where the input comes from:
//!
//! - **stored** ([`Source::Stored`]): popped from the [`Tape`] the forward filled;
//! - **reconstructed** ([`Source::Reconstructed`]): rebuilt by the inverse of the layer (from its
//!   output, which the walk already holds), or by a reversible block's analytic inverse;
//! - **recomputed**: hidden activations inside a reversible block whose F and G are not
//!   invertible (RevNet) are recomputed forward from the block's input ([`InnerRebuild`]);
//! - **checkpointed** ([`Source::Checkpointed`], Chen et al. 2016): the forward stores only the
//!   input of the first layer of each segment of the network's top-level chain (a segment is
//!   `k` consecutive units or blocks, with the poolings that follow them; the first segment
//!   starts at the stem, whose input is the image). When the walk reaches a segment it
//!   recomputes the segment forward from its checkpoint in [`Pass::Replay`] (the batch
//!   statistics the training forward recorded), storing every input as the stored mode does,
//!   and walks the segment in stored mode. The top segment (and the head) is not recomputed:
//!   the forward stored it as the stored mode does, since its activations are still live when
//!   the backward starts (as `torch.utils.checkpoint.checkpoint_sequential` runs its last
//!   segment). Every VJP is then taken at bitwise the same input as in stored mode, so the
//!   gradients are bitwise equal to the stored ones.
//!
//! - **anchored** ([`Source::Anchored`]): reconstructed, except at the anchors of the plan
//!   ([`BackwardPlan::anchors`]), whose inputs the forward stores ([`Tape::anchors`]) and the
//!   walk takes as the stored mode does, so the reconstruction error restarts from zero there.
//!   No anchor gives the reconstructed step bitwise; every rebuilt input anchored
//!   ([`crate::nets::Network::anchorable`]) gives the stored step bitwise.
//!
//! Gomez et al.'s Algorithm 1 is a rebuild policy of the same driver ([`Rebuild::Algorithm1`]):
//! `G(y1)` is computed once with its hidden inputs kept, and serves both `x2 = y2 - G(y1)` and
//! the gradient through G; then `F(x2)` likewise.
//!
//! No autograd graph is built: every primitive layer has a closed-form [`Layer::vjp`]
//! (whole-network autograd, [`crate::nets::Network::autograd_grads`], is the test oracle only).
//!
//! # Memory discipline
//! The walk moves each activation and gradient down (nothing is cloned for later), so an
//! activation is freed as soon as the layer below has rebuilt its own input from it. An
//! activation or gradient the driver holds alone (`owned`: rebuilt by an inverse or returned by
//! a VJP, with no trace recording it) is updated *in place* by a reversible block when the CPU
//! kernels apply ([`crate::backend::cpu::add_assign`]): the block's output becomes
//! its input (`y2 -= G(y1)`, `y1 -= F(x2)`) and its output gradient becomes its input gradient
//! (`dy1 += dG`, `dy2 += dF`). A reconstructed step therefore holds, at its peak:
//!
//! - the activation being inverted and its gradient (`2` activation-sized buffers), plus
//! - one activation-sized scratch buffer of the layer being back-propagated: the new input of
//!   an element-wise layer (leaky ReLU, batch norm), the new input gradient, or a half-size
//!   `F`/`G` output inside a coupling (`c/2`, the paper's coupling temporary);
//! - inside a reversible block, the layer-wise working set of F or G at `c/2` channels
//!   (hybrid) or the recomputed hidden inputs of F or G (RevNet, the local bottleneck).
//!
//! Parameter gradients (one per parameter, kept until the optimiser step) are not activations
//! and are reported apart by the memory experiment. Everything that is not owned (a stored
//! activation on the tape, a view shared with the caller, a traced tensor) is never written:
//! those steps allocate their result instead, with the same values.

use crate::error::{Error, Result};
use crate::layers::{
    split_channels, AdditiveCoupling, Chain, InnerRebuild, Layer, Pass, Residual, Role, Structure,
    Tape, TraceEntry,
};
/// What the driver and the layers' VJPs exchange, defined with the layers
/// ([`crate::layers::grads`]) so that they import nothing from the driver.
pub use crate::layers::{Back, Grads, Held};
use candle_core::Tensor;

mod plan;
pub use plan::{default_segment, segment_length, BackwardPlan, Rebuild, Source};

/// The state of one backward pass: its plan, what the forward stored, and what is collected
/// on the way.
pub struct Backward {
    /// The plan: where inputs come from and how reversible blocks rebuild theirs (its segment
    /// length is resolved into [`Backward::segments`]).
    pub plan: BackwardPlan,
    /// What the forward stored (every input in stored mode; non-invertible layers' inputs only
    /// in reconstructed mode).
    pub tape: Tape,
    /// Parameter gradients; `None` skips every VJP (trace only).
    pub grads: Option<Grads>,
    /// Every activation the backward visited, top down, when asked for.
    pub trace: Option<Vec<TraceEntry>>,
    /// Checkpointed source: the index in the top-level chain of the first layer of every
    /// segment, increasing from 0; the last segment (to the end of the chain) is the one the
    /// forward stored whole ([`forward_checkpointed`]).
    pub segments: Vec<usize>,
}

impl Backward {
    /// A backward following `plan` over `tape`.
    pub fn new(plan: BackwardPlan, tape: Tape, grads: bool, trace: bool) -> Self {
        Backward {
            plan,
            tape,
            grads: grads.then(Grads::new),
            trace: trace.then(Vec::new),
            segments: Vec::new(),
        }
    }

    /// The same backward with the checkpointed source's segments (see [`Backward::segments`]).
    pub fn with_segments(mut self, segments: Vec<usize>) -> Self {
        self.segments = segments;
        self
    }

    fn stored(&self) -> bool {
        self.plan.source == Source::Stored
    }

    /// Whether the input of the layer `name` comes from the tape as in stored mode: every
    /// layer's in stored mode, an anchor's in anchored mode.
    fn takes_stored(&self, name: &str) -> bool {
        self.stored() || self.tape.anchors.contains(name)
    }

    /// Whether in-place updates are allowed at all (not while a trace keeps references).
    fn in_place(&self) -> bool {
        self.trace.is_none()
    }

    /// Pop a stored input. In reconstructed mode the tape holds the only reference to what it
    /// stored (the forward keeps no other, and the step keeps the head input only when
    /// tracing), so the popped tensor is owned; stored mode never writes in place.
    fn pop(&mut self, layer: &str) -> Result<Held> {
        let t = self.tape.pop(layer)?;
        Ok(if self.stored() {
            Held::shared(t)
        } else {
            Held::owned(t)
        })
    }

    fn record(&mut self, layer: &str, role: Role, tensor: &mut Option<Held>) {
        if let (Some(trace), Some(tensor)) = (self.trace.as_mut(), tensor.as_mut()) {
            trace.push(TraceEntry {
                layer: layer.to_string(),
                role,
                tensor: tensor.tensor.clone(),
            });
            tensor.owned = false;
        }
    }

    /// One step of the backward through `layer`, from its output (`None` where the source does
    /// not need it: stored mode) and output gradient, or from its input when the caller knows it.
    pub fn step(
        &mut self,
        layer: &dyn Layer,
        output: Option<Held>,
        grad: Option<Held>,
        known_input: Option<Held>,
    ) -> Result<Back> {
        match layer.structure() {
            Structure::Primitive => self.primitive(layer, output, grad, known_input),
            Structure::Chain(chain) => self.chain(chain, output, grad, known_input, None),
            Structure::Coupling(c) => self.coupling(c, output, grad, known_input),
            Structure::Residual(r) => self.residual(r, grad, known_input),
        }
    }

    /// A primitive layer: input known, popped, or rebuilt by its inverse (the output is freed
    /// before the VJP allocates the input gradient).
    fn primitive(
        &mut self,
        layer: &dyn Layer,
        output: Option<Held>,
        grad: Option<Held>,
        known_input: Option<Held>,
    ) -> Result<Back> {
        let (input, output, rebuilt) = match known_input {
            Some(x) => (Some(x), output, false),
            None if self.takes_stored(layer.name()) || !layer.is_invertible() => {
                if self
                    .tape
                    .stores_for(layer.name(), true, layer.vjp_at_output())
                {
                    (Some(self.pop(layer.name())?), output, false)
                } else {
                    // Nothing stored: the VJP is taken at the output.
                    (None, output, false)
                }
            }
            None => {
                let y = output.ok_or_else(|| missing_output(layer.name()))?;
                let x = layer.inverse(&y.tensor)?;
                drop(y);
                (Some(Held::owned(x)), None, true)
            }
        };
        // The output is read only when the VJP is taken there.
        let output = if input.is_some() { None } else { output };
        let grad = match grad {
            Some(g) => {
                let at = match (&input, &output) {
                    (Some(x), _) => &x.tensor,
                    (None, Some(y)) => &y.tensor,
                    (None, None) => return Err(missing_output(layer.name())),
                };
                let dx = layer.vjp(at, &g.tensor, self.grads.as_mut())?;
                drop(g);
                Some(Held::owned(dx))
            }
            None => None,
        };
        drop(output);
        Ok(Back {
            input,
            grad,
            rebuilt,
        })
    }

    /// The walk down a chain. `replayed` holds every layer's input (bottom to top) when the
    /// caller computed them already (Algorithm 1); a recompute chain in reconstructed mode
    /// computes them here from its known input.
    fn chain(
        &mut self,
        chain: &Chain,
        output: Option<Held>,
        grad: Option<Held>,
        known_input: Option<Held>,
        replayed: Option<Vec<Tensor>>,
    ) -> Result<Back> {
        if self.plan.source == Source::Checkpointed {
            // The top-level chain: its segments (the chains inside are walked stored).
            let segments = std::mem::take(&mut self.segments);
            let back = self.checkpointed(chain, &segments, output, grad);
            self.plan.source = Source::Checkpointed;
            return back;
        }
        self.walk(
            chain,
            0..chain.layers.len(),
            output,
            grad,
            known_input,
            replayed,
        )
    }

    /// The checkpointed walk of the top-level chain (module docs): the top segment from the
    /// tape as in stored mode; then, segment by segment downwards, its checkpoint popped, the
    /// segment recomputed forward in [`Pass::Replay`] onto a tape of its own, and walked in
    /// stored mode. Leaves `self.plan.source` at [`Source::Stored`].
    fn checkpointed(
        &mut self,
        chain: &Chain,
        segments: &[usize],
        output: Option<Held>,
        grad: Option<Held>,
    ) -> Result<Back> {
        check_segments(chain, segments)?;
        self.plan.source = Source::Stored;
        let top = segments[segments.len() - 1];
        let mut back = self.walk(chain, top..chain.layers.len(), output, grad, None, None)?;
        for j in (0..segments.len() - 1).rev() {
            let (first, end) = (segments[j], segments[j + 1]);
            let checkpoint = self.tape.pop(chain.layers[first].name())?;
            let mut tape = Tape::replay(self.tape.for_trace);
            let mut h = checkpoint;
            for layer in &chain.layers[first..end] {
                h = layer.forward_tape(&h, &mut tape, true)?;
            }
            // The segment's output: the walk holds it already (the input of the segment above).
            drop(h);
            let outer = std::mem::replace(&mut self.tape, tape);
            let walked = self.walk(chain, first..end, back.input, back.grad, None, None);
            let tape = std::mem::replace(&mut self.tape, outer);
            back = walked?;
            if !tape.is_empty() {
                return Err(Error::internal(
                    chain.name(),
                    format!(
                        "checkpointed segment {first}..{end} left {} recomputed activations unread",
                        tape.len()
                    ),
                ));
            }
        }
        Ok(back)
    }

    /// The walk down the layers `range` of `chain` (top first), from the output of the top one.
    fn walk(
        &mut self,
        chain: &Chain,
        range: std::ops::Range<usize>,
        output: Option<Held>,
        grad: Option<Held>,
        mut known_input: Option<Held>,
        replayed: Option<Vec<Tensor>>,
    ) -> Result<Back> {
        let stored = self.stored();
        let mut replayed = match replayed {
            Some(r) => Some(r),
            None if !stored && chain.rebuild == InnerRebuild::Recompute => {
                let x0 = known_input
                    .as_ref()
                    .ok_or_else(|| {
                        Error::internal(chain.name(), "recomputation needs the chain input")
                    })?
                    .tensor
                    .clone();
                Some(chain.layer_inputs(&x0, Pass::Replay)?)
            }
            None => None,
        };
        let has_replayed = replayed.is_some();
        let mut out = output;
        let mut grad = grad;
        let mut rebuilt = false;
        let bottom = range.start;
        for k in range.rev() {
            let layer = chain.layers[k].as_ref();
            // Inputs recomputed forward are shared with nothing once popped from `replayed`.
            let replayed_k = replayed.as_mut().and_then(|r| {
                r.truncate(k + 1);
                r.pop()
            });
            let known = if k == bottom {
                known_input.take()
            } else {
                replayed_k.map(Held::owned)
            };
            // Stored mode needs no outputs (only a reversible block reads its own output).
            let out_k = if stored && !needs_output_when_stored(layer) {
                None
            } else {
                out.take()
            };
            let mut back = self.step(layer, out_k, grad.take(), known)?;
            // Trace every input that reconstructed mode rebuilds (in stored mode too, so that
            // the two traces line up entry by entry).
            let as_stored = self.takes_stored(layer.name());
            let rebuildable = back.rebuilt
                || (as_stored
                    && (chain.rebuild == InnerRebuild::Recompute || layer.is_invertible()));
            // The input of a chain's first layer is the chain's input: recorded by the block
            // that holds the chain, or, at the top level, the network input, which a rebuilt
            // first layer (no stem below it) reconstructs and the trace measures.
            let first_of_network = k == 0 && chain.hidden_role.is_none();
            if (k > 0 || (first_of_network && layer.is_invertible()))
                && (rebuildable || has_replayed)
            {
                let role = chain.hidden_role.unwrap_or(layer.input_role());
                self.record(layer.name(), role, &mut back.input);
            }
            rebuilt = back.rebuilt;
            out = back.input;
            grad = back.grad;
        }
        Ok(Back {
            input: out,
            grad,
            rebuilt,
        })
    }

    /// A reversible block `y1 = x1 + F(x2)`, `y2 = x2 + G(y1)`.
    ///
    /// Stored: `x` from the tape, `y` from the walk; the gradient flows through G (input `y1`)
    /// then F (input `x2`): `dx1 = dy1 + dG`, `dx2 = dy2 + dF(dx1)`.
    /// Reconstructed, per layer: `x2 = y2 - G(y1)`, the backward of G (hidden activations
    /// rebuilt as G's [`InnerRebuild`] says), `x1 = y1 - F(x2)`, the backward of F. Owned
    /// buffers are updated in place (module docs).
    fn coupling(
        &mut self,
        c: &AdditiveCoupling,
        output: Option<Held>,
        grad: Option<Held>,
        known_input: Option<Held>,
    ) -> Result<Back> {
        let name = c.name().to_string();
        if !self.takes_stored(&name) && known_input.is_none() {
            let y = output.ok_or_else(|| missing_output(&name))?;
            return self.coupling_rebuild(c, y, grad);
        }
        let input = match known_input {
            Some(x) => x,
            None => self.pop(&name)?,
        };
        let stored = self.stored();
        let needs = |chain: &Chain| needs_output(chain, stored);
        let (x1, x2) = split_channels(&input.tensor, &name)?;
        // y1 = x1 + F(x2): from the walk when it holds the output, else recomputed.
        let y1 = match &output {
            Some(y) => split_channels(&y.tensor, &name)?.0,
            None => c.add(&x1, &c.f().forward_pass(&x2, Pass::Replay)?)?,
        };
        let f_out = if needs(c.f()) {
            Some(Held::owned(c.sub(&y1, &x1)?))
        } else {
            None
        };
        let g_out = if needs(c.g()) {
            let y = output
                .as_ref()
                .ok_or_else(|| missing_output(&name))?
                .tensor
                .clone();
            Some(Held::owned(c.sub(&split_channels(&y, &name)?.1, &x2)?))
        } else {
            None
        };
        drop(output);
        let (gy1, gy2, dy_in_place) = split_grad(c, grad.as_ref())?;
        let back_g = self.chain(
            c.g(),
            g_out,
            gy2.clone().map(Held::shared),
            Some(Held::shared(y1)),
            None,
        )?;
        // dx1 = dy1 + dG, written over dy1 when the gradient is ours.
        let gx1 = add_branch_grad(c, gy1, back_g.grad, dy_in_place)?;
        let back_f = self.chain(
            c.f(),
            f_out,
            gx1.clone().map(Held::shared),
            Some(Held::shared(x2)),
            None,
        )?;
        // dx2 = dy2 + dF, written over dy2 when the gradient is ours: dy becomes dx.
        let grad = input_grad(c, grad, gx1, gy2, back_f.grad, dy_in_place)?;
        Ok(Back {
            input: Some(input),
            grad,
            rebuilt: false,
        })
    }

    /// Reconstructed step of a reversible block (per-layer or Algorithm 1).
    fn coupling_rebuild(
        &mut self,
        c: &AdditiveCoupling,
        y: Held,
        grad: Option<Held>,
    ) -> Result<Back> {
        let name = c.name().to_string();
        let algorithm1 = self.plan.rebuild == Rebuild::Algorithm1;
        let y_in_place = y.owned && self.in_place() && c.can_update_in_place(&y.tensor);
        let (y1, y2) = split_channels(&y.tensor, &name)?;
        // x2 = y2 - G(y1), written over y2 when y is ours.
        let (g_out, g_inputs) = c.g().forward_keep(&y1, Pass::Replay, algorithm1)?;
        let x2 = c.sub_maybe_in_place(y2, &g_out, y_in_place)?;
        let (gy1, gy2, dy_in_place) = split_grad(c, grad.as_ref())?;
        // Backward of G from its output (layer-wise inverses), its recomputed inputs, or
        // (Algorithm 1) the inputs kept by the forward above.
        let g_replayed = algorithm1.then_some(g_inputs);
        let back_g = self.chain(
            c.g(),
            Some(Held::owned(g_out)),
            gy2.clone().map(Held::shared),
            Some(Held::shared(y1.clone())),
            g_replayed,
        )?;
        drop(back_g.input);
        // dx1 = dy1 + dG, written over dy1 when the gradient is ours.
        let gx1 = add_branch_grad(c, gy1, back_g.grad, dy_in_place)?;
        // x1 = y1 - F(x2), written over y1 when y is ours: y becomes x.
        let (f_out, f_inputs) = c.f().forward_keep(&x2, Pass::Replay, algorithm1)?;
        let x1 = c.sub_maybe_in_place(y1, &f_out, y_in_place)?;
        let input = if y_in_place {
            drop(x1);
            y
        } else {
            drop(y);
            Held::owned(c.cat(&x1, &x2)?)
        };
        let f_replayed = algorithm1.then_some(f_inputs);
        let back_f = self.chain(
            c.f(),
            Some(Held::owned(f_out)),
            gx1.clone().map(Held::shared),
            Some(Held::shared(x2)),
            f_replayed,
        )?;
        drop(back_f.input);
        // dx2 = dy2 + dF, written over dy2 when the gradient is ours: dy becomes dx.
        let grad = input_grad(c, grad, gx1, gy2, back_f.grad, dy_in_place)?;
        Ok(Back {
            input: Some(input),
            grad,
            rebuilt: true,
        })
    }

    /// An ordinary residual block `y = x + F(x)`: input from the caller or the tape,
    /// `dx = dy + dF`.
    fn residual(
        &mut self,
        r: &Residual,
        grad: Option<Held>,
        known_input: Option<Held>,
    ) -> Result<Back> {
        let input = match known_input {
            Some(x) => x,
            None => self.pop(r.name())?,
        };
        if needs_output_when_stored(r.f()) {
            return Err(Error::config(
                r.name(),
                "a residual branch that does not end in a reversible block",
                "one that does (not supported)",
            ));
        }
        let back_f = self.chain(
            r.f(),
            None,
            grad.as_ref().map(|g| Held::shared(g.tensor.clone())),
            Some(Held::shared(input.tensor.clone())),
            None,
        )?;
        let grad = match (grad, back_f.grad) {
            (Some(g), Some(gf)) => Some(Held::owned((&g.tensor + &gf.tensor)?)),
            _ => None,
        };
        Ok(Back {
            input: Some(input),
            grad,
            rebuilt: false,
        })
    }
}

/// Whether the step of `layer` reads its output: in stored mode as
/// [`needs_output_when_stored`]; in reconstructed mode unless every input it needs is known or
/// recomputed (a chain rebuilt by recomputation, a non-invertible layer that stored its input).
pub fn needs_output(layer: &dyn Layer, stored: bool) -> bool {
    if stored {
        return needs_output_when_stored(layer);
    }
    match layer.structure() {
        Structure::Chain(c) => c.rebuild == InnerRebuild::LayerwiseInverse,
        Structure::Primitive => layer.is_invertible() || layer.vjp_at_output(),
        Structure::Coupling(_) | Structure::Residual(_) => true,
    }
}

/// Whether the stored-mode step of `layer` reads its output: a reversible block does (its G
/// takes `y1`), a layer whose VJP is taken at its output, and a chain whose top layer does.
pub fn needs_output_when_stored(layer: &dyn Layer) -> bool {
    match layer.structure() {
        Structure::Primitive => layer.vjp_at_output(),
        Structure::Residual(_) => false,
        Structure::Coupling(_) => true,
        Structure::Chain(c) => c
            .layers
            .last()
            .is_some_and(|l| needs_output_when_stored(l.as_ref())),
    }
}

/// The halves `(dy1, dy2)` of a block's output gradient, and whether they may be overwritten
/// (the walk holds the gradient alone and the kernels apply).
fn split_grad(
    c: &AdditiveCoupling,
    grad: Option<&Held>,
) -> Result<(Option<Tensor>, Option<Tensor>, bool)> {
    Ok(match grad {
        Some(g) => {
            let (a, b) = split_channels(&g.tensor, c.name())?;
            (
                Some(a),
                Some(b),
                g.owned && c.can_update_in_place(&g.tensor),
            )
        }
        None => (None, None, false),
    })
}

/// `dx1 = dy1 + dG` (written over `dy1` when `in_place`); `None` when no gradient flows.
fn add_branch_grad(
    c: &AdditiveCoupling,
    dy1: Option<Tensor>,
    dg: Option<Held>,
    in_place: bool,
) -> Result<Option<Tensor>> {
    match (dy1, dg) {
        (Some(a), Some(dg)) => Ok(Some(c.add_maybe_in_place(a, &dg.tensor, in_place)?)),
        (Some(_), None) => Err(missing_grad(c.name())),
        _ => Ok(None),
    }
}

/// The block's input gradient `[dx1, dy2 + dF]`: written over the output gradient `grad` when
/// `in_place` (then `dx1` already lives in its first half), else a new tensor.
fn input_grad(
    c: &AdditiveCoupling,
    grad: Option<Held>,
    dx1: Option<Tensor>,
    dy2: Option<Tensor>,
    df: Option<Held>,
    in_place: bool,
) -> Result<Option<Held>> {
    match (grad, dx1, dy2, df) {
        (Some(g), Some(dx1), Some(dy2), Some(df)) => {
            if in_place {
                drop(c.add_maybe_in_place(dy2, &df.tensor, true)?);
                drop(dx1);
                Ok(Some(g))
            } else {
                drop(g);
                Ok(Some(Held::owned(c.cat_add(&dx1, &dy2, &df.tensor)?)))
            }
        }
        (Some(_), Some(_), _, None) => Err(missing_grad(c.name())),
        _ => Ok(None),
    }
}

/// The checkpointed forward of the top-level `chain` from `x`: the layers below
/// `segments.last()` run in [`Pass::Record`] and only the input of each segment's first layer
/// is pushed on `tape` (a tape that stores everything); the top segment (to the end of the
/// chain) runs as the stored forward does ([`Layer::forward_tape`]). Returns the chain's output.
pub fn forward_checkpointed(
    chain: &Chain,
    x: &Tensor,
    segments: &[usize],
    tape: &mut Tape,
) -> Result<Tensor> {
    check_segments(chain, segments)?;
    if !tape.store_all {
        return Err(Error::internal(
            chain.name(),
            "the checkpointed forward needs a tape that stores every input",
        ));
    }
    let top = segments[segments.len() - 1];
    let mut h = x.clone();
    for (i, layer) in chain.layers.iter().enumerate() {
        if i < top {
            if segments.contains(&i) {
                tape.push(h.clone());
            }
            h = layer.forward_pass(&h, Pass::Record)?;
        } else {
            h = layer.forward_tape(&h, tape, true)?;
        }
    }
    Ok(h)
}

/// Segments are the first-layer indices of the checkpointed segments: strictly increasing from
/// 0, each a layer of `chain`.
fn check_segments(chain: &Chain, segments: &[usize]) -> Result<()> {
    let ok = segments.first() == Some(&0)
        && segments.windows(2).all(|w| w[0] < w[1])
        && segments.last().is_some_and(|&l| l < chain.layers.len());
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            format!("{}: checkpoint segments", chain.name()),
            format!(
                "indices from 0, strictly increasing, below {}",
                chain.layers.len()
            ),
            format!("{segments:?}"),
        ))
    }
}

fn missing_output(layer: &str) -> Error {
    Error::internal(
        layer,
        "the reconstructed backward reached this layer without its output",
    )
}

fn missing_grad(layer: &str) -> Error {
    Error::internal(layer, "no gradient came back from F or G")
}
