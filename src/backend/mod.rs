//! Compute backends of the layers: which code computes a layer's forward, inverse and
//! vector-Jacobian product.
//!
//! A [`Backend`] is a value, chosen when a network is built
//! ([`crate::nets::Network::build_with`]) and held by every layer that has a choice; nothing is
//! switched process-wide, so two networks on two backends can run side by side (the tests
//! compare them step for step). Experiments take it from their config (`backend = "candle"`;
//! [`Backend::Kernels`] by default) and record it in every `run.json` ([`Backend::as_str`]).
//!
//! - [`Backend::Kernels`]: the crate's own CPU kernels ([`cpu`]) where they apply
//!   ([`Backend::applies`]: untracked CPU tensors of `f32` or `f64`; the convolutions also take
//!   `f16` and `bf16`, computed in f32 and rounded once, and need stride 1 and a square kernel
//!   of 1, 3 or 5, [`Backend::applies_conv`]), candle's ops everywhere else (other dtypes and
//!   devices, and the tracked passes of the autograd reference).
//! - [`Backend::Candle`]: candle's ops only, and the layers' backward steps written with them:
//!   the code as it was before the kernels (the "before" column of `bench --backend candle`,
//!   and the reference the kernels are checked against).
//!
//! The two give the same results up to rounding (another summation order; FMA contracts a
//! multiply and an add): `tests/suite/kernels_off.rs` holds them to 1e-10 through a whole training
//! step in f64.
//!
//! Across CPUs: the kernels give the same bits on every x86-64 CPU with AVX2 and FMA, whatever
//! its AVX-512 extensions and caches ([`cpu`]); candle's ops need not (its matrix products and
//! convolutions sum through `gemm`, which cuts long reductions by the L1 cache it detects,
//! [`cpu::im2col::gemm_splits_by_cache`]), so results of [`Backend::Candle`] and of the tracked
//! passes may differ in the last bits from one CPU to another.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod cpu;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// Which code computes the layers (see the [module documentation](self)).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The crate's own CPU kernels where they apply, candle's ops elsewhere.
    #[default]
    Kernels,
    /// Candle's ops only.
    Candle,
}

impl Backend {
    /// Both backends.
    pub const ALL: [Backend; 2] = [Backend::Kernels, Backend::Candle];

    /// Name used in configs, on the command line and in result files (`kernels`, `candle`).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Kernels => "kernels",
            Backend::Candle => "candle",
        }
    }

    /// Whether this is the default backend ([`Backend::Kernels`]); configs leave it out of
    /// their serialised form then, so that the keys of results cached before the backend was
    /// a setting stay valid.
    pub fn is_default(&self) -> bool {
        *self == Backend::default()
    }

    /// Whether the own kernels compute an operation on `t` under this backend: the backend is
    /// [`Backend::Kernels`] and `t` is a CPU tensor of `f32` or `f64` ([`cpu::supported`]).
    /// Callers add the operation's own conditions (rank, matching dtypes, untracked tensors).
    pub fn applies(self, t: &Tensor) -> bool {
        self == Backend::Kernels && cpu::supported(t)
    }

    /// Whether the own convolution kernels take input `x` and weight `w` (OIHW) with stride
    /// `stride` under this backend ([`cpu::conv_supported`]).
    pub fn applies_conv(self, x: &Tensor, w: &Tensor, stride: usize) -> bool {
        self == Backend::Kernels && cpu::conv_supported(x, w, stride)
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn only_the_kernels_backend_takes_f32_and_f64_cpu_tensors() {
        let t = |dtype| Tensor::zeros((1, 2, 3, 3), dtype, &Device::Cpu).unwrap();
        for dtype in [DType::F32, DType::F64] {
            assert!(Backend::Kernels.applies(&t(dtype)));
            assert!(!Backend::Candle.applies(&t(dtype)));
        }
        for dtype in [DType::F16, DType::BF16] {
            assert!(!Backend::Kernels.applies(&t(dtype)));
        }
        let w = Tensor::zeros((2, 2, 3, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(Backend::Kernels.applies_conv(&t(DType::F32), &w, 1));
        // Half-precision convolutions run the f32 kernels.
        for dtype in [DType::F16, DType::BF16] {
            let wh = w.to_dtype(dtype).unwrap();
            assert!(Backend::Kernels.applies_conv(&t(dtype), &wh, 1));
            assert!(!Backend::Candle.applies_conv(&t(dtype), &wh, 1));
        }
        assert!(!Backend::Candle.applies_conv(&t(DType::F32), &w, 1));
        assert!(!Backend::Kernels.applies_conv(&t(DType::F32), &w, 2));
    }

    #[test]
    fn names_round_trip_through_serde_and_the_command_line() {
        use clap::ValueEnum;
        for b in Backend::ALL {
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{}\"", b.as_str()));
            assert_eq!(serde_json::from_str::<Backend>(&json).unwrap(), b);
            assert_eq!(Backend::from_str(b.as_str(), false).unwrap(), b);
        }
        assert_eq!(Backend::default(), Backend::Kernels);
    }
}
