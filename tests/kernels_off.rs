//! The crate's own kernels against candle's ops through whole networks: one training step of
//! every architecture in f64, stored and reconstructed, with the kernels on and switched off
//! (`kernels::set_enabled(false)`: candle's ops and the generic autograd backward, the "before"
//! of `bench --kernels off`) gives the same loss and gradients. Its own test binary, because the
//! switch is process-wide.

mod common;

use candle_core::{DType, Device, Tensor};
use common::rel_l2;
use revstab::layers::kernels;
use revstab::nets::{Arch, NetConfig, Network, Source, StepOptions};

#[test]
fn kernels_on_and_off_give_the_same_step_in_f64() {
    for arch in Arch::ALL {
        let mut cfg = NetConfig::new(arch);
        cfg.depth = 2;
        cfg.width = 8;
        cfg.input_size = 8;
        cfg.classes = 4;
        cfg.seed = 3;
        let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
        let mut rng = revstab::util::rng_for(5, "kernels-off");
        let x = revstab::util::randn(
            &mut rng,
            &[4, cfg.in_channels, 8, 8],
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
            rebuild: Default::default(),
        };
        for mode in [Source::Stored, Source::Reconstructed] {
            if mode == Source::Reconstructed && !arch.reconstructable() {
                continue;
            }
            kernels::set_enabled(true);
            let on = net.step(&x, &y, mode, opts).unwrap();
            kernels::set_enabled(false);
            let off = net.step(&x, &y, mode, opts).unwrap();
            kernels::set_enabled(true);
            assert!(
                (on.loss - off.loss).abs() <= 1e-12 * on.loss.abs(),
                "{arch} {mode:?}: loss {} vs {}",
                on.loss,
                off.loss
            );
            assert_eq!(on.grads.len(), off.grads.len(), "{arch} {mode:?}");
            for (name, g) in &on.grads {
                let r = rel_l2(g, &off.grads[name]);
                assert!(
                    r <= 1e-10,
                    "{arch} {mode:?} {name}: relative L2 difference {r:e}"
                );
            }
        }
    }
}
