//! The recipe of docs/extending.md, followed from outside the crate: a new invertible layer
//! kind written against the public API only, checked against candle's autograd (its closed-form
//! VJP) and run through the one backward in stored and reconstructed mode.

use candle_core::{DType, Device, Tensor};
use revstab::backprop::{Backward, BackwardPlan, Held};
use revstab::layers::{
    autograd_vjp, primitives, Chain, Grads, InnerRebuild, InvLeakyReLU, Layer, Param, ParamStore,
    Pass, Tape,
};
use revstab::nets::Arch;

use crate::common::Tolerance;

/// The toy layer: `y = s * x` with one learnable scale `s_c > 0` per channel (NCHW).
///
/// Inverse `x = y / s`; VJP `dL/dx = s * dL/dy`, `dL/ds_c = sum over (n, h, w) of
/// x * dL/dy`.
struct ChannelScale {
    name: String,
    scale: Param,
}

impl ChannelScale {
    fn new(store: &ParamStore, name: &str, channels: usize) -> revstab::Result<Self> {
        Ok(ChannelScale {
            name: name.into(),
            scale: store.constant(&format!("{name}.scale"), &[channels], 1.5)?,
        })
    }

    /// The scale as `(1, C, 1, 1)` in `pass`.
    fn s(&self, pass: Pass) -> revstab::Result<Tensor> {
        let s = self.scale.tensor(pass);
        let c = s.dims1()?;
        Ok(s.reshape((1, c, 1, 1))?)
    }
}

impl Layer for ChannelScale {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward_pass(&self, x: &Tensor, pass: Pass) -> revstab::Result<Tensor> {
        Ok(x.broadcast_mul(&self.s(pass)?)?)
    }
    fn is_invertible(&self) -> bool {
        true
    }
    fn inverse(&self, y: &Tensor) -> revstab::Result<Tensor> {
        Ok(y.broadcast_div(&self.s(Pass::Eval)?)?)
    }
    fn params(&self) -> Vec<Param> {
        vec![self.scale.clone()]
    }
    fn vjp(
        &self,
        input: &Tensor,
        grad_output: &Tensor,
        grads: Option<&mut Grads>,
    ) -> revstab::Result<Tensor> {
        if let Some(grads) = grads {
            let ds = (input * grad_output)?.sum((0, 2, 3))?;
            grads.insert(self.scale.name.clone(), ds);
        }
        Ok(grad_output.broadcast_mul(&self.s(Pass::Eval)?)?)
    }
}

use crate::common::randn_f64 as randn;

/// The closed-form VJP of the toy layer equals candle's autograd of its forward.
#[test]
fn a_new_layer_kind_has_the_autograd_vjp() {
    let store = ParamStore::new(0, DType::F64, &Device::Cpu);
    let layer = ChannelScale::new(&store, "toy", 4).unwrap();
    let x = randn(&[2, 4, 3, 3], "x");
    let g = randn(&[2, 4, 3, 3], "g");
    let (dx_ref, dp_ref) = autograd_vjp(&layer, &x, &g).unwrap();
    let mut grads = Grads::new();
    let dx = layer.vjp(&x, &g, Some(&mut grads)).unwrap();
    Tolerance::rel(1e-14).assert_rel_l2(&dx, &dx_ref, "dL/dx");
    Tolerance::rel(1e-14).assert_rel_l2(
        grads.get("toy.scale").unwrap(),
        &dp_ref["toy.scale"],
        "dL/ds",
    );
    let y = layer.forward_pass(&x, Pass::Record).unwrap();
    Tolerance::rel(1e-15).assert_rel_l2(&layer.inverse(&y).unwrap(), &x, "inverse");
}

/// Between two leaky ReLUs in a chain, the toy layer is walked by the one backward like the
/// built-in layers: the reconstructed mode rebuilds the chain's input by the inverses and gives
/// the stored mode's gradients (f64, to rounding).
#[test]
fn a_new_layer_kind_runs_through_the_one_backward() {
    let store = ParamStore::new(0, DType::F64, &Device::Cpu);
    let chain = || {
        let layers: Vec<Box<dyn Layer>> = vec![
            Box::new(InvLeakyReLU::new("act1", 0.2).unwrap()),
            Box::new(ChannelScale::new(&store, "toy", 4).unwrap()),
            Box::new(InvLeakyReLU::new("act2", 0.2).unwrap()),
        ];
        Chain::new("net", layers, InnerRebuild::LayerwiseInverse, None).unwrap()
    };
    let chain = chain();
    assert_eq!(primitives(&chain).len(), 3);
    assert_eq!(chain.params().len(), 1);
    let x = randn(&[2, 4, 3, 3], "x");
    let g = randn(&[2, 4, 3, 3], "g");
    let run = |plan: BackwardPlan| {
        let mut tape = Tape::new(plan == BackwardPlan::STORED);
        let y = chain.forward_tape(&x, &mut tape, true).unwrap();
        let mut backward = Backward::new(plan, tape, true, false);
        let back = backward
            .step(
                &chain,
                Some(Held::shared(y)),
                Some(Held::owned(g.clone())),
                None,
            )
            .unwrap();
        let grads = backward.grads.unwrap().into_map();
        (back, grads)
    };
    let (stored, stored_grads) = run(BackwardPlan::STORED);
    let (rebuilt, rebuilt_grads) = run(BackwardPlan::RECONSTRUCTED);
    let input = rebuilt.input.expect("the rebuilt input").tensor;
    Tolerance::rel(1e-14).assert_rel_l2(&input, &x, "rebuilt input");
    Tolerance::rel(1e-13).assert_rel_l2(
        &rebuilt.grad.unwrap().tensor,
        &stored.grad.unwrap().tensor,
        "dL/dx",
    );
    Tolerance::rel(1e-13).assert_rel_l2(
        &rebuilt_grads["toy.scale"],
        &stored_grads["toy.scale"],
        "dL/ds",
    );
}

/// The second half of the recipe: an architecture is a row of the table, and everything that
/// differs between architectures is read from it.
#[test]
fn every_architecture_is_a_row_of_the_table() {
    for arch in Arch::ALL {
        let spec = arch.spec();
        assert_eq!(spec.arch, arch);
        assert_eq!(Arch::parse(spec.name).unwrap(), arch);
        assert!(spec.width_multiple >= 2, "{arch}");
        assert_eq!(arch.reconstructable(), spec.reconstructs);
    }
}
