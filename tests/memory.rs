//! Memory experiment: measured peaks of one training step (counting allocator) against depth
//! and against the analytic model, and the experiment end to end.
//!
//! The allocation counter is process-wide and the test harness runs tests on several threads,
//! so every test here holds [`LOCK`] for its whole body: nothing else in this binary allocates
//! while a step is measured. candle's own worker threads do allocate during a step, and count:
//! they are part of the step.

#[global_allocator]
static ALLOC: revstab::measure::alloc::CountingAlloc = revstab::measure::alloc::CountingAlloc;

use candle_core::{DType, Device};
use revstab::backend::Backend;
use revstab::experiments::memory::{
    analytic_bytes_per_pixel, analytic_bytes_per_pixel_in, analytic_stored_bytes_per_pixel,
    check_writable, measure_point, run, stage_channels, ArchDepth, MemoryConfig, PeakPoint, Preset,
    SummaryRow,
};
use revstab::measure::alloc;
use revstab::nets::{Arch, NetConfig, Network, Source};
use std::sync::{Mutex, MutexGuard};

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A one-stage network (no pooling): every layer has `width` channels at the input resolution.
fn net(arch: Arch, depth: usize, width: usize, size: usize) -> NetConfig {
    let mut c = NetConfig::new(arch);
    c.net.pools = Some(Vec::new());
    c.depth = depth;
    c.width = width;
    c.input_size = size;
    c
}

fn point(
    arch: Arch,
    depth: usize,
    mode: Source,
    dtype: DType,
    batch: usize,
    size: usize,
) -> PeakPoint {
    measure_point(
        &net(arch, depth, 16, size),
        batch,
        mode,
        dtype,
        &Device::Cpu,
        Backend::default(),
        1,
    )
    .expect("measure")
}

/// Reconstructed memory does not grow with depth, at depth 8 and 32, width 16, batch 8 of 16x16 images, in `dtype`: in reconstructed
/// mode the depth-32 activation peak (the peak above what the step returns: the parameter
/// gradients, which grow with depth like the weights) is at most 1.2x the depth-8 one and the tape does not grow; in stored
/// mode the tape grows by a fixed number of activations per block (2 layer-wise: the inputs of
/// the invertible convolution and the batch norm, the leaky ReLU's VJP being taken at its
/// output; 4 for the blocks: the block input and, in F and G at c/2 channels, the inputs of the
/// first batch norm, the second convolution and the second batch norm) and the peak by at
/// least 90% of that (linear growth), at least doubling from 8 to 32.
/// Returns the table of measurements and the failures.
fn check_depth(dtype: DType, modes: &[Source]) -> (String, Vec<String>) {
    let (width, batch, size) = (16, 8, 16);
    let act = (batch * width * size * size * dtype.size_in_bytes()) as f64;
    let mut report = format!(
        "{dtype:?}\narch       mode           depth 8 peak   depth 32 peak  ratio  tape 8 -> 32   grads 8 -> 32\n"
    );
    let mut failures = Vec::new();
    for arch in [Arch::Layerwise, Arch::Hybrid, Arch::Revnet] {
        for &mode in modes {
            let p8 = point(arch, 8, mode, dtype, batch, size);
            let p32 = point(arch, 32, mode, dtype, batch, size);
            let ratio = p32.peak_bytes as f64 / p8.peak_bytes as f64;
            report.push_str(&format!(
                "{:<10} {:<13} {:>13} {:>15} {:>6.3}  {} -> {}   {} -> {}\n",
                arch.as_str(),
                mode.as_str(),
                p8.peak_bytes,
                p32.peak_bytes,
                ratio,
                p8.tape_bytes,
                p32.tape_bytes,
                p8.grad_bytes,
                p32.grad_bytes
            ));
            match mode {
                Source::Reconstructed => {
                    // The parameter gradients (their data and, per tensor, a few hundred bytes
                    // of names and bookkeeping) grow with depth like the weights; with the
                    // activations down to a few buffers they are a large part of the peak, so
                    // the criterion takes the peak above what the step returns.
                    let act = |p: &PeakPoint| (p.peak_bytes - p.held_bytes) as f64;
                    let (what, r) = ("peak above what the step returns", act(&p32) / act(&p8));
                    if r > 1.2 {
                        failures.push(format!("{dtype:?} {arch} reconstructed: depth-32 {what} is {r:.3}x the depth-8 one (limit 1.2x)"));
                    }
                    // Only the stem's input (the image) and the head's input are stored.
                    if p32.tape_bytes != p8.tape_bytes {
                        failures.push(format!("{dtype:?} {arch} reconstructed: the tape grows with depth ({} -> {} B)", p8.tape_bytes, p32.tape_bytes));
                    }
                }
                Source::Stored => {
                    let peak_growth = p32.peak_bytes as f64 - p8.peak_bytes as f64;
                    let tape_growth = p32.tape_bytes as f64 - p8.tape_bytes as f64;
                    let per_block = tape_growth / 24.0 / act;
                    let expected = if arch == Arch::Layerwise { 2.0 } else { 4.0 };
                    if (per_block - expected).abs() > 1e-9 {
                        failures.push(format!("{dtype:?} {arch} stored: the tape grows by {per_block} activations per block, expected {expected}"));
                    }
                    if peak_growth < 0.9 * tape_growth {
                        failures.push(format!("{dtype:?} {arch} stored: the peak grows by {peak_growth} B from depth 8 to 32, less than 90% of the tape's {tape_growth} B"));
                    }
                    if ratio < 2.0 {
                        failures.push(format!("{dtype:?} {arch} stored: the depth-32 peak is only {ratio:.3}x the depth-8 peak"));
                    }
                }
                // Checked against its own expectation below.
                Source::Checkpointed | Source::Anchored => {}
            }
        }
    }
    (report, failures)
}

/// The depth check in f32 (see [`check_depth`]). The size makes one activation (8 x 16 x 16 x 16 x 4 B =
/// 131 kB) large next to the parameter gradients of a block (5-10 kB, plus ~300 B of tensor
/// bookkeeping per gradient): those grow with depth in both modes, like the weights (the
/// `M_theta` term, not activations).
#[test]
fn reconstructed_peak_does_not_grow_with_depth() {
    let _g = lock();
    assert!(alloc::is_installed());
    let (report, failures) = check_depth(DType::F32, &[Source::Stored, Source::Reconstructed]);
    eprintln!("{report}");
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
}

/// The depth check in f16, where every layer but the convolutions (the f32 kernels, rounded) takes the
/// candle-op path of its closed-form VJP (the other CPU kernels cover f32/f64 only): no gradient
/// may keep a graph or an activation alive, so that reconstructed mode does not grow with depth
/// like stored mode. Reconstructed mode only, to keep the test short (f16 runs on candle's
/// generic CPU ops).
#[test]
fn reconstructed_peak_does_not_grow_with_depth_f16() {
    let _g = lock();
    let (report, failures) = check_depth(DType::F16, &[Source::Reconstructed]);
    eprintln!("{report}");
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
}

/// Measured peaks (reconstructed mode, stored for the ResNet: the modes the model describes)
/// stay within a factor [1, 12] of the analytic `M'_z + M'_g` on small one-stage networks (f32,
/// width 16, depth 4, batch 4 of 16x16 images). The model is a lower bound: it counts the
/// activations the algorithm needs (2.5c per pixel layer-wise, 2.75c hybrid, 5c RevNet) and no
/// temporaries, workspaces or fixed costs, which the whole peak of such a small step adds
/// (parameter gradients included here). The tight per-pixel bound is
/// `reconstructed_marginal_bytes_within_bound`. Before the one backward driver (autograd VJPs
/// for the leaky ReLU) the factors were 9.1x layer-wise and 6.2x hybrid.
#[test]
fn measured_peak_within_factor_of_analytic() {
    let _g = lock();
    let mut report = String::new();
    let mut failures = Vec::new();
    for arch in Arch::ALL {
        let mode = if arch.reconstructable() {
            Source::Reconstructed
        } else {
            Source::Stored
        };
        let cfg = net(arch, 4, 16, 16);
        let analytic = analytic_bytes_per_pixel(&cfg, DType::F32).expect("model applies");
        let p = point(arch, 4, mode, DType::F32, 4, 16);
        assert_eq!(p.analytic_bytes_per_pixel, Some(analytic));
        assert_eq!(
            analytic_bytes_per_pixel_in(&cfg, mode, DType::F32),
            Some(analytic)
        );
        let factor = p.bytes_per_pixel / analytic;
        report.push_str(&format!(
            "{:<10} analytic {analytic:>6.0} B/px  measured {:>7.0} B/px  factor {factor:.2}\n",
            arch.as_str(),
            p.bytes_per_pixel
        ));
        if !(1.0..=12.0).contains(&factor) {
            failures.push(format!(
                "{arch}: measured/analytic = {factor:.2}, outside [1, 12]"
            ));
        }
    }
    eprintln!("{report}");
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
}

/// The quick experiment runs end to end into a temporary directory and writes every file.
#[test]
fn quick_run_writes_results() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("memory");
    let cfg = MemoryConfig::quick();
    let res = run(&cfg).expect("quick run");
    res.write_all(&out).expect("write");
    for f in [
        "summary.csv",
        "table1.csv",
        "measured.csv",
        "scaling.csv",
        "run.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    check_summary_csv(&out.join("summary.csv"), &res.summary, &cfg, true);
    let measured = std::fs::read_to_string(out.join("measured.csv")).unwrap();
    assert!(
        measured.starts_with(
            "arch,mode,depth,batch,size,width,dtype,peak_bytes,bytes_per_pixel,tape_bytes,"
        ),
        "{measured}"
    );
    assert_eq!(measured.lines().count(), 1 + res.points.len());
    // base point + 2 extra depths + 1 extra batch + 1 extra size, per architecture and mode
    assert_eq!(res.points.len(), Arch::ALL.len() * 2 * 5);
    assert!(res
        .points
        .iter()
        .all(|p| p.peak_bytes > 0 && p.bytes_per_pixel > 0.0));
    let scaling = std::fs::read_to_string(out.join("scaling.csv")).unwrap();
    assert_eq!(scaling.lines().count(), 1 + Arch::ALL.len() * 2 * 3);
    assert!(scaling.starts_with("arch,mode,axis,unit,values,slope,"));
    let table1 = std::fs::read_to_string(out.join("table1.csv")).unwrap();
    assert_eq!(table1.lines().count(), 1 + 5, "{table1}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    for key in [
        "files",
        "config",
        "crate_version",
        "git_revision",
        "device",
        "backend",
        "dtype",
        "timings",
        "summary",
    ] {
        assert!(json.get(key).is_some(), "run.json lacks {key}");
    }
    assert_eq!(json["backend"], "kernels");
    assert_eq!(json["config"]["quick"], true);
    assert!(json["files"]["summary.csv"]
        .as_str()
        .unwrap()
        .contains("(arch, mode)"));
    assert_eq!(json["device"], "cpu");
    // ResNet has no inverse: its reconstructed step is its stored step.
    for p in res
        .points
        .iter()
        .filter(|p| p.arch == Arch::Resnet && p.mode == Source::Reconstructed)
    {
        let s = res
            .points
            .iter()
            .find(|q| {
                q.arch == Arch::Resnet
                    && q.mode == Source::Stored
                    && q.depth == p.depth
                    && q.batch == p.batch
                    && q.size == p.size
            })
            .unwrap();
        assert_eq!(s.peak_bytes, p.peak_bytes);
    }
    let md = res.markdown();
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| ")).count(),
        1 + Arch::ALL.len() * 2,
        "{md}"
    );
    // The config round-trips through JSON (the binary's --config).
    let back: MemoryConfig = serde_json::from_value(json["config"].clone()).unwrap();
    assert_eq!(back, cfg);
}

/// The columns `summary.csv` must have, in this order, first.
const SUMMARY_COLUMNS: [&str; 5] = [
    "arch",
    "mode",
    "analytic_bpx",
    "measured_bpx",
    "marginal_bpx",
];

/// `summary.csv` has the required columns (and the extra ones), one row per (arch, mode) of the
/// config, and agrees with the in-memory rows: measured figures finite and positive, the model
/// and the ratios finite where `model_applies`, the marginal figure there whenever the batch
/// sweep has two batches.
fn check_summary_csv(
    path: &std::path::Path,
    rows: &[SummaryRow],
    cfg: &MemoryConfig,
    model_applies: bool,
) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[..5], &SUMMARY_COLUMNS, "{header:?}");
    for extra in [
        "marginal_over_analytic",
        "measured_over_analytic",
        "peak_bpx",
        "grad_bytes",
        "weight_bytes",
        "depth",
        "width",
        "input_size",
        "batch",
        "batches",
        "pools",
        "channels",
        "blocks",
        "dtype",
    ] {
        assert!(
            header.iter().any(|h| h == extra),
            "summary.csv lacks {extra}"
        );
    }
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), cfg.archs.len() * cfg.modes.len());
    assert_eq!(rows.len(), records.len());
    for &arch in &cfg.archs {
        for &mode in &cfg.modes {
            let n = records
                .iter()
                .filter(|r| r[0] == *arch.as_str() && r[1] == *mode.as_str())
                .count();
            assert_eq!(n, 1, "{arch} {mode:?}: {n} rows");
        }
    }
    let num = |rec: &csv::StringRecord, name: &str| -> Option<f64> {
        let t = &rec[col(name)];
        (!t.is_empty()).then(|| {
            t.parse::<f64>()
                .unwrap_or_else(|e| panic!("{name} = {t}: {e}"))
        })
    };
    let batches = cfg
        .batches
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(";");
    for (rec, row) in records.iter().zip(rows) {
        assert_eq!(rec[0], *row.arch.as_str());
        let measured = num(rec, "measured_bpx").unwrap();
        assert!(measured.is_finite() && measured > 0.0, "{rec:?}");
        assert_eq!(measured, row.measured_bpx);
        assert!(num(rec, "peak_bpx").unwrap() >= measured, "{rec:?}");
        assert_eq!(rec[col("batches")], batches);
        assert_eq!(rec[col("depth")], cfg.depth_for(row.arch).to_string());
        assert_eq!(&rec[col("dtype")], cfg.dtype.name());
        let two_batches = {
            let mut b = cfg.batches.clone();
            b.sort_unstable();
            b.dedup();
            b.len() >= 2
        };
        let marginal = num(rec, "marginal_bpx");
        assert_eq!(marginal.is_some(), two_batches, "{rec:?}");
        if let Some(m) = marginal {
            assert!(m.is_finite(), "{rec:?}");
        }
        if model_applies {
            let a = num(rec, "analytic_bpx").expect("the model applies");
            assert!(a.is_finite() && a > 0.0, "{rec:?}");
            let ratio = num(rec, "measured_over_analytic").unwrap();
            assert!(
                (ratio - measured / a).abs() <= 1e-9 * ratio.abs(),
                "{rec:?}"
            );
            if let Some(m) = marginal {
                let r = num(rec, "marginal_over_analytic").unwrap();
                assert!((r - m / a).abs() <= 1e-9 * r.abs().max(1.0), "{rec:?}");
            }
        }
    }
}

/// The analytic figure of each (arch, mode) row: the stored-mode model (every convolution and
/// batch-norm input stored + one gradient buffer) for the reversible networks in stored mode,
/// the model of the paper otherwise; on one stage of width c (f32): layer-wise 2 x depth x c + c
/// stored elements per pixel, blocks 4 x depth x c + c.
#[test]
fn analytic_figure_per_mode() {
    let _g = lock();
    let (c, d) = (16.0, 4.0);
    for arch in Arch::ALL {
        let cfg = net(arch, 4, 16, 8);
        let stored = analytic_stored_bytes_per_pixel(&cfg, DType::F32).unwrap();
        let per_block = if arch == Arch::Layerwise { 2.0 } else { 4.0 };
        assert_eq!(stored, (per_block * d * c + c) * 4.0, "{arch}");
        assert_eq!(
            analytic_bytes_per_pixel_in(&cfg, Source::Stored, DType::F32),
            Some(if arch.reconstructable() {
                stored
            } else {
                analytic_bytes_per_pixel(&cfg, DType::F32).unwrap()
            })
        );
        assert_eq!(
            analytic_bytes_per_pixel_in(&cfg, Source::Reconstructed, DType::F32),
            analytic_bytes_per_pixel(&cfg, DType::F32)
        );
    }
    // The ResNet's own model is the same accounting.
    let resnet = net(Arch::Resnet, 4, 16, 8);
    assert_eq!(
        analytic_stored_bytes_per_pixel(&resnet, DType::F32),
        analytic_bytes_per_pixel(&resnet, DType::F32)
    );
    // A stage without a block: the model does not apply.
    let mut shallow = NetConfig::new(Arch::Hybrid);
    shallow.depth = 2;
    assert_eq!(shallow.pools().len(), 3);
    assert_eq!(analytic_bytes_per_pixel(&shallow, DType::F32), None);
    assert_eq!(
        analytic_bytes_per_pixel_in(&shallow, Source::Stored, DType::F32),
        None
    );
}

/// Channels per stage of a built network, read from its batch-norm parameters (`s<stage>.*`
/// gammas; the modules F and G of a reversible block run on half the channels).
fn built_stage_channels(net: &Network, stages: usize) -> Vec<usize> {
    let params = net.named_params();
    (0..stages)
        .map(|s| {
            params
                .iter()
                .filter(|(n, _)| n.starts_with(&format!("s{s}.")) && n.ends_with(".gamma"))
                .map(|(n, v)| {
                    let c = v.as_tensor().dims()[0];
                    if n.contains(".F.") || n.contains(".G.") {
                        2 * c
                    } else {
                        c
                    }
                })
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// The paper preset: it validates, `experiments/memory-paper.toml` is the same config, every
/// network has a block in each of its 4 stages with the paper's channels (Table 1:
/// 32-128-512-512 layer-wise and hybrid, 32-128-512-2048 i-RevNet; max pooling doubles:
/// 32-64-128-256 ResNet and RevNet) and the paper's blocks per stage, and the analytic model of
/// the measured networks gives the paper's per-pixel figures (1936 for the ResNet, whose
/// printed 1928 the model does not reproduce; 640 for a RevNet with c = 32).
#[test]
fn paper_preset_builds_the_paper_networks() {
    let _g = lock();
    let cfg = MemoryConfig::paper();
    cfg.validate().expect("paper preset is valid");
    assert_eq!(MemoryConfig::preset(Preset::Paper), cfg);
    assert_eq!(MemoryConfig::preset(Preset::Quick), MemoryConfig::quick());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/memory-paper.toml");
    let file: MemoryConfig = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        file, cfg,
        "experiments/memory-paper.toml != MemoryConfig::paper()"
    );
    assert_eq!((cfg.width, cfg.input_size, cfg.stages), (32, 32, 4));
    let expect = [
        (
            Arch::Layerwise,
            vec![32, 128, 512, 512],
            vec![4, 4, 3, 3],
            320.0,
        ),
        (
            Arch::Hybrid,
            vec![32, 128, 512, 512],
            vec![2, 2, 2, 1],
            352.0,
        ),
        (
            Arch::Revnet,
            vec![32, 64, 128, 256],
            vec![2, 2, 2, 2],
            640.0,
        ),
        (
            Arch::Irevnet,
            vec![32, 128, 512, 2048],
            vec![2, 2, 2, 1],
            640.0,
        ),
        (
            Arch::Resnet,
            vec![32, 64, 128, 256],
            vec![2, 2, 2, 2],
            1936.0,
        ),
    ];
    for (arch, channels, blocks, bpx) in expect {
        let net_cfg = cfg.net_config(arch, cfg.depth_for(arch), cfg.input_size);
        assert_eq!(net_cfg.pools(), arch.default_pools(), "{arch}");
        assert_eq!(stage_channels(&net_cfg), channels, "{arch}");
        assert_eq!(net_cfg.units_per_stage(), blocks, "{arch}");
        assert_eq!(
            analytic_bytes_per_pixel(&net_cfg, DType::F32),
            Some(bpx),
            "{arch}"
        );
        let net = Network::build(&net_cfg, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(built_stage_channels(&net, 4), channels, "{arch} as built");
    }
}

/// A small variant of the paper preset (width 8, 8x8 images, batches 1 and 2) runs end to end
/// through every pooling: summary.csv has one row per (arch, mode) with the model applying to
/// every row (a block in every stage).
#[test]
fn small_paper_variant_runs_with_every_pooling() {
    let _g = lock();
    let cfg = MemoryConfig {
        width: 8,
        input_size: 8,
        batch: 2,
        batches: vec![1, 2],
        ..MemoryConfig::paper()
    };
    let res = run(&cfg).expect("run");
    let dir = tempfile::tempdir().unwrap();
    res.write_all(dir.path()).unwrap();
    check_summary_csv(&dir.path().join("summary.csv"), &res.summary, &cfg, true);
    let irev = res
        .summary
        .iter()
        .find(|r| r.arch == Arch::Irevnet)
        .unwrap();
    assert_eq!(
        (
            irev.channels.as_str(),
            irev.blocks.as_str(),
            irev.pools.as_str()
        ),
        ("8-32-128-512", "2-2-2-1", "P_c-P_c-P_c")
    );
    let md = res.markdown();
    assert!(md.contains("irevnet 7"), "{md}");
}

/// Bound on the marginal activation bytes per input pixel of a reconstructed step over the
/// analytic `M'_z + M'_g` (layer-wise, hybrid, RevNet, i-RevNet).
const RECON_MARGINAL_BOUND: f64 = 1.5;

/// Reconstructed mode's marginal bytes per pixel (slope of the activation peak over batches 2,
/// 4, 8: fixed costs removed) stay within [`RECON_MARGINAL_BOUND`] x the analytic model on a
/// small single-stage config (width 16, 8x8, depth 4), and come in the model's order:
/// layer-wise < hybrid < RevNet. Measured (width 16, 8x8, f32): 193, 225 and 321 B/px, 1.20x,
/// 1.28x and 1.00x the model.
#[test]
fn reconstructed_marginal_bytes_within_bound() {
    let _g = lock();
    let cfg = MemoryConfig {
        archs: vec![Arch::Layerwise, Arch::Hybrid, Arch::Revnet, Arch::Irevnet],
        modes: vec![Source::Reconstructed],
        width: 16,
        depth: 4,
        arch_depths: Vec::<ArchDepth>::new(),
        input_size: 8,
        stages: 1,
        batch: 8,
        batches: vec![2, 4, 8],
        depths: vec![],
        sizes: vec![],
        ..MemoryConfig::default()
    };
    let res = run(&cfg).expect("run");
    let mut report = String::new();
    let mut failures = Vec::new();
    for r in &res.summary {
        let ratio = r.marginal_over_analytic.expect("model and marginal apply");
        report.push_str(&format!(
            "{:<10} analytic {:>6.0} B/px  marginal {:>7.1} B/px  ratio {ratio:.2}  (measured {:.0} B/px)\n",
            r.arch.as_str(),
            r.analytic_bpx.unwrap(),
            r.marginal_bpx.unwrap(),
            r.measured_bpx
        ));
        if ratio > RECON_MARGINAL_BOUND {
            failures.push(format!(
                "{}: marginal/analytic = {ratio:.2} > {RECON_MARGINAL_BOUND}",
                r.arch
            ));
        }
    }
    let marginal = |arch: Arch| {
        res.summary
            .iter()
            .find(|r| r.arch == arch)
            .and_then(|r| r.marginal_bpx)
            .expect("measured")
    };
    let order = [Arch::Layerwise, Arch::Hybrid, Arch::Revnet].map(marginal);
    if !(order[0] < order[1] && order[1] < order[2]) {
        failures.push(format!(
            "marginal bytes per pixel not in the model's order layer-wise < hybrid < RevNet: {order:?}"
        ));
    }
    eprintln!("{report}");
    assert!(failures.is_empty(), "{}\n{report}", failures.join("\n"));
}

#[test]
fn bad_configs_and_unwritable_output_are_errors() {
    let _g = lock();
    let bad = [
        MemoryConfig {
            depths: vec![0],
            ..MemoryConfig::quick()
        },
        MemoryConfig {
            stages: 5,
            ..MemoryConfig::quick()
        },
        // An unknown dtype no longer makes a config (it fails to parse); a GPU is refused.
        MemoryConfig {
            device: revstab::device::DeviceSpec::Cuda(None),
            ..MemoryConfig::quick()
        },
        MemoryConfig {
            width: 6,
            archs: vec![Arch::Hybrid],
            ..MemoryConfig::quick()
        },
        MemoryConfig {
            archs: vec![],
            ..MemoryConfig::quick()
        },
        MemoryConfig {
            arch_depths: vec![ArchDepth {
                arch: Arch::Hybrid,
                depth: 0,
            }],
            ..MemoryConfig::quick()
        },
        MemoryConfig {
            arch_depths: vec![
                ArchDepth {
                    arch: Arch::Hybrid,
                    depth: 2,
                },
                ArchDepth {
                    arch: Arch::Hybrid,
                    depth: 3,
                },
            ],
            ..MemoryConfig::quick()
        },
    ];
    for c in bad {
        assert!(c.validate().is_err(), "{c:?}");
    }
    assert!(
        serde_json::from_str::<MemoryConfig>(r#"{"widht": 8}"#).is_err(),
        "unknown fields are rejected"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    assert!(check_writable(&file.path().join("sub")).is_err());
}

/// The binary: an unwritable `--out` is one line on stderr and exit code 2, before any
/// measurement.
#[test]
fn binary_reports_unwritable_out_with_exit_code_2() {
    let _g = lock();
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memory"))
        .arg("--quick")
        .arg("--out")
        .arg(file.path().join("results"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("memory: error: cannot write to output directory"),
        "{stderr}"
    );
}

/// Activations a one-stage RevNet or ResNet of `depth` blocks keeps live at the peak of a
/// training step, in units of one block input `A = batch * width * size^2` elements, counting
/// what the step stores for its backward and the activation the walk holds above it (the
/// head's input, or the checkpoint of the segment above):
///
/// - stored: every block keeps 4 A: its input (A) and, in each of F and G (`c/2` channels),
///   the inputs of BN1, conv2 and BN2 (3 x A/2; ReLU's VJP is taken at its output, its input
///   is not stored); so `4 depth + 1`.
/// - checkpointed with segments of `k` blocks (`m = ceil(depth / k)` segments; segment 0's
///   checkpoint is the image, not an activation): at the end of the forward, the checkpoints
///   of segments `1..m-1` (A each) plus the top segment stored whole (`4 (depth - (m-1) k)`)
///   plus the head input; while segment `j < m-1` is walked, the checkpoints below it
///   (`max(j - 1, 0)`), the segment recomputed (`4 k`) and the output the walk holds (A).
fn live_activations(depth: usize, segment: Option<usize>) -> usize {
    let Some(k) = segment else {
        return 4 * depth + 1;
    };
    let m = depth.div_ceil(k);
    let forward_end = m.saturating_sub(2) + 4 * (depth - (m - 1) * k) + 1;
    let walked = (0..m - 1)
        .map(|j| j.saturating_sub(1) + 4 * k + 1)
        .max()
        .unwrap_or(0);
    forward_end.max(walked)
}

/// The checkpointed activation peak is below the stored one by the expected number
/// of activations ([`live_activations`]), within one activation either way (the working
/// buffers of the backward, which the two sources share, sit at different moments), for
/// RevNet and ResNet, f32, width 16, batch 8 of 16x16, one stage.
#[test]
fn checkpointed_peak_is_below_stored_by_the_expected_activations() {
    let _g = lock();
    let (width, batch, size) = (16, 8, 16);
    let activation = (batch * width * size * size * 4) as f64;
    for arch in [Arch::Revnet, Arch::Resnet] {
        for (depth, k) in [(4, 2), (9, 3), (8, 1)] {
            let cfg = net(arch, depth, width, size);
            let measure = |mode, segment| {
                revstab::experiments::memory::measure_point_segment(
                    &cfg,
                    batch,
                    mode,
                    segment,
                    DType::F32,
                    &Device::Cpu,
                    Backend::default(),
                    1,
                )
                .expect("measure")
            };
            let stored = measure(Source::Stored, None);
            let ckpt = measure(Source::Checkpointed, Some(k));
            let saved = (stored.act_peak_bytes as f64 - ckpt.act_peak_bytes as f64) / activation;
            let expected =
                live_activations(depth, None) as f64 - live_activations(depth, Some(k)) as f64;
            eprintln!(
                "{arch} depth {depth} k {k}: stored {} B, checkpointed {} B, saved {saved:.2} A, expected {expected} A",
                stored.act_peak_bytes, ckpt.act_peak_bytes
            );
            assert!(
                (saved - expected).abs() <= 1.0,
                "{arch} depth {depth} segment {k}: saved {saved:.2} activations, expected {expected} (stored peak {} B, checkpointed {} B, A = {activation} B)",
                stored.act_peak_bytes,
                ckpt.act_peak_bytes
            );
        }
    }
}

/// The frontier experiment end to end at a tiny size (RevNet and ResNet, depth 4,
/// width 8, batch 2 of 8x8): every source once, checkpointed k = 1, 2, 4; the exact sources
/// (stored, checkpointed) measure infinite SNR and a zero gradient angle, the reconstructed
/// ones a finite SNR; checkpointed k = depth has the stored peak, k = 2 a lower one; the
/// reconstructed peak is the lowest.
#[test]
fn tradeoff_experiment_measures_memory_time_and_exactness() {
    use revstab::experiments::tradeoff::{run, TradeoffConfig};
    let _g = lock();
    let cfg = TradeoffConfig {
        archs: vec![Arch::Revnet, Arch::Resnet],
        depths: vec![4],
        width: 8,
        batch: 2,
        input_size: 8,
        steps: 1,
        warmup: 1,
        ..TradeoffConfig::default()
    };
    assert_eq!(TradeoffConfig::segments_for(4), vec![1, 2, 4]);
    assert_eq!(
        TradeoffConfig::segments_for(32),
        vec![1, 2, 4, 6, 8, 16, 32]
    );
    let d = run(&cfg, |_| {}).expect("run");
    let of = |arch: Arch, source: &str, k: Option<usize>| {
        d.points
            .iter()
            .find(|p| p.arch == arch && p.source == source && p.segment == k)
            .unwrap_or_else(|| panic!("{arch} {source} {k:?} missing"))
    };
    assert_eq!(
        d.points.len(),
        4 + 8,
        "revnet: 1 + 3 + 2 + 2 anchored sources, resnet 1 + 3"
    );
    for arch in [Arch::Revnet, Arch::Resnet] {
        let stored = of(arch, "stored", None);
        assert_eq!(stored.time_ratio, 1.0);
        for k in [1, 2, 4] {
            let p = of(arch, "checkpointed", Some(k));
            assert_eq!(p.lowest_snr_db, f64::INFINITY, "{arch} k {k}");
            assert_eq!(p.grad_angle_deg, 0.0, "{arch} k {k}");
            assert!(p.time_ratio.is_finite() && p.time_ratio > 0.0);
        }
        let (full, two) = (
            of(arch, "checkpointed", Some(4)),
            of(arch, "checkpointed", Some(2)),
        );
        // Equal up to allocator noise: the step's kernels run on rayon's pool, whose workers'
        // scratch allocations vary with scheduling on a loaded machine (seen: 92570 vs
        // 93694 B, 1.2%, with other builds running); 2% still separates k = depth from k = 2.
        let noise = (stored.act_peak_bytes / 50).max(64);
        assert!(
            full.act_peak_bytes.abs_diff(stored.act_peak_bytes) < noise,
            "{arch}: k = depth is the stored step ({} vs {} B)",
            full.act_peak_bytes,
            stored.act_peak_bytes
        );
        assert!(
            two.act_peak_bytes + noise < stored.act_peak_bytes,
            "{arch}: k = 2 saves memory beyond the noise ({} vs {} B)",
            two.act_peak_bytes,
            stored.act_peak_bytes
        );
    }
    let rec = of(Arch::Revnet, "reconstructed", None);
    assert!(
        rec.lowest_snr_db.is_finite() && rec.lowest_snr_db > 60.0,
        "{}",
        rec.lowest_snr_db
    );
    assert!(rec.grad_angle_deg > 0.0 && rec.grad_angle_deg < 1.0);
    assert!(rec.act_peak_bytes < of(Arch::Revnet, "checkpointed", Some(2)).act_peak_bytes);
    assert!(d
        .points
        .iter()
        .all(|p| p.arch != Arch::Resnet
            || !matches!(p.source.as_str(), "reconstructed" | "anchored")));
    // Anchored at 30 and 60 dB: each holds its target on the batch, with its anchors' bytes
    // on top of the reconstructed activation peak (up to one activation of allocator noise
    // and scheduling: 2 x 8 x 8 x 8 x 4 B).
    let activation = 2 * 8 * 8 * 8 * 4;
    for t in [30.0, 60.0] {
        let a = d
            .points
            .iter()
            .find(|p| p.source == "anchored" && p.anchors.as_ref().unwrap().min_snr_db == Some(t))
            .unwrap_or_else(|| panic!("anchored {t} missing"));
        let rec_a = a.anchors.as_ref().unwrap();
        assert!(a.lowest_snr_db >= t, "{t}: {}", a.lowest_snr_db);
        assert_eq!(rec_a.n_anchors, rec_a.anchors.len());
        assert!(
            a.act_peak_bytes + activation >= rec.act_peak_bytes + rec_a.bytes_held,
            "{t}: {} vs {} + {}",
            a.act_peak_bytes,
            rec.act_peak_bytes,
            rec_a.bytes_held
        );
    }
}

/// `memory` printed and wrote the ResNet's `reconstructed` rows, copies of its
/// stored rows (the ResNet has no inverse), with nothing marking them as copies. Every row of
/// `measured.csv`, `summary.csv`, `scaling.csv` and the printed table now says how it was
/// obtained (`measurement`: `measured` or `copied-from-stored`); with the reconstructed mode
/// first the ResNet's reconstructed step is measured, and says so.
#[test]
fn memory_marks_resnet_reconstructed_rows_as_copies() {
    let _g = lock();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("memory.toml");
    std::fs::write(
        &cfg,
        "archs = [\"layerwise\", \"resnet\"]\nwidth = 4\ndepth = 2\nbatch = 2\ninput_size = 4\ndepths = [1, 2]\nbatches = [2, 4]\nsizes = []\n",
    )
    .unwrap();
    for (modes, copied) in [
        ("stored,reconstructed", true),
        ("reconstructed,stored", false),
    ] {
        let out = tmp.path().join(modes);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_memory"))
            .args(["--quiet", "--modes", modes, "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&out)
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut rows = 0;
        for file in ["measured.csv", "summary.csv", "scaling.csv"] {
            let mut r = csv::Reader::from_path(out.join(file)).unwrap();
            let header = r.headers().unwrap().clone();
            let col = |name: &str| header.iter().position(|h| h == name).unwrap();
            let (arch, mode, how) = (col("arch"), col("mode"), col("measurement"));
            for rec in r.records() {
                let rec = rec.unwrap();
                let copy = copied && &rec[arch] == "resnet" && &rec[mode] == "reconstructed";
                let want = if copy {
                    "copied-from-stored"
                } else {
                    "measured"
                };
                assert_eq!(&rec[how], want, "{modes}: {file}: {rec:?}");
                rows += usize::from(copy);
            }
        }
        let table = String::from_utf8_lossy(&o.stdout);
        assert!(
            table.contains("| architecture | mode | measurement |"),
            "{table}"
        );
        let resnet_rec: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("| resnet | reconstructed |"))
            .collect();
        assert_eq!(resnet_rec.len(), 1, "{table}");
        if copied {
            // At the comparison point and at every point of the depth and batch sweeps: one
            // summary row, two fits and three measured rows (depths 1, 2 and batch 4).
            assert_eq!(rows, 3 + 1 + 2, "{modes}");
            assert!(
                resnet_rec[0].starts_with("| resnet | reconstructed | copied-from-stored |"),
                "{table}"
            );
            assert!(
                table.contains("copied-from-stored: not measured; resnet has no inverse"),
                "{table}"
            );
        } else {
            assert!(
                resnet_rec[0].starts_with("| resnet | reconstructed | measured |"),
                "{table}"
            );
            assert!(!table.contains("copied-from-stored"), "{table}");
        }
    }
}

/// Anchored peak = reconstructed peak + the anchors' bytes: the anchored forward keeps the
/// input of every anchor until the backward reaches it, and the reconstructed step's peak
/// comes where those are all still held, so the activation peak of the anchored step (the
/// peak without the parameter gradients, [`PeakPoint::act_peak_bytes`]) is the reconstructed
/// one plus the bytes of the anchored inputs (`AnchorRecord::bytes_held`). Layer-wise (depth
/// 8) and hybrid (depth 4), f32, width 16, batch 8 of 16x16, one stage, explicit lists of 1 to
/// 3 anchors spread over the network (and none: bitwise the reconstructed step, the same peak).
///
/// Tolerance: 16 KiB either way, 1/8 of one 128 KiB activation (8 x 16 x 16 x 16 x 4 B): the
/// counting allocator sees every small allocation of the step (tensor headers, the names and
/// bookkeeping of the anchored inputs, candle's per-op scratch), which differ between the two
/// steps by a few KiB (measured: 2.7-9.4 KiB); a missing or extra activation is 8 times the
/// tolerance. One exception, measured and bounded rather than explained here: a hybrid with
/// a whole block anchored (`s0.bK`, not a layer of F or G) peaks a further 0.41-0.44
/// activation above (53-57 KiB, with one or two blocks anchored), so there the excess may
/// reach half an activation more.
#[test]
fn anchored_peak_is_the_reconstructed_peak_plus_the_anchors_bytes() {
    use revstab::measure::anchors::Anchoring;
    let _g = lock();
    let (width, batch, size) = (16, 8, 16);
    let activation = (batch * width * size * size * 4) as f64;
    let tolerance = activation / 8.0;
    let mut failures = Vec::new();
    let cases: [(Arch, usize, &[&[&str]]); 2] = [
        (
            Arch::Layerwise,
            8,
            &[&[], &["3"], &["2", "11"], &["1", "9", "20"]],
        ),
        (
            Arch::Hybrid,
            4,
            &[&[], &["0"], &["1", "5"], &["0", "4", "9"]],
        ),
    ];
    for (arch, depth, lists) in cases {
        let cfg = net(arch, depth, width, size);
        let measure = |mode, anchoring: &Anchoring| {
            revstab::experiments::memory::measure_point_with(
                &cfg,
                batch,
                mode,
                None,
                anchoring,
                DType::F32,
                &Device::Cpu,
                Backend::default(),
                1,
            )
            .expect("measure")
        };
        let rec = measure(Source::Reconstructed, &Anchoring::default());
        for list in lists {
            let anchoring = Anchoring {
                list: Some(list.iter().map(|s| s.to_string()).collect()),
                ..Anchoring::default()
            };
            let a = measure(Source::Anchored, &anchoring);
            let record = a
                .anchors
                .clone()
                .expect("an anchored point records its anchors");
            assert_eq!(record.n_anchors, list.len());
            let extra = a.act_peak_bytes as f64 - rec.act_peak_bytes as f64;
            let held = record.bytes_held as f64;
            eprintln!(
                "{arch} depth {depth} anchors {:?}: reconstructed {} B, anchored {} B, extra {extra} B, anchors hold {held} B ({:.2} activations)",
                record.anchors, rec.act_peak_bytes, a.act_peak_bytes, held / activation
            );
            if list.is_empty() {
                assert_eq!(held, 0.0);
            } else {
                assert!(held >= activation, "{arch} {list:?}: {held} B held");
            }
            let block_anchored = arch == Arch::Hybrid
                && record
                    .anchors
                    .iter()
                    .any(|l| !l.contains(".F.") && !l.contains(".G."));
            let above = if block_anchored {
                activation / 2.0
            } else {
                0.0
            };
            if extra < held - tolerance || extra > held + above + tolerance {
                failures.push(format!(
                    "{arch} depth {depth} {list:?}: anchored peak exceeds the reconstructed one by {extra} B, the anchors hold {held} B (tolerance {tolerance} B, {above} B more with a block anchored)"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
