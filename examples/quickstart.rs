//! The library in a few lines (the README's section of that name): build a network from a
//! `NetConfig`, take one training step with stored and one with reconstructed activations on
//! the same batch, and compare them: the SNR of the lowest reconstructed activation and the
//! angle between the two gradients.
//!
//! `cargo run --release --example quickstart`

use candle_core::{DType, Device, Tensor};
use revstab::measure::grad_angle::grad_angle;
use revstab::nets::{Arch, NetConfig, Network, Source, StepOptions};

fn main() -> anyhow::Result<()> {
    // The layer-wise network of Hascoet et al. (Fig. 7): 8 units, slope 0.2, width 8, 16x16.
    let mut cfg = NetConfig::new(Arch::Layerwise);
    cfg.depth = 8;
    cfg.slope = 0.2;
    cfg.width = 8;
    cfg.input_size = 16;
    let net = Network::build(&cfg, DType::F32, &Device::Cpu)?;
    // A seeded unit-Gaussian batch of 8 images and labels.
    let mut rng = revstab::util::rng_for(0, "quickstart");
    let x = revstab::util::randn(
        &mut rng,
        &[8, 3, 16, 16],
        0.0,
        1.0,
        DType::F32,
        &Device::Cpu,
    )?;
    let y = Tensor::new(&[0u32, 1, 2, 3, 4, 5, 6, 7], &Device::Cpu)?;
    // One step per source: gradients and the per-layer trace of the activations used.
    let opts = StepOptions {
        grads: true,
        trace: true,
        ..Default::default()
    };
    let stored = net.step(&x, &y, Source::Stored, opts)?;
    let rebuilt = net.step(&x, &y, Source::Reconstructed, opts)?;
    let (layer, snr_db) = revstab::train::lowest_snr(&stored, &rebuilt)?;
    let angle = grad_angle(&stored.grads, &rebuilt.grads)?;
    println!(
        "layer-wise, depth {}: loss {:.4}; lowest reconstructed activation `{layer}` at {snr_db:.1} dB; gradient angle {:.3e} degrees",
        cfg.depth, stored.loss, angle.whole_deg
    );
    Ok(())
}
