//! Whole-network gradient angle (degrees) between stored and reconstructed activations, for every
//! architecture at depth 8 in f32, fixed seed 0, one unit-Gaussian batch of 8 (16x16), Kaiming
//! init: `cargo run --release --example angles`.

use candle_core::{DType, Device};
use revstab::experiments::snr_sweep::{point_batch, SweepConfig};
use revstab::measure::grad_angle::grad_angle;
use revstab::nets::{Arch, NetConfig, Network, Source, StepOptions};

fn main() -> anyhow::Result<()> {
    let (x, y) = point_batch(&SweepConfig::default(), 0, &Device::Cpu)?;
    let opts = StepOptions {
        grads: true,
        ..Default::default()
    };
    for slope in [0.2] {
        for arch in Arch::ALL {
            let mut cfg = NetConfig::new(arch);
            cfg.depth = 8;
            cfg.slope = slope;
            let net = Network::build(&cfg, DType::F32, &Device::Cpu)?;
            let s = net.step(&x, &y, Source::Stored, opts)?;
            let r = net.step(&x, &y, Source::Reconstructed, opts)?;
            let a = grad_angle(&s.grads, &r.grads)?;
            println!(
                "{arch:>10} depth 8 slope {slope}: whole-network angle {:.3e} deg",
                a.whole_deg
            );
        }
    }
    Ok(())
}
