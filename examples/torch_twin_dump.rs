//! Reference files for `scripts/pytorch_paper_step.py --check DIR`: the bench's network
//! (`BenchConfig::net_config` with width 32, pools c,c,b, 32x32 inputs, seed 0) at one depth,
//! its initial weights, the bench's input batch, and what revstab's stored-mode training step
//! computes on it.
//!
//! `cargo run --release --example torch_twin_dump -- ARCH DEPTH DIR [DTYPE]`
//!
//! DTYPE `f32` (the bench's, default) or `f64` (the same network in f64: its gradients can be
//! compared to the twin's in f64 without the f32 rounding of ill-conditioned sums).
//!
//! Writes into DIR:
//! - `weights.safetensors`: the initial parameters (`revstab::nets::Network::save`);
//! - `io.safetensors`: `x` (32, 3, 32, 32), `labels` (32,) i64, `logits` (32, 10) and
//!   `loss` (1,) of the first step (stored mode), `grad.NAME` for every parameter (that
//!   step's gradients), `logits2`/`loss2` of the second step and `after2.NAME`, every parameter
//!   after two bench steps (`Trainee::grads`, then `Sgd::step`: lr 0.1, momentum 0.9, weight
//!   decay 5e-4).
//!
//! Prints the parameter count.

use candle_core::{DType, Device, Tensor};
use revstab::experiments::bench::{batch_for, BenchConfig, Trainee};
use revstab::nets::BackwardPlan;
use revstab::nets::{Arch, NetOptions, PoolKind};
use revstab::train::Sgd;
use std::collections::HashMap;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !(4..=5).contains(&args.len()) {
        anyhow::bail!("usage: torch_twin_dump ARCH DEPTH DIR [f32|f64]");
    }
    let dtype = revstab::device::parse_dtype(args.get(4).map_or("f32", |s| s.as_str()))?;
    let arch = Arch::parse(&args[1])?;
    let depth: usize = args[2].parse()?;
    let dir = std::path::PathBuf::from(&args[3]);
    std::fs::create_dir_all(&dir)?;
    let bench = BenchConfig {
        arch,
        width: 32,
        size: 32,
        batch: 32,
        net: NetOptions {
            pools: Some(vec![PoolKind::Channel, PoolKind::Channel, PoolKind::Batch]),
            ..NetOptions::default()
        },
        ..BenchConfig::default()
    };
    let cfg = bench.net_config(depth);
    let device = Device::Cpu;
    let mode = BackwardPlan::STORED;
    let mut t = Trainee::build(
        &cfg,
        mode,
        Sgd::new(bench.momentum, bench.weight_decay),
        dtype,
        &device,
        bench.backend,
    )?;
    t.net.save(&dir.join("weights.safetensors"))?;
    let count: usize = t.params.iter().map(|(_, v)| v.elem_count()).sum();
    println!(
        "revstab {arch} D={depth} {dtype:?}: params {count} ({} tensors)",
        t.params.len()
    );
    let (x, labels) = batch_for(&cfg, bench.batch, bench.seed, dtype, &device)?;
    let mut out: HashMap<String, Tensor> = HashMap::new();
    out.insert("x".into(), x.clone());
    out.insert("labels".into(), labels.to_dtype(DType::I64)?);
    let first = t.grads(&x, &labels)?;
    out.insert("logits".into(), first.logits.clone());
    out.insert(
        "loss".into(),
        Tensor::new(&[first.loss], &device)?.to_dtype(dtype)?,
    );
    for (name, g) in &first.grads {
        out.insert(format!("grad.{name}"), g.clone());
    }
    t.sgd.step(&t.params, &first.grads, bench.lr)?;
    let second = t.grads(&x, &labels)?;
    out.insert("logits2".into(), second.logits.clone());
    out.insert(
        "loss2".into(),
        Tensor::new(&[second.loss], &device)?.to_dtype(dtype)?,
    );
    t.sgd.step(&t.params, &second.grads, bench.lr)?;
    for (name, v) in &t.params {
        out.insert(format!("after2.{name}"), v.as_tensor().clone());
    }
    candle_core::safetensors::save(&out, dir.join("io.safetensors"))?;
    println!("loss {:.6} then {:.6}", first.loss, second.loss);
    Ok(())
}
