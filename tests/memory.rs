#[global_allocator]
static ALLOC: revstab::measure::alloc::CountingAlloc = revstab::measure::alloc::CountingAlloc;

use candle_core::{DType, Device, Tensor};
use revstab::layers::*;
use revstab::measure::alloc;
use revstab::nets::{Arch, NetConfig, Network};

#[test]
fn probe() {
    let mut c = NetConfig::new(Arch::Layerwise);
    c.pools = vec![];
    c.width = 16;
    c.depth = 2;
    let net = Network::build(&c, DType::F32, &Device::Cpu).unwrap();
    let (x, _) = revstab::experiments::memory::batch_for(&c, 8, DType::F32, &Device::Cpu).unwrap();
    let mut tape = Tape::new(false);
    let _ = net.chain.forward_tape(&x, &mut tape, true).unwrap();
    let a = (8 * 16 * 16 * 16 * 4) as f64;
    let mut h = net.chain.layers[0].forward_pass(&x, Pass::Record).unwrap();
    for l in &net.chain.layers[1..4] {
        let y = l.forward_pass(&h, Pass::Record).unwrap();
        let g = y.ones_like().unwrap();
        let (_, p_fwd) = alloc::measure_peak(|| l.forward_pass(&h, Pass::Record).unwrap());
        let (_, p_inv) = alloc::measure_peak(|| l.inverse(&y).unwrap());
        let mut ctx = BackCtx { stored: false, tape: Tape::new(false), grads: Some(Default::default()), trace: None };
        let (_, p_vjp) = alloc::measure_peak(|| vjp(l.as_ref(), &h, &g, &mut ctx).unwrap());
        let mut ctx = BackCtx { stored: false, tape: Tape::new(false), grads: Some(Default::default()), trace: None };
        let (_, p_back) = alloc::measure_peak(|| { let b = l.backward(&y, Some(&g), &mut ctx, None).unwrap(); drop(b); drop(ctx); });
        println!("{}: fwd {:.2} inv {:.2} vjp {:.2} backward(incl. result) {:.2}  (units of one activation)", l.name(), p_fwd as f64 / a, p_inv as f64 / a, p_vjp as f64 / a, p_back as f64 / a);
        h = y;
    }
    let w = Tensor::ones((8, 8, 3, 3), DType::F32, &Device::Cpu).unwrap();
    let xh = x.ones_like().unwrap().repeat((1, 3, 1, 1)).unwrap().narrow(1, 0, 8).unwrap().contiguous().unwrap();
    let (_, p) = alloc::measure_peak(|| xh.conv2d(&w, 1, 1, 1, 1).unwrap());
    println!("conv2d 8->8 on half activation: {:.2}", p as f64 / a);
    let v = candle_core::Var::from_tensor(&xh).unwrap();
    let (_, p) = alloc::measure_peak(|| { let y = v.as_tensor().conv2d(&w, 1, 1, 1, 1).unwrap(); let s = y.sum_all().unwrap().backward().unwrap(); drop(s); });
    println!("conv2d fwd+bwd wrt input only: {:.2}", p as f64 / a);
}
