//! Local Lipschitz estimates (power iteration on J^T J) against closed forms:
//! a linear map with known singular values, leaky ReLU (`max(1, n)` forward, `max(1, 1/n)`
//! inverse with both signs present), batch norm with recorded, batch and running statistics,
//! and the exact pools (1). Every estimate is f64 and is held to a relative 1e-4 (the power
//! iteration's tolerance is 1e-4 relative change; the finite difference adds ~1e-10).

use candle_core::{DType, Device, Tensor};
use revstab::layers::{
    BatchNormConfig, ChannelPool, InvBatchNorm, InvLeakyReLU, Layer, ParamStore, Pass,
};
use revstab::measure::lipschitz::{
    layer_lipschitz, spectral_norm, spectral_norm_of_inverse, spectral_norm_of_layer, PowerOptions,
};
use revstab::util::{randn, rng_for};

const REL: f64 = 1e-4;

fn close(got: f64, want: f64, what: &str) {
    assert!(
        ((got - want) / want).abs() < REL,
        "{what}: estimate {got} vs closed form {want}"
    );
}

fn batch(seed: u64, shape: &[usize]) -> Tensor {
    let mut rng = rng_for(seed, "lipschitz-test");
    randn(&mut rng, shape, 0.0, 1.0, DType::F64, &Device::Cpu).unwrap()
}

/// `f(x) = x A` with `A = [[2, 1], [1, 2]]` (singular values 3 and 1) on a (5, 2) batch: the
/// whole batch as one vector has Jacobian `I_5 (x) A^T`, so sigma_max = 3.
#[test]
fn linear_map_with_known_singular_values() {
    let a = Tensor::new(&[[2.0f64, 1.0], [1.0, 2.0]], &Device::Cpu).unwrap();
    let x = batch(1, &[5, 2]);
    let est = spectral_norm(|t| Ok(t.matmul(&a)?), &x, PowerOptions::default()).unwrap();
    close(est.sigma, 3.0, "x A");
    assert!(est.converged, "{est:?}");
    // A diagonal map with a unique largest scale (0.1, 7, 2) per column.
    let d = Tensor::new(&[0.1f64, 7.0, 2.0], &Device::Cpu).unwrap();
    let x = batch(2, &[4, 3]);
    let est = spectral_norm(
        |t| Ok(t.broadcast_mul(&d)?),
        &x,
        PowerOptions {
            seed: 5,
            ..Default::default()
        },
    )
    .unwrap();
    close(est.sigma, 7.0, "diag(0.1, 7, 2)");
}

/// Leaky ReLU of slope n < 1 on an input with both signs: forward Lipschitz max(1, n) = 1,
/// inverse max(1, 1/n) = 1/n; slope > 1 swaps them.
#[test]
fn leaky_relu_forward_and_inverse() {
    let x = batch(3, &[2, 3, 4, 4]);
    for slope in [0.01, 0.2, 0.5, 3.0] {
        let layer = InvLeakyReLU::new("act", slope).unwrap();
        let est = layer_lipschitz(&layer, &x, 7).unwrap();
        close(est.forward.sigma, slope.max(1.0), "leaky ReLU forward");
        close(
            est.inverse.sigma,
            (1.0 / slope).max(1.0),
            "leaky ReLU inverse",
        );
    }
}

/// Batch norm, `y = g~ (x - mu) / sqrt(var + eps) + beta` per channel:
/// - with the recorded statistics fixed (the reconstruction's maps): forward
///   `max_c g~_c / s_c`, inverse `max_c s_c / g~_c`, `s_c = sqrt(var_c + eps)`;
/// - in training mode (batch statistics from the input, samples coupled): the Jacobian of a
///   channel is `(g~/s)(I - 11^T/m - x^ x^T/m)`, a scaled projection, so still `max_c g~_c/s_c`;
/// - in eval mode (running statistics; after one training forward, the batch mean and the
///   unbiased batch variance `v_r`): `max_c g~_c / sqrt(v_r,c + eps)`.
#[test]
fn batch_norm_recorded_training_and_eval() {
    let dev = Device::Cpu;
    let store = ParamStore::new(0, DType::F64, &dev);
    let layer = InvBatchNorm::new(&store, "bn", 3, BatchNormConfig::default()).unwrap();
    let gamma = [0.5f64, 3.0, 1.2];
    layer
        .gamma()
        .var
        .set(&Tensor::new(&gamma, &dev).unwrap())
        .unwrap();
    // Channel scales differ so the largest ratio is unique.
    let scale = Tensor::new(&[1.0f64, 2.0, 0.3], &dev)
        .unwrap()
        .reshape((1, 3, 1, 1))
        .unwrap();
    let x = batch(4, &[4, 3, 4, 4]).broadcast_mul(&scale).unwrap();
    let eps = BatchNormConfig::default().eps;
    layer.forward_pass(&x, Pass::Record).unwrap();
    let (_, var) = layer.recorded().unwrap();
    let s: Vec<f64> = var.iter().map(|v| (v + eps).sqrt()).collect();
    // The first training forward sets the running statistics to the batch's, the variance
    // unbiased over the 4 * 4 * 4 = 64 values of a channel.
    let eval = spectral_norm_of_layer(&layer, &x, Pass::Eval, PowerOptions::default()).unwrap();
    let eval_want = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| g / (v * 64.0 / 63.0 + eps).sqrt())
        .fold(0.0f64, f64::max);
    close(
        eval.sigma,
        eval_want,
        "batch norm forward, eval (running stats)",
    );
    let fwd = gamma
        .iter()
        .zip(&s)
        .map(|(g, s)| g / s)
        .fold(0.0f64, f64::max);
    let inv = gamma
        .iter()
        .zip(&s)
        .map(|(g, s)| s / g)
        .fold(0.0f64, f64::max);
    let est = layer_lipschitz(&layer, &x, 11).unwrap();
    close(est.forward.sigma, fwd, "batch norm forward, recorded stats");
    close(est.inverse.sigma, inv, "batch norm inverse, recorded stats");
    let y = layer.forward_pass(&x, Pass::Replay).unwrap();
    let inv_direct = spectral_norm_of_inverse(&layer, &y, PowerOptions::default()).unwrap();
    close(inv_direct.sigma, inv, "batch norm inverse, direct");
    let train = spectral_norm_of_layer(&layer, &x, Pass::Graph, PowerOptions::default()).unwrap();
    close(train.sigma, fwd, "batch norm forward, training mode");
}

/// A pool only moves elements: 1 both ways.
#[test]
fn pools_are_isometries() {
    let x = batch(6, &[2, 2, 4, 4]);
    let est = layer_lipschitz(&ChannelPool::new("pool"), &x, 3).unwrap();
    close(est.forward.sigma, 1.0, "channel pool forward");
    close(est.inverse.sigma, 1.0, "channel pool inverse");
}

/// Bad input is an error, not a panic: an f32 input, zero iterations.
#[test]
fn bad_input_is_an_error() {
    let x = batch(7, &[2, 2]).to_dtype(DType::F32).unwrap();
    assert!(spectral_norm(|t| Ok(t.clone()), &x, PowerOptions::default()).is_err());
    let x = batch(7, &[2, 2]);
    let opts = PowerOptions {
        max_iterations: 0,
        ..Default::default()
    };
    assert!(spectral_norm(|t| Ok(t.clone()), &x, opts).is_err());
}

/// In a trace with `lipschitz: true` every top-level entry carries both estimates: the leaky
/// ReLU's are its closed forms (the input has both signs), the pools' are 1; hidden entries and
/// a trace without the option carry NaN.
#[test]
fn trace_entries_carry_the_estimates_when_asked() {
    use revstab::experiments::snr_sweep::{point_batch, SweepConfig};
    use revstab::layers::Role;
    use revstab::measure::trace::{snr_trace, TraceOptions};
    use revstab::nets::{Arch, NetConfig, Network};
    let sweep = SweepConfig {
        batch: 4,
        input_size: 8,
        ..SweepConfig::default()
    };
    for arch in [Arch::Layerwise, Arch::Hybrid] {
        let mut cfg = NetConfig::new(arch);
        cfg.depth = 1;
        cfg.slope = 0.2;
        cfg.input_size = 8;
        let net = Network::build(&cfg, DType::F32, &Device::Cpu).unwrap();
        let (x, y) = point_batch(&sweep, 0, &Device::Cpu).unwrap();
        let opts = TraceOptions {
            depth_law: true,
            lipschitz: true,
            ..Default::default()
        };
        let t = snr_trace(&net, None, &x, &y, opts).unwrap();
        for p in &t.points {
            if p.role == Role::Hidden {
                assert!(
                    p.lip_forward.is_nan() && p.lip_inverse.is_nan(),
                    "{}",
                    p.layer
                );
                continue;
            }
            assert!(
                p.lip_forward > 0.0 && p.lip_inverse > 0.0,
                "{}: {} {}",
                p.layer,
                p.lip_forward,
                p.lip_inverse
            );
            if p.layer.ends_with(".act") {
                close(p.lip_forward, 1.0, &p.layer);
                close(p.lip_inverse, 5.0, &p.layer);
            }
            if p.layer.starts_with("pool") {
                close(p.lip_forward, 1.0, &p.layer);
                close(p.lip_inverse, 1.0, &p.layer);
            }
        }
        let plain = snr_trace(&net, None, &x, &y, TraceOptions::default()).unwrap();
        assert!(plain.points.iter().all(|p| p.lip_inverse.is_nan()));
    }
}
