//! The crate's own kernels against candle's ops through whole networks: one training step of
//! every architecture in f64, stored and reconstructed, gives the same loss and gradients on
//! [`Backend::Kernels`] and on [`Backend::Candle`] (candle's ops only, the "before" of `bench
//! --backend candle`). The two networks hold the same weights ([`Network::cast_with`]); the
//! backend is a value held by each, so they run side by side.

use crate::common::Tolerance;
use candle_core::{DType, Device, Tensor};
use revstab::backend::Backend;
use revstab::nets::{Arch, NetConfig, Network, Source, StepOptions};

#[test]
fn kernels_and_candle_backends_give_the_same_step_in_f64() {
    for arch in Arch::ALL {
        let mut cfg = NetConfig::new(arch);
        cfg.depth = 2;
        cfg.width = 8;
        cfg.input_size = 8;
        cfg.classes = 4;
        cfg.seed = 3;
        let kernels =
            Network::build_with(&cfg, DType::F64, &Device::Cpu, Backend::Kernels).unwrap();
        // The same weights on the other backend (a copy; building from the same seed gives them
        // too).
        let candle = kernels.cast_with(DType::F64, Backend::Candle).unwrap();
        assert_eq!(
            (kernels.backend, candle.backend),
            (Backend::Kernels, Backend::Candle)
        );
        // A cast keeps the backend.
        assert_eq!(candle.cast(DType::F32).unwrap().backend, Backend::Candle);
        let mut rng = revstab::util::rng_for(5, "kernels-off");
        let x = revstab::util::randn(
            &mut rng,
            &[4, cfg.net.in_channels, 8, 8],
            0.0,
            1.0,
            DType::F64,
            &Device::Cpu,
        )
        .unwrap();
        let y = Tensor::new(vec![0u32, 1, 2, 3], &Device::Cpu).unwrap();
        let opts = StepOptions {
            grads: true,
            trace: false,
            output_noise: None,
            noise_seed: 0,
        };
        for mode in [Source::Stored, Source::Reconstructed] {
            if mode == Source::Reconstructed && !arch.reconstructable() {
                continue;
            }
            let on = kernels.step(&x, &y, mode, opts).unwrap();
            let off = candle.step(&x, &y, mode, opts).unwrap();
            assert!(
                (on.loss - off.loss).abs() <= 1e-12 * on.loss.abs(),
                "{arch} {mode:?}: loss {} vs {}",
                on.loss,
                off.loss
            );
            assert_eq!(on.grads.len(), off.grads.len(), "{arch} {mode:?}");
            for (name, g) in &on.grads {
                Tolerance::rel(1e-10).assert_rel_l2(
                    g,
                    &off.grads[name],
                    &format!("{arch} {mode:?} {name}"),
                );
            }
        }
    }
}
