//! The one backward: stored gradients equal whole-network autograd, reconstructed gradients
//! equal stored ones in f64, and finite differences agree, for every architecture.

mod common;

use candle_core::{DType, Device, Tensor};
use common::rel_l2;
use revstab::measure::grad_angle::grad_angle;
use revstab::nets::{Arch, NetConfig, Network, Rebuild, Source, StepOptions};

fn small(arch: Arch) -> NetConfig {
    let mut c = NetConfig::new(arch);
    c.depth = 3;
    c.width = 8;
    c.input_size = 8;
    c.classes = 4;
    c.seed = 7;
    c.gamma_spread = 0.3;
    c
}

fn batch(cfg: &NetConfig, n: usize, dtype: DType) -> (Tensor, Tensor) {
    let mut rng = revstab::util::rng_for(11, "test-batch");
    let x = revstab::util::randn(
        &mut rng,
        &[n, cfg.in_channels, cfg.input_size, cfg.input_size],
        0.0,
        1.0,
        dtype,
        &Device::Cpu,
    )
    .unwrap();
    let labels: Vec<u32> = (0..n as u32).map(|i| i % cfg.classes as u32).collect();
    (x, Tensor::new(labels, &Device::Cpu).unwrap())
}

const GRADS: StepOptions = StepOptions {
    grads: true,
    trace: false,
    output_noise: None,
    noise_seed: 0,
    rebuild: Rebuild::PerLayer,
};

/// Every source of the one backward (stored, reconstructed per layer, reconstructed with
/// Algorithm 1), for every architecture, against whole-network candle autograd (the oracle).
#[test]
fn every_source_equals_whole_network_autograd_in_f64() {
    let sources = [
        (Source::Stored, Rebuild::PerLayer),
        (Source::Reconstructed, Rebuild::PerLayer),
        (Source::Reconstructed, Rebuild::Algorithm1),
    ];
    for arch in Arch::ALL {
        for (source, rebuild) in sources {
            let cfg = small(arch);
            let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
            let (x, y) = batch(&cfg, 4, DType::F64);
            let (loss_ref, reference) = net.autograd_grads(&x, &y).unwrap();
            let opts = StepOptions { rebuild, ..GRADS };
            let out = net.step(&x, &y, source, opts).unwrap();
            let arch = format!("{arch} {} {rebuild:?}", source.as_str());
            assert!(
                (out.loss - loss_ref).abs() <= 1e-12 * loss_ref.abs(),
                "{arch}: loss {} vs {}",
                out.loss,
                loss_ref
            );
            assert_eq!(
                out.grads.len(),
                net.chain_params_len(),
                "{arch}: every parameter has a gradient"
            );
            for (name, g) in &reference {
                let got = out
                    .grads
                    .get(name)
                    .unwrap_or_else(|| panic!("{arch}: no gradient for {name}"));
                let err = rel_l2(got, g);
                assert!(err <= 1e-10, "{arch}: {name} relative error {err:e}");
            }
        }
    }
}

/// The paper's pooling (c, c, b) takes the channel count to 64 (hybrid) and 128 (layer-wise)
/// per convolution on 4x4 and 2x2 images, where the convolutions run as im2col + GEMM: the
/// gradients of every source still equal whole-network autograd to 1e-10 in f64.
#[test]
fn gemm_convolutions_leave_whole_network_gradients_unchanged_in_f64() {
    use revstab::nets::PoolKind::{Batch, Channel};
    for arch in [Arch::Hybrid, Arch::Layerwise] {
        let cfg = NetConfig {
            depth: 4,
            width: 16,
            input_size: 16,
            pools: vec![Channel, Channel, Batch],
            ..small(arch)
        };
        let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
        let (x, y) = batch(&cfg, 3, DType::F64);
        let (_, reference) = net.autograd_grads(&x, &y).unwrap();
        for (source, rebuild) in [
            (Source::Stored, Rebuild::PerLayer),
            (Source::Reconstructed, Rebuild::PerLayer),
            (Source::Reconstructed, Rebuild::Algorithm1),
        ] {
            let out = net
                .step(&x, &y, source, StepOptions { rebuild, ..GRADS })
                .unwrap();
            for (name, g) in &reference {
                let err = rel_l2(out.grads.get(name).unwrap(), g);
                assert!(
                    err <= 1e-10,
                    "{arch} {} {rebuild:?}: {name} relative error {err:e}",
                    source.as_str()
                );
            }
        }
    }
}

#[test]
fn reconstructed_gradients_match_stored_in_f64() {
    for arch in Arch::ALL {
        let cfg = small(arch);
        let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
        let (x, y) = batch(&cfg, 4, DType::F64);
        let stored = net.step(&x, &y, Source::Stored, GRADS).unwrap();
        let rec = net.step(&x, &y, Source::Reconstructed, GRADS).unwrap();
        let angle = grad_angle(&stored.grads, &rec.grads).unwrap();
        assert!(
            angle.whole_deg < 1e-6,
            "{arch}: angle {} deg",
            angle.whole_deg
        );
    }
}

#[test]
fn finite_differences_agree_with_the_backward_in_f64() {
    for arch in Arch::ALL {
        let cfg = small(arch);
        let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
        let (x, y) = batch(&cfg, 4, DType::F64);
        let out = net.step(&x, &y, Source::Reconstructed, GRADS).unwrap();
        let params = net.named_params();
        // a few parameters: first conv weight entry, a BN gamma, the head bias
        let picks: Vec<_> = params
            .iter()
            .filter(|(n, _)| n.ends_with("stem.weight") || n.ends_with("gamma") || n == "head.bias")
            .take(3)
            .collect();
        assert!(!picks.is_empty());
        for (name, var) in picks {
            let base = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let analytic = out.grads[name.as_str()]
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()[0];
            let h = 1e-6;
            let mut plus = base.clone();
            plus[0] += h;
            var.set(&Tensor::from_vec(plus, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
            let lp = net
                .step(&x, &y, Source::Stored, StepOptions::default())
                .unwrap()
                .loss;
            let mut minus = base.clone();
            minus[0] -= h;
            var.set(&Tensor::from_vec(minus, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
            let lm = net
                .step(&x, &y, Source::Stored, StepOptions::default())
                .unwrap()
                .loss;
            var.set(&Tensor::from_vec(base, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
            let numeric = (lp - lm) / (2.0 * h);
            let tol = 1e-6 * numeric.abs().max(analytic.abs()).max(1e-3);
            assert!(
                (numeric - analytic).abs() <= tol,
                "{arch}: {name}[0] numeric {numeric} vs backward {analytic}"
            );
        }
    }
}

#[test]
fn parameters_save_and_load_as_safetensors() {
    let cfg = small(Arch::Hybrid);
    let net = Network::build(&cfg, DType::F32, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.safetensors");
    net.save(&path).unwrap();
    let mut other_cfg = cfg.clone();
    other_cfg.seed = 99; // different init, then overwritten by the load
    let mut other = Network::build(&other_cfg, DType::F32, &Device::Cpu).unwrap();
    other.load(&path).unwrap();
    let (x, y) = batch(&cfg, 4, DType::F32);
    let a = net
        .step(&x, &y, Source::Stored, StepOptions::default())
        .unwrap()
        .loss;
    let b = other
        .step(&x, &y, Source::Stored, StepOptions::default())
        .unwrap()
        .loss;
    assert_eq!(a, b);
    assert!(other.load(&dir.path().join("missing.safetensors")).is_err());
}

#[test]
fn reconstructed_mode_is_rejected_for_nothing_and_resnet_falls_back_to_stored() {
    // ResNet has no inverse: its reconstructed mode stores everything, with identical gradients.
    let cfg = small(Arch::Resnet);
    let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
    let (x, y) = batch(&cfg, 4, DType::F64);
    let s = net.step(&x, &y, Source::Stored, GRADS).unwrap();
    let r = net.step(&x, &y, Source::Reconstructed, GRADS).unwrap();
    assert_eq!(s.tape_bytes, r.tape_bytes);
    assert_eq!(grad_angle(&s.grads, &r.grads).unwrap().whole_deg, 0.0);
}

#[test]
fn bad_network_configs_and_inputs_are_errors() {
    use revstab::error::Error;
    let mut c = small(Arch::Layerwise);
    c.slope = 0.0;
    assert!(matches!(
        Network::build(&c, DType::F32, &Device::Cpu),
        Err(Error::InvalidSlope { .. })
    ));
    let mut c = small(Arch::Layerwise);
    c.width = 7;
    assert!(matches!(
        Network::build(&c, DType::F32, &Device::Cpu),
        Err(Error::BadChannels { .. })
    ));
    let mut c = small(Arch::Layerwise);
    c.input_size = 12; // 3 poolings need a multiple of 8
    assert!(matches!(
        Network::build(&c, DType::F32, &Device::Cpu),
        Err(Error::OddSpatial { .. })
    ));
    let c = small(Arch::Layerwise);
    let net = Network::build(&c, DType::F32, &Device::Cpu).unwrap();
    let (x, y) = batch(&c, 2, DType::F32);
    let nan = (x.clone() * f64::NAN).unwrap();
    assert!(matches!(
        net.step(&nan, &y, Source::Stored, GRADS),
        Err(Error::NonFinite { .. })
    ));
    let wrong = Tensor::zeros((2, 3, 4, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        net.step(&wrong, &y, Source::Stored, GRADS),
        Err(Error::ShapeMismatch { .. })
    ));
}
