//! # revstab
//!
//! A workbench for the numerical trustworthiness of reversible neural networks, built on
//! [candle](https://github.com/huggingface/candle). Reversible networks (RevNet, i-RevNet,
//! layer-wise invertible networks) save training memory by *reconstructing* activations during
//! backpropagation instead of storing them; floating point makes those reconstructions noisy and
//! deep chains of inverses amplify the noise. revstab measures where, by how much, and at what
//! cost in accuracy, memory and time.
//!
//! ## Conventions (used everywhere in the crate)
//! - Tensors are NCHW.
//! - Leaky-ReLU slope: `y = x` for `x > 0`, `y = n x` otherwise, with `n > 0` (the usual slope;
//!   smaller `n` is more nonlinear). The paper's eq. 28 prints `x / n`; alpha is symmetric in
//!   `n <-> 1/n`, so the two conventions give the same alpha.
//! - Batch norm: `y = g~ (x - mu_B) / s + beta`, `s = sqrt(var_B + eps)` with the *biased* batch
//!   variance in both directions, `g~ = |gamma + eps_i|` (paper eq. 27) for the invertible
//!   batch norm; `eps` defaults to `1e-5`.
//! - SNR of a reconstruction `z_hat` of `z`: `sum(z^2) / sum((z_hat - z)^2)`, computed in f64
//!   whatever the tensors' dtype; exact reconstruction is `+inf`.
//! - alpha (eq. 18): `snr_in / snr_out` when a layer's inverse is fed `y + e_y`.
//! - Storage dtype vs compute dtype: activations are stored in the network's dtype
//!   (`f16`, `bf16`, `f32`, `f64`); batch statistics are computed in at least f32, and
//!   convolutions of `bf16` tensors run in f32 and are rounded back to `bf16` (candle's CPU
//!   conv2d does not support bf16).
//!
//! ## Backends
//! Which code computes the layers is a value, [`backend::Backend`], chosen when a network is
//! built ([`nets::Network::build_with`]) and recorded in every `run.json`: `kernels` (default:
//! the crate's own CPU kernels, [`backend::cpu`], for `f32`/`f64` CPU tensors, candle's ops
//! elsewhere) or `candle` (candle's ops only). Both give the same results up to rounding.
//!
//! ## Features
//! - default: CPU only, needs nothing but the Rust toolchain.
//! - `cuda`, `metal`: forward to candle's backends; choose the device at run time with
//!   [`device::DeviceSpec`] (every binary's `--device`). Off the CPU the layers run on
//!   candle's ops, a step reads the host once (its checks are device-side counts read with the
//!   loss, see [`device`]), and f64 work (the f64 shadow) moves to the CPU on a device without
//!   f64. `scripts/cuda-check.sh` compiles the `cuda` feature without a GPU (CI runs it).

pub mod alloc;
pub mod backend;
pub mod backprop;
pub mod cli;
pub mod data;
pub mod device;
pub mod dry_run;
pub mod error;
pub mod experiments;
pub mod hash;
pub mod layers;
pub mod limits;
pub mod lock;
pub mod measure;
pub mod nets;
pub mod plot;
pub mod precision;
pub mod provenance;
pub mod results;
pub mod train;
pub mod util;

pub use error::{Error, ErrorKind, Result};
