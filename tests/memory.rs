#[global_allocator]
static ALLOC: revstab::measure::alloc::CountingAlloc = revstab::measure::alloc::CountingAlloc;

use candle_core::{DType, Device};
use revstab::layers::{Layer, Tape};
use revstab::measure::alloc;
use revstab::nets::{Arch, NetConfig, Network, Source, StepOptions};

#[test]
fn probe() {
    for arch in [Arch::Layerwise, Arch::Hybrid, Arch::Revnet] {
        let mut c = NetConfig::new(arch);
        c.pools = vec![];
        c.width = 16;
        c.depth = 8;
        let net = Network::build(&c, DType::F32, &Device::Cpu).unwrap();
        let (x, labels) = revstab::experiments::memory::batch_for(&c, 4, DType::F32, &Device::Cpu).unwrap();
        let mut tape = Tape::new(false);
        let base = alloc::current_bytes();
        let (y, peak) = alloc::measure_peak(|| net.chain.forward_tape(&x, &mut tape, true).unwrap());
        let after = alloc::current_bytes() - base;
        println!("{arch}: forward logits track_op {} tape {} items {} B; fwd peak {peak} held {after}", y.track_op(), tape.len(), tape.bytes());
        drop(y);
        drop(tape);
        let after2 = alloc::current_bytes() as i64 - base as i64;
        println!("   after drop: {after2}");
        for mode in [Source::Stored, Source::Reconstructed] {
            let base = alloc::current_bytes();
            let (out, peak) = alloc::measure_peak(|| net.step(&x, &labels, mode, StepOptions { grads: true, ..Default::default() }).unwrap());
            let held = alloc::current_bytes() - base;
            let tracked = out.grads.values().filter(|g| g.track_op()).count();
            let gb: usize = out.grads.values().map(|g| g.elem_count() * 4).sum();
            let mut out = out;
            out.grads.clear();
            let held2 = alloc::current_bytes() as i64 - base as i64;
            drop(out);
            let held3 = alloc::current_bytes() as i64 - base as i64;
            println!("   after drop all: {held3}");
            println!("   {mode:?}: peak {peak} held {held} tracked {tracked} grad bytes {gb}; held after clearing grads {held2}");
        }
    }
}
