//! The convolution shapes of a network's training step: what each step computes
//! ([`conv_shapes`], [`step_conv_flops`]) and each shape timed on its own
//! ([`conv_shape_timings`], `bench --conv-shapes`).

use super::*;

/// One convolution shape of a network: `count` same convolutions (stride 1, padding `k / 2`) of
/// `batch` images of `cin x size x size` to `cout` channels with a `k x k` kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvShape {
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Image height = width.
    pub size: usize,
    /// Kernel size.
    pub k: usize,
    /// How many such convolutions one forward runs.
    pub count: usize,
    /// The stem (its input gradient is never computed).
    pub stem: bool,
}

impl ConvShape {
    /// Multiply-adds of one forward of one such convolution.
    pub fn macs(&self) -> f64 {
        (self.batch * self.size * self.size * self.cin * self.cout * self.k * self.k) as f64
    }
}

/// The convolutions of one forward of `cfg` on `batch` images, stem first, then stage by stage
/// (equal shapes within a stage merged into one entry with a count): an invertible convolution
/// is two 3x3 convolutions on half the channels; max pooling adds a 1x1 projection `c -> 2c`;
/// the head's linear map is not a convolution and is left out.
pub fn conv_shapes(cfg: &NetConfig, batch: usize) -> Vec<ConvShape> {
    let mut b = batch;
    let mut size = cfg.input_size;
    let mut c = cfg.width;
    let shape =
        |b: usize, cin: usize, cout: usize, size: usize, k: usize, count: usize| ConvShape {
            batch: b,
            cin,
            cout,
            size,
            k,
            count,
            stem: false,
        };
    let mut out = vec![ConvShape {
        stem: true,
        ..shape(b, cfg.net.in_channels, c, size, 3, 1)
    }];
    let convs = cfg
        .fg_kinds()
        .iter()
        .filter(|k| **k == LayerKind::Conv)
        .count();
    for (s, units) in cfg.units_per_stage().into_iter().enumerate() {
        let (per_unit, ch) = match cfg.arch.spec().unit {
            // One invertible convolution: F and G on c/2 channels.
            Unit::Layerwise => (2, c / 2),
            // F and G each hold `convs` invertible convolutions on c/2 channels (c/4 per conv).
            Unit::Coupling {
                invertible_fg: true,
                ..
            } => (4 * convs, c / 4),
            Unit::Coupling { .. } => (2 * convs, c / 2),
            Unit::Residual => (convs, c),
        };
        if units > 0 {
            out.push(shape(b, ch, ch, size, 3, units * per_unit));
        }
        match cfg.pools().get(s) {
            Some(PoolKind::Channel) => {
                size /= 2;
                c *= 4;
            }
            // (b, c, h, w) -> (4b, c, h/2, w/2).
            Some(PoolKind::Batch) => {
                size /= 2;
                b *= 4;
            }
            Some(PoolKind::Max) => {
                size /= 2;
                out.push(shape(b, c, 2 * c, size, 1, 1));
                c *= 2;
            }
            None => {}
        }
    }
    out
}

/// Convolution multiply-adds of one forward of `cfg` on `batch` images: `(stem, rest)` over
/// [`conv_shapes`].
pub fn forward_conv_macs(cfg: &NetConfig, batch: usize) -> (f64, f64) {
    conv_shapes(cfg, batch)
        .iter()
        .fold((0.0, 0.0), |(stem, rest), s| {
            let m = s.count as f64 * s.macs();
            if s.stem {
                (stem + m, rest)
            } else {
                (stem, rest + m)
            }
        })
}

/// Time of one convolution shape on one kernel path: forward, input gradient and weight
/// gradient, median seconds of the repetitions, and the GFLOP/s each reaches (2 flops per
/// multiply-add of [`ConvShape::macs`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShapeTiming {
    /// The shape (`count`: per forward of the network).
    pub shape: ConvShape,
    /// `direct` or `gemm` (forced), or what [`ConvPath::Auto`] runs, `forward/weight-gradient`
    /// kernels ([`ConvPath::auto_kernels`]).
    pub path: String,
    /// Whether this is what the layers run ([`ConvPath::Auto`]).
    pub chosen: bool,
    /// Forward, seconds.
    pub forward_s: f64,
    /// Input gradient, seconds.
    pub input_grad_s: f64,
    /// Weight gradient, seconds.
    pub weight_grad_s: f64,
}

impl ShapeTiming {
    /// GFLOP/s of one operation (forward, input or weight gradient) that took `s` seconds.
    pub fn gflops(&self, s: f64) -> f64 {
        2.0 * self.shape.macs() / s / 1e9
    }
}

/// Time every distinct shape of [`conv_shapes`] of `cfg` on both forced kernel paths (direct
/// and gemm) and on what the layers run (`Auto`, the chosen row): `reps` repetitions after one untimed one, medians; in `dtype` (f32 or f64) on random
/// data. The stem is timed like the others. Threads as the caller set them.
pub fn conv_shape_timings(
    cfg: &NetConfig,
    batch: usize,
    dtype: DType,
    reps: usize,
) -> Result<Vec<ShapeTiming>> {
    use crate::backend::cpu::{self, ConvPath};
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for shape in conv_shapes(cfg, batch) {
        let key = (shape.batch, shape.cin, shape.cout, shape.size, shape.k);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let dev = Device::Cpu;
        let mut rng = crate::util::rng_for(cfg.seed, "conv-shapes");
        let (b, s, k) = (shape.batch, shape.size, shape.k);
        let x = crate::util::randn(&mut rng, &[b, shape.cin, s, s], 0.0, 1.0, dtype, &dev)?;
        let w = crate::util::randn(
            &mut rng,
            &[shape.cout, shape.cin, k, k],
            0.0,
            0.1,
            dtype,
            &dev,
        )?;
        let g = crate::util::randn(&mut rng, &[b, shape.cout, s, s], 0.0, 1.0, dtype, &dev)?;
        for path in [ConvPath::Direct, ConvPath::Gemm, ConvPath::Auto] {
            let time = |f: &dyn Fn() -> Result<Tensor>| -> Result<f64> {
                f()?;
                let mut t = Vec::with_capacity(reps);
                for _ in 0..reps.max(1) {
                    let t0 = Instant::now();
                    f()?;
                    t.push(t0.elapsed().as_secs_f64());
                }
                Ok(median(&t))
            };
            let forward_s = time(&|| cpu::conv2d_same_via(&x, &w, path))?;
            let input_grad_s = time(&|| cpu::conv2d_same_input_grad_via(&g, &w, path))?;
            let weight_grad_s = time(&|| cpu::conv2d_same_weight_grad_via(&x, &g, k, path))?;
            out.push(ShapeTiming {
                shape,
                path: match path {
                    ConvPath::Direct => "direct".into(),
                    ConvPath::Gemm => "gemm".into(),
                    ConvPath::Auto => {
                        let (fwd, dw) = ConvPath::auto_kernels(dtype, shape.cin, k, s, s);
                        format!("{fwd}/{dw}")
                    }
                },
                chosen: path == ConvPath::Auto,
                forward_s,
                input_grad_s,
                weight_grad_s,
            });
        }
    }
    Ok(out)
}

/// The header of [`shape_csv_line`].
pub const SHAPE_CSV_HEADER: &str = "arch,batch,cin,cout,size,k,count,path,chosen,forward_s,forward_gflops,input_grad_s,input_grad_gflops,weight_grad_s,weight_grad_gflops";

/// One CSV line of a [`ShapeTiming`] of architecture `arch`.
pub fn shape_csv_line(arch: Arch, t: &ShapeTiming) -> String {
    let s = &t.shape;
    format!(
        "{arch},{},{},{},{},{},{},{},{},{:.6},{:.2},{:.6},{:.2},{:.6},{:.2}",
        s.batch,
        s.cin,
        s.cout,
        s.size,
        s.k,
        s.count,
        t.path,
        t.chosen,
        t.forward_s,
        t.gflops(t.forward_s),
        t.input_grad_s,
        t.gflops(t.input_grad_s),
        t.weight_grad_s,
        t.gflops(t.weight_grad_s)
    )
}

/// The per-shape table printed by `bench --conv-shapes` (`*` marks the path the layers take).
pub fn format_shape_table(timings: &[ShapeTiming]) -> String {
    let mut s = format!(
        "{:>5} {:>5} {:>5} {:>5} {:>2} {:>5} {:<15} {:>10} {:>8} {:>10} {:>8} {:>10} {:>8}\n",
        "batch",
        "cin",
        "cout",
        "size",
        "k",
        "count",
        "path",
        "fwd ms",
        "GFLOP/s",
        "dX ms",
        "GFLOP/s",
        "dW ms",
        "GFLOP/s"
    );
    for t in timings {
        let sh = &t.shape;
        s.push_str(&format!(
            "{:>5} {:>5} {:>5} {:>5} {:>2} {:>5} {:<15} {:>10.3} {:>8.1} {:>10.3} {:>8.1} {:>10.3} {:>8.1}\n",
            sh.batch,
            sh.cin,
            sh.cout,
            sh.size,
            sh.k,
            sh.count,
            format!("{}{}", t.path, if t.chosen { "*" } else { "" }),
            t.forward_s * 1e3,
            t.gflops(t.forward_s),
            t.input_grad_s * 1e3,
            t.gflops(t.input_grad_s),
            t.weight_grad_s * 1e3,
            t.gflops(t.weight_grad_s)
        ));
    }
    s
}

/// Convolution floating-point operations of one training step: forward, input gradient and
/// weight gradient of every convolution (3 forward-equivalents), the stem without an input
/// gradient (2); 2 flops per multiply-add. Recomputations of the reconstructed modes are not
/// counted, so the rate compares the modes' useful work.
pub fn step_conv_flops(cfg: &NetConfig, batch: usize) -> f64 {
    let (stem, rest) = forward_conv_macs(cfg, batch);
    2.0 * (2.0 * stem + 3.0 * rest)
}
