//! Run-time choice of device and dtype.

use crate::error::{Error, Result};
use candle_core::{DType, Device};

/// Parse a device name (`cpu`, `cuda`, `cuda:N`, `metal`). Asking for a backend this build
/// lacks is an [`Error::Device`] naming the cargo feature to enable.
pub fn parse_device(name: &str) -> Result<Device> {
    let lower = name.trim().to_ascii_lowercase();
    let (kind, ordinal) = match lower.split_once(':') {
        Some((k, o)) => {
            let ordinal = o.parse::<usize>().map_err(|_| Error::Unknown {
                kind: "device ordinal",
                got: o.to_string(),
                expected: "a non-negative integer (e.g. cuda:0)".into(),
            })?;
            (k.to_string(), ordinal)
        }
        None => (lower.clone(), 0),
    };
    match kind.as_str() {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !cfg!(feature = "cuda") {
                return Err(Error::Device {
                    requested: name.into(),
                    reason: "this build has no CUDA support; rebuild with `--features cuda`".into(),
                });
            }
            Device::new_cuda(ordinal).map_err(|e| Error::Device {
                requested: name.into(),
                reason: e.to_string(),
            })
        }
        "metal" => {
            if !cfg!(feature = "metal") {
                return Err(Error::Device {
                    requested: name.into(),
                    reason: "this build has no Metal support; rebuild with `--features metal`"
                        .into(),
                });
            }
            Device::new_metal(ordinal).map_err(|e| Error::Device {
                requested: name.into(),
                reason: e.to_string(),
            })
        }
        _ => Err(Error::Unknown {
            kind: "device",
            got: name.into(),
            expected: "cpu, cuda[:N], metal[:N]".into(),
        }),
    }
}

/// Short name of a device for result files (`cpu`, `cuda:0`, `metal:0`).
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Parse a dtype name: `f16`, `bf16`, `f32`, `f64`.
pub fn parse_dtype(name: &str) -> Result<DType> {
    match name.trim().to_ascii_lowercase().as_str() {
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        "f32" => Ok(DType::F32),
        "f64" => Ok(DType::F64),
        _ => Err(Error::Unknown {
            kind: "dtype",
            got: name.into(),
            expected: "f16, bf16, f32, f64".into(),
        }),
    }
}

/// Name of a dtype as accepted by [`parse_dtype`].
pub fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        DType::F64 => "f64",
        _ => "other",
    }
}

/// The dtype in which statistics and convolutions of `dtype` tensors are computed:
/// f32 for the half types, the dtype itself otherwise.
pub fn compute_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    }
}

/// Fix the CPU thread count that candle reads on every matmul.
///
/// candle 0.11's `get_num_threads()` is called by every CPU matmul and, when the environment
/// variable `RAYON_NUM_THREADS` is unset, parses `/proc/cpuinfo` each time (about a third of the
/// run time of a small network's step, measured with perf). This sets `RAYON_NUM_THREADS` once,
/// to `std::thread::available_parallelism()`, unless the user set it. Called by
/// [`crate::layers::ParamStore::new`], so every network and layer gets it; harmless to call
/// again.
///
/// On glibc it also keeps freed heap memory for reuse ([`keep_freed_memory`]).
pub fn init_cpu_threads() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        keep_freed_memory();
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            let n = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            // Rust's std serialises environment access; candle reads it through std::env.
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        }
    });
}

/// Make glibc's `malloc` keep the memory of freed tensors for the next ones instead of
/// returning it to the kernel: activations of a few MB are above its default (dynamic) mmap
/// threshold, so every such tensor was a fresh `mmap`, page-faulted and zeroed by the kernel, then
/// `munmap`ed (page faults, `clear_page` and cgroup charging were about 12% of a training step
/// under `perf`). Sets `M_MMAP_THRESHOLD` to 32 MiB (glibc's maximum), `M_TRIM_THRESHOLD` to
/// 1 GiB and `M_TOP_PAD` to 64 MiB. The process then holds on to its peak heap until exit; the
/// counting allocator ([`crate::measure::alloc`]) counts requested bytes and is unaffected. A
/// no-op on other C libraries.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before heavy allocation.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for name in ["f16", "bf16", "f32", "f64"] {
            assert_eq!(dtype_name(parse_dtype(name).unwrap()), name);
        }
        assert!(matches!(parse_dtype("f8"), Err(Error::Unknown { .. })));
        assert!(matches!(parse_device("cpu"), Ok(Device::Cpu)));
        assert!(matches!(parse_device("tpu"), Err(Error::Unknown { .. })));
        assert!(matches!(parse_device("cuda:x"), Err(Error::Unknown { .. })));
    }

    #[test]
    fn a_backend_missing_from_the_build_is_a_clear_error() {
        if !cfg!(feature = "cuda") {
            let e = parse_device("cuda").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
        if !cfg!(feature = "metal") {
            let e = parse_device("metal").unwrap_err().to_string();
            assert!(e.contains("--features metal"), "{e}");
        }
    }
}
