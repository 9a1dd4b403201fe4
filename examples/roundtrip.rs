//! f32 round-trip SNR of every invertible layer (`inverse(forward(x))` vs `x`), unit-Gaussian
//! input of shape (8, 16, 16, 16), seed 0: `cargo run --release --example roundtrip`.

use candle_core::{DType, Device};
use revstab::layers::{
    AdditiveCoupling, BatchNormConfig, BatchPool, ChannelPool, InvBatchNorm, InvLeakyReLU, Layer,
    ParamStore, Pass,
};
use revstab::measure::snr_db;

fn main() -> anyhow::Result<()> {
    for dtype in [DType::F16, DType::BF16, DType::F32, DType::F64] {
        let mut rng = revstab::util::rng_for(0, "roundtrip");
        let x = revstab::util::randn(&mut rng, &[8, 16, 16, 16], 0.0, 1.0, dtype, &Device::Cpu)?;
        let store = ParamStore::new(0, dtype, &Device::Cpu);
        let layers: Vec<Box<dyn Layer>> = vec![
            Box::new(InvBatchNorm::new(
                &store,
                "bn (gamma 1)",
                16,
                BatchNormConfig::default(),
            )?),
            Box::new(InvBatchNorm::new(
                &store,
                "bn (gamma spread 1)",
                16,
                BatchNormConfig {
                    gamma_spread: 1.0,
                    ..Default::default()
                },
            )?),
            Box::new(InvLeakyReLU::new("leaky relu n=0.1", 0.1)?),
            Box::new(InvLeakyReLU::new("leaky relu n=0.01", 0.01)?),
            Box::new(AdditiveCoupling::inv_conv(
                &store,
                "invconv (Kaiming)",
                16,
                1.0,
            )?),
            Box::new(ChannelPool::new("P_c")),
            Box::new(BatchPool::new("P_b")),
        ];
        for l in &layers {
            let y = l.forward_pass(&x, Pass::Record)?;
            println!(
                "{:>5} {:<22} {:>8.1} dB",
                revstab::device::dtype_name(dtype),
                l.name(),
                snr_db(&x, &l.inverse(&y)?)?
            );
        }
    }
    Ok(())
}
