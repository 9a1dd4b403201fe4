//! Median time of one forward + backward (parameter gradients included, no update) of every
//! architecture with stored and with reconstructed activations, and their ratio: the issue 7
//! targets "reconstructed at most 1.35x stored (RevNet, Algorithm 1: see `bench`) and hybrid at
//! most 1.7x". One stage (no pooling), depth 8, width 32, batch 32 of 32x32 unit-Gaussian images,
//! f32, seed 0, slope 0.2, median of 5 steps after one warm-up, modes interleaved; the layers on
//! the default backend (`kernels`) or the one named (`candle`: candle's ops only).
//!
//! `cargo run --release --example step_time [-- DEPTH [BACKEND]]`

use candle_core::{DType, Device, Tensor};
use revstab::backend::Backend;
use revstab::nets::{Arch, NetConfig, Network, Source, StepOptions};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    revstab::device::init_cpu_threads();
    let depth: usize = match std::env::args().nth(1) {
        Some(s) => s.parse()?,
        None => 8,
    };
    let backend = match std::env::args().nth(2) {
        Some(s) => <Backend as clap::ValueEnum>::from_str(&s, true)
            .map_err(|e| anyhow::anyhow!("backend `{s}`: {e}"))?,
        None => Backend::default(),
    };
    println!("backend {backend}");
    let (batch, size, width) = (32, 32, 32);
    let opts = StepOptions {
        grads: true,
        ..Default::default()
    };
    println!("arch        depth  stored s/step  reconstructed s/step  ratio");
    for arch in Arch::ALL {
        let mut cfg = NetConfig::new(arch);
        cfg.net.pools = Some(Vec::new());
        cfg.depth = depth;
        cfg.width = width;
        cfg.input_size = size;
        let net = Network::build_with(&cfg, DType::F32, &Device::Cpu, backend)?;
        let mut rng = revstab::util::rng_for(0, "step-time");
        let x = revstab::util::randn(
            &mut rng,
            &[batch, cfg.net.in_channels, size, size],
            0.0,
            1.0,
            DType::F32,
            &Device::Cpu,
        )?;
        let y = Tensor::new(
            (0..batch as u32)
                .map(|i| i % cfg.classes as u32)
                .collect::<Vec<_>>(),
            &Device::Cpu,
        )?;
        let modes: &[Source] = if arch.reconstructable() {
            &[Source::Stored, Source::Reconstructed]
        } else {
            &[Source::Stored]
        };
        let mut times = vec![Vec::new(); modes.len()];
        for round in 0..6 {
            for (i, &mode) in modes.iter().enumerate() {
                let t0 = Instant::now();
                drop(net.step(&x, &y, mode, opts)?);
                if round > 0 {
                    times[i].push(t0.elapsed().as_secs_f64());
                }
            }
        }
        let meds: Vec<f64> = times.into_iter().map(median).collect();
        match meds.as_slice() {
            [s, r] => println!(
                "{:<10} {depth:>6}  {s:>13.4}  {r:>20.4}  {:>5.2}",
                arch.as_str(),
                r / s
            ),
            [s] => println!(
                "{:<10} {depth:>6}  {s:>13.4}  {:>20}  {:>5}",
                arch.as_str(),
                "-",
                "-"
            ),
            _ => unreachable!(),
        }
    }
    Ok(())
}
