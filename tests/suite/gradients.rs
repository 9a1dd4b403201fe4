//! The one backward: stored gradients equal whole-network autograd, reconstructed gradients
//! equal stored ones in f64, and finite differences agree, for every architecture.

use crate::common::Tolerance;
use candle_core::{DType, Device, Tensor};
use revstab::measure::grad_angle::grad_angle;
use revstab::nets::{
    Arch, BackwardPlan, NetConfig, NetOptions, Network, Rebuild, Source, StepOptions,
};

fn small(arch: Arch) -> NetConfig {
    let mut c = NetConfig::new(arch);
    c.depth = 3;
    c.width = 8;
    c.input_size = 8;
    c.classes = 4;
    c.seed = 7;
    c.net.gamma_spread = 0.3;
    c
}

fn batch(cfg: &NetConfig, n: usize, dtype: DType) -> (Tensor, Tensor) {
    let mut rng = revstab::util::rng_for(11, "test-batch");
    let x = revstab::util::randn(
        &mut rng,
        &[n, cfg.net.in_channels, cfg.input_size, cfg.input_size],
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
};

/// The backward plan of `source` with `rebuild`.
fn plan(source: Source, rebuild: Rebuild) -> BackwardPlan {
    BackwardPlan {
        source,
        rebuild,
        ..BackwardPlan::STORED
    }
}

/// Every source of the one backward (stored, reconstructed per layer, reconstructed with
/// Algorithm 1), for every architecture, against whole-network candle autograd (the oracle).
#[test]
fn every_source_equals_whole_network_autograd_in_f64() {
    let sources = [
        (Source::Stored, Rebuild::PerLayer),
        (Source::Reconstructed, Rebuild::PerLayer),
        (Source::Reconstructed, Rebuild::Algorithm1),
        (Source::Checkpointed, Rebuild::PerLayer),
    ];
    for arch in Arch::ALL {
        for (source, rebuild) in sources {
            let cfg = small(arch);
            let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
            let (x, y) = batch(&cfg, 4, DType::F64);
            let (loss_ref, reference) = net.autograd_grads(&x, &y).unwrap();
            let out = net.step(&x, &y, plan(source, rebuild), GRADS).unwrap();
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
                Tolerance::rel(1e-10).assert_rel_l2(got, g, &format!("{arch}: {name}"));
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
            net: NetOptions {
                pools: Some(vec![Channel, Channel, Batch]),
                ..NetOptions::default()
            },
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
            let out = net.step(&x, &y, plan(source, rebuild), GRADS).unwrap();
            for (name, g) in &reference {
                Tolerance::rel(1e-10).assert_rel_l2(
                    out.grads.get(name).unwrap(),
                    g,
                    &format!("{arch} {} {rebuild:?}: {name}", source.as_str()),
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

/// Every element of `got` has the bits of the same element of `want` (same dtype, same shape);
/// a failure names the first element that differs.
fn assert_bitwise(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let bits = |t: &Tensor| -> Vec<u64> {
        let flat = t.flatten_all().unwrap();
        match t.dtype() {
            DType::F32 => flat
                .to_vec1::<f32>()
                .unwrap()
                .into_iter()
                .map(|v| v.to_bits() as u64)
                .collect(),
            DType::F64 => flat
                .to_vec1::<f64>()
                .unwrap()
                .into_iter()
                .map(f64::to_bits)
                .collect(),
            other => panic!("{what}: bitwise comparison in {other:?}"),
        }
    };
    let (g, w) = (bits(got), bits(want));
    if let Some(i) = g.iter().zip(&w).position(|(a, b)| a != b) {
        panic!(
            "{what}: element {i} differs: bits {:#x} vs stored {:#x}",
            g[i], w[i]
        );
    }
}

/// The checkpointed source's gradients, loss and logits are bitwise the stored
/// source's, in f32 and f64, for every architecture (with the default pooling of each, so that
/// segments cross stage boundaries), for segments of 1 block, 2 blocks, the default
/// `ceil(sqrt(depth))` and the whole depth.
#[test]
fn checkpointed_gradients_are_bitwise_the_stored_gradients() {
    for dtype in [DType::F32, DType::F64] {
        for arch in Arch::ALL {
            let cfg = NetConfig {
                depth: 5,
                ..small(arch)
            };
            let net = Network::build(&cfg, dtype, &Device::Cpu).unwrap();
            let (x, y) = batch(&cfg, 4, dtype);
            let stored = net.step(&x, &y, Source::Stored, GRADS).unwrap();
            for segment in [Some(1), Some(2), None, Some(cfg.depth)] {
                let what = format!("{arch} {dtype:?} segment {segment:?}");
                let ckpt = net
                    .step(&x, &y, BackwardPlan::checkpointed(segment), GRADS)
                    .unwrap();
                // Below the whole depth the forward kept less and the backward recomputed.
                if segment != Some(cfg.depth) {
                    assert!(
                        ckpt.tape_bytes < stored.tape_bytes,
                        "{what}: tape {} B, stored {} B",
                        ckpt.tape_bytes,
                        stored.tape_bytes
                    );
                }
                assert_eq!(ckpt.loss.to_bits(), stored.loss.to_bits(), "{what}: loss");
                assert_bitwise(&ckpt.logits, &stored.logits, &format!("{what}: logits"));
                assert_eq!(ckpt.grads.len(), stored.grads.len(), "{what}: gradients");
                for (name, g) in &stored.grads {
                    let got = ckpt
                        .grads
                        .get(name)
                        .unwrap_or_else(|| panic!("{what}: no gradient for {name}"));
                    assert_bitwise(got, g, &format!("{what}: {name}"));
                }
            }
        }
    }
}

/// The checkpointed trace (every activation the backward visits) is bitwise the stored one:
/// its reconstruction SNR is infinite by construction.
#[test]
fn checkpointed_trace_is_bitwise_the_stored_trace() {
    for arch in [Arch::Layerwise, Arch::Hybrid, Arch::Revnet] {
        let cfg = small(arch);
        let net = Network::build(&cfg, DType::F32, &Device::Cpu).unwrap();
        let (x, y) = batch(&cfg, 4, DType::F32);
        let opts = StepOptions {
            trace: true,
            ..GRADS
        };
        let stored = net.step(&x, &y, Source::Stored, opts).unwrap();
        let ckpt = net
            .step(&x, &y, BackwardPlan::checkpointed(Some(1)), opts)
            .unwrap();
        assert_eq!(ckpt.trace.len(), stored.trace.len(), "{arch}: trace length");
        assert!(!stored.trace.is_empty(), "{arch}: empty trace");
        for (c, s) in ckpt.trace.iter().zip(&stored.trace) {
            assert_eq!(c.layer, s.layer, "{arch}: trace order");
            assert_bitwise(&c.tensor, &s.tensor, &format!("{arch}: {}", c.layer));
        }
    }
}

/// A checkpointed segment of 0 blocks or of more blocks than the network has is an error that
/// says what was expected, not a panic; so is a bad segment list handed to the driver.
#[test]
fn bad_checkpoint_segments_are_errors() {
    let cfg = small(Arch::Revnet);
    let net = Network::build(&cfg, DType::F32, &Device::Cpu).unwrap();
    let (x, y) = batch(&cfg, 2, DType::F32);
    for segment in [0, cfg.depth + 1] {
        let err = match net.step(&x, &y, BackwardPlan::checkpointed(Some(segment)), GRADS) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("segment {segment} accepted"),
        };
        assert!(
            err.contains("between 1 and the depth 3") && err.contains(&format!("got {segment}")),
            "segment {segment}: {err}"
        );
    }
    assert!(net.checkpoint_segments(Some(2)).unwrap() == vec![0, net.unit_starts[2]]);
    assert_eq!(revstab::backprop::default_segment(16), 4);
    assert_eq!(revstab::backprop::default_segment(17), 5);
    assert_eq!(revstab::backprop::default_segment(1), 1);
    let mut tape = revstab::layers::Tape::new(true);
    let bad = revstab::backprop::forward_checkpointed(&net.chain, &x, &[1, 3], &mut tape);
    assert!(bad.is_err());
}

/// Every gradient and the loss of `got` bitwise those of `want`.
fn assert_same_step(got: &revstab::nets::StepOutput, want: &revstab::nets::StepOutput, what: &str) {
    assert_eq!(got.loss.to_bits(), want.loss.to_bits(), "{what}: loss");
    assert_eq!(got.grads.len(), want.grads.len(), "{what}: gradients");
    for (name, g) in &want.grads {
        let other = got
            .grads
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no gradient for {name}"));
        assert_bitwise(other, g, &format!("{what}: {name}"));
    }
}

const REVERSIBLE: [Arch; 4] = [Arch::Layerwise, Arch::Hybrid, Arch::Revnet, Arch::Irevnet];

/// The anchored source with no anchor is the reconstructed one, and with every rebuilt input
/// anchored it is the stored one: loss and every gradient bitwise, in f32 and f64, for every
/// reversible architecture.
#[test]
fn anchored_spans_reconstructed_to_stored_bitwise() {
    for arch in REVERSIBLE {
        for dtype in [DType::F32, DType::F64] {
            let cfg = NetConfig {
                depth: 4,
                ..small(arch)
            };
            let net = Network::build(&cfg, dtype, &Device::Cpu).unwrap();
            let (x, y) = batch(&cfg, 4, dtype);
            let what = format!("{arch} {dtype:?}");
            let anchorable = net.anchorable();
            assert!(anchorable.len() >= cfg.depth, "{what}: {anchorable:?}");
            let stored = net.step(&x, &y, Source::Stored, GRADS).unwrap();
            let recon = net.step(&x, &y, Source::Reconstructed, GRADS).unwrap();
            let none = net
                .step(&x, &y, BackwardPlan::anchored(Vec::new()), GRADS)
                .unwrap();
            assert_same_step(&none, &recon, &format!("{what}: no anchors"));
            assert_eq!(none.tape_bytes, recon.tape_bytes, "{what}: tape");
            let all = net
                .step(&x, &y, BackwardPlan::anchored(anchorable.clone()), GRADS)
                .unwrap();
            assert_same_step(&all, &stored, &format!("{what}: every input anchored"));
            // One anchor stores one more activation than the reconstructed forward.
            let one = net
                .step(
                    &x,
                    &y,
                    BackwardPlan::anchored(vec![anchorable[1].clone()]),
                    GRADS,
                )
                .unwrap();
            assert!(
                one.tape_bytes > recon.tape_bytes,
                "{what}: one anchor's tape"
            );
        }
    }
}

/// In f64 every anchor set gives the gradients of whole-network autograd (1e-10 relative L2):
/// the empty set, every other rebuilt input, the top half, and each single anchor.
#[test]
fn anchored_gradients_equal_autograd_in_f64() {
    for arch in REVERSIBLE {
        let cfg = small(arch);
        let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
        let (x, y) = batch(&cfg, 4, DType::F64);
        let (_, reference) = net.autograd_grads(&x, &y).unwrap();
        let all = net.anchorable();
        let mut sets: Vec<Vec<String>> = vec![
            Vec::new(),
            all.iter().step_by(2).cloned().collect(),
            all[all.len() / 2..].to_vec(),
        ];
        sets.extend(all.iter().map(|a| vec![a.clone()]));
        for anchors in sets {
            let what = format!("{arch} anchors {anchors:?}");
            let out = net
                .step(&x, &y, BackwardPlan::anchored(anchors), GRADS)
                .unwrap();
            for (name, g) in &reference {
                Tolerance::rel(1e-10).assert_rel_l2(
                    out.grads.get(name).unwrap(),
                    g,
                    &format!("{what}: {name}"),
                );
            }
        }
    }
}

/// An anchor that names no rebuilt input is a configuration error naming it, not a panic.
#[test]
fn an_anchor_that_is_not_a_rebuilt_layer_is_an_error() {
    let cfg = small(Arch::Hybrid);
    let net = Network::build(&cfg, DType::F32, &Device::Cpu).unwrap();
    let (x, y) = batch(&cfg, 2, DType::F32);
    for bad in ["nope", "stem", "head"] {
        let plan = BackwardPlan::anchored(vec![bad.to_string()]);
        let e = match net.step(&x, &y, plan, GRADS) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("anchor {bad} accepted"),
        };
        assert!(
            e.contains(&format!("`{bad}`")) && e.contains("anchor"),
            "{e}"
        );
    }
}
