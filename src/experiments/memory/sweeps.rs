//! Running the experiment: every architecture and mode at its comparison point and along the
//! depth, batch and resolution sweeps, with a least-squares fit along each ([`run_with`],
//! [`run`]), and the points it measures, for `--dry-run` ([`plan`]).

use super::summary::summarize;
use super::{
    measure_point_with, Axis, MemoryConfig, MemoryResults, PeakPoint, ScalingFit, Timings,
};
use crate::device::{device_name, dtype_name};
use crate::error::Result;
use crate::measure::memory::table1;
use crate::nets::{Arch, Source};
use crate::results::fit::{fit_xy, LineFit};
use std::collections::HashMap;
use std::time::Instant;

type Key = (Arch, Source, usize, usize, usize);

/// The sources whose step, on an architecture without an inverse, is its stored step.
fn rebuilds(mode: Source) -> bool {
    matches!(mode, Source::Reconstructed | Source::Anchored)
}

/// Run the experiment: every architecture and mode at the comparison point and along the depth,
/// batch and resolution sweeps. Points run one after the other; nothing else in the process
/// may allocate meanwhile (the counter is process-wide). `progress` is called after each point.
pub fn run_with(cfg: &MemoryConfig, mut progress: impl FnMut(&PeakPoint)) -> Result<MemoryResults> {
    let t0 = Instant::now();
    cfg.validate()?;
    if let Some(n) = cfg.threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        // Fails harmlessly when rayon's global pool already exists.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    let dtype = cfg.dtype.dtype();
    let device = cfg.device.open()?;
    let mut done: HashMap<Key, PeakPoint> = HashMap::new();
    let mut order: Vec<Key> = Vec::new();
    let mut measure =
        |arch: Arch, mode: Source, depth: usize, batch: usize, size: usize| -> Result<PeakPoint> {
            let key = (arch, mode, depth, batch, size);
            if let Some(p) = done.get(&key) {
                return Ok(p.clone());
            }
            // ResNet has no inverse: its reconstructed step is its stored step (Network::step),
            // and it has nothing to anchor.
            if !arch.reconstructable() && rebuilds(mode) {
                if let Some(p) = done.get(&(arch, Source::Stored, depth, batch, size)) {
                    let p = PeakPoint {
                        mode,
                        copied_from_stored: true,
                        ..p.clone()
                    };
                    done.insert(key, p.clone());
                    order.push(key);
                    return Ok(p);
                }
            }
            let p = measure_point_with(
                &cfg.net_config(arch, depth, size),
                batch,
                mode,
                cfg.segment,
                &cfg.anchors,
                dtype,
                &device,
                cfg.backend,
                cfg.repeats,
            )?;
            progress(&p);
            done.insert(key, p.clone());
            order.push(key);
            Ok(p)
        };
    let tm = Instant::now();
    let mut scaling = Vec::new();
    for &arch in &cfg.archs {
        let depth = cfg.depth_for(arch);
        for &mode in &cfg.modes {
            measure(arch, mode, depth, cfg.batch, cfg.input_size)?;
            let sweeps: [(Axis, &[usize]); 3] = [
                (Axis::Depth, &cfg.depths),
                (Axis::Batch, &cfg.batches),
                (Axis::Size, &cfg.sizes),
            ];
            for (axis, values) in sweeps {
                let mut pts = Vec::new();
                for &v in values {
                    let p = match axis {
                        Axis::Depth => measure(arch, mode, v, cfg.batch, cfg.input_size)?,
                        Axis::Batch => measure(arch, mode, depth, v, cfg.input_size)?,
                        Axis::Size => measure(arch, mode, depth, cfg.batch, v)?,
                    };
                    pts.push(p);
                }
                let x: Vec<f64> = pts
                    .iter()
                    .map(|p| match axis {
                        Axis::Depth => p.depth as f64,
                        _ => (p.batch * p.size * p.size) as f64,
                    })
                    .collect();
                let y: Vec<f64> = pts.iter().map(|p| p.peak_bytes as f64).collect();
                let ya: Vec<f64> = pts.iter().map(|p| p.act_peak_bytes as f64).collect();
                if let (Some(fit), Some(act)) = (fit_xy(&x, &y), fit_xy(&x, &ya)) {
                    let LineFit {
                        slope,
                        intercept,
                        r2,
                    } = fit;
                    let (act_slope, act_intercept, act_r2) = (act.slope, act.intercept, act.r2);
                    scaling.push(ScalingFit {
                        arch,
                        mode,
                        axis,
                        unit: if axis == Axis::Depth {
                            "bytes/block".into()
                        } else {
                            "bytes/pixel".into()
                        },
                        values: values.to_vec(),
                        slope,
                        intercept,
                        r2,
                        act_slope,
                        act_intercept,
                        act_r2,
                        ratio_last_first: y[y.len() - 1] / y[0],
                        copied_from_stored: pts.iter().all(|p| p.copied_from_stored),
                    });
                }
            }
        }
    }
    let measure_s = tm.elapsed().as_secs_f64();
    let points: Vec<PeakPoint> = order.iter().map(|k| done[k].clone()).collect();
    let t1 = table1();
    let summary = summarize(cfg, &points, &scaling, &t1);
    Ok(MemoryResults {
        config: cfg.clone(),
        crate_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: crate::util::git_revision(),
        device: device_name(&device),
        backend: cfg.backend.as_str().into(),
        dtype: dtype_name(dtype).into(),
        threads: candle_core::utils::get_num_threads(),
        table1: t1,
        timings: Timings {
            total_s: t0.elapsed().as_secs_f64(),
            measure_s,
            points: points.len(),
        },
        points,
        scaling,
        summary,
    })
}

/// The points [`run_with`] measures, in its order: `(arch, mode, depth, batch, size)`, each
/// once (a point met again in another sweep is reused; ResNet's reconstructed step is its
/// stored one and is not measured again when that was measured). For `--dry-run`.
pub fn plan(cfg: &MemoryConfig) -> Vec<(Arch, Source, usize, usize, usize)> {
    let mut order: Vec<Key> = Vec::new();
    let mut add = |k: Key| {
        let (arch, mode, depth, batch, size) = k;
        let copied = !arch.reconstructable()
            && rebuilds(mode)
            && order.contains(&(arch, Source::Stored, depth, batch, size));
        if !order.contains(&k) && !copied {
            order.push(k);
        }
    };
    for &arch in &cfg.archs {
        let depth = cfg.depth_for(arch);
        for &mode in &cfg.modes {
            add((arch, mode, depth, cfg.batch, cfg.input_size));
            for &v in &cfg.depths {
                add((arch, mode, v, cfg.batch, cfg.input_size));
            }
            for &v in &cfg.batches {
                add((arch, mode, depth, v, cfg.input_size));
            }
            for &v in &cfg.sizes {
                add((arch, mode, depth, cfg.batch, v));
            }
        }
    }
    order
}

/// [`run_with`] without progress reports.
pub fn run(cfg: &MemoryConfig) -> Result<MemoryResults> {
    run_with(cfg, |_| {})
}
