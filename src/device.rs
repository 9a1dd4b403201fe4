//! Run-time choice of device and dtype, what a device can compute, and the checks that stay on
//! the device until read.
//!
//! ## Host round trips on a GPU
//! On the CPU a check reads its tensor directly (nothing crosses a bus). On any other device a
//! whole-tensor copy to the host per check would stall every step, so there the checks are
//! device-side reductions ([`non_finite_count`], and the batch norm's zero-scale count) whose
//! scalar verdicts are queued by [`defer_check`] and read together, in one transfer, by
//! [`with_deferred_checks`]. [`crate::nets::Network::step`] runs inside it and reads the checks
//! with the loss (and the gradient norm, when asked): one host read per training step. A failed
//! check then surfaces at the end of the step that made it, with the same error the CPU raises
//! at once.

use crate::backend::Backend;
use crate::error::{Error, Result};
pub use crate::precision::Precision;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

/// Where a network runs, as configs and flags name it: `cpu`, `cuda`, `cuda:N`, `metal`,
/// `metal:N` ([`FromStr`], trimmed and case-insensitive; `cpu:N` reads as `cpu`, as it always
/// did).
///
/// Conventions: the GPU variants keep whether an ordinal was written (`None`: the bare name,
/// ordinal 0), because configs are hashed into cache keys and written into result files, so
/// [`fmt::Display`] and serde give back the name as written (`cuda` stays `cuda`, `cuda:1` stays
/// `cuda:1`), lowercase. Only these canonical spellings keep the text (and so the cache key)
/// they had when configs held strings: `CPU`, ` cuda`, `cuda:01` or `cpu:0` are written back as
/// `cpu`, `cuda`, `cuda:1`, `cpu`, so results cached under such a spelling are recomputed once.
/// Parsing a name checks its spelling only; [`DeviceSpec::open`] starts the device and fails
/// when the build or the machine lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    /// The CPU, the default.
    #[default]
    Cpu,
    /// A CUDA GPU: its ordinal as written (`None`: `cuda`, GPU 0).
    Cuda(Option<usize>),
    /// A Metal GPU: its ordinal as written (`None`: `metal`, GPU 0).
    Metal(Option<usize>),
}

impl DeviceSpec {
    /// Whether this is the CPU.
    pub fn is_cpu(self) -> bool {
        self == DeviceSpec::Cpu
    }

    /// The GPU ordinal (0 for the bare name and for the CPU).
    pub fn ordinal(self) -> usize {
        match self {
            DeviceSpec::Cpu => 0,
            DeviceSpec::Cuda(o) | DeviceSpec::Metal(o) => o.unwrap_or(0),
        }
    }

    /// Open the device. Asking for a backend this build lacks is an [`Error::Device`] naming
    /// the cargo feature to enable.
    ///
    /// A GPU is opened once per process and ordinal: later calls return the same [`Device`]
    /// (candle gives every opened GPU device its own id, and refuses to combine tensors of two);
    /// `cuda` and `cuda:0` are the same GPU.
    pub fn open(self) -> Result<Device> {
        type Opened = Vec<((bool, usize), Device)>;
        static OPENED: std::sync::Mutex<Opened> = std::sync::Mutex::new(Vec::new());
        let key = match self {
            DeviceSpec::Cpu => return Ok(Device::Cpu),
            DeviceSpec::Cuda(_) => (true, self.ordinal()),
            DeviceSpec::Metal(_) => (false, self.ordinal()),
        };
        let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, device)) = opened.iter().find(|(k, _)| *k == key) {
            return Ok(device.clone());
        }
        let device = self.start()?;
        opened.push((key, device.clone()));
        Ok(device)
    }

    /// Start a GPU (not cached).
    fn start(self) -> Result<Device> {
        type Open = fn(usize) -> candle_core::Result<Device>;
        let (built, label, feature, open): (bool, &str, &str, Open) = match self {
            DeviceSpec::Cpu => return Ok(Device::Cpu),
            DeviceSpec::Cuda(_) => (cfg!(feature = "cuda"), "CUDA", "cuda", Device::new_cuda),
            DeviceSpec::Metal(_) => (cfg!(feature = "metal"), "Metal", "metal", Device::new_metal),
        };
        let requested = self.to_string();
        if !built {
            return Err(Error::Device {
                requested,
                reason: format!(
                    "this build has no {label} support; rebuild with `--features {feature}`"
                ),
            });
        }
        open(self.ordinal()).map_err(|e| Error::Device {
            requested,
            reason: e.to_string(),
        })
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            DeviceSpec::Cpu => "cpu".to_string(),
            DeviceSpec::Cuda(None) => "cuda".to_string(),
            DeviceSpec::Cuda(Some(n)) => format!("cuda:{n}"),
            DeviceSpec::Metal(None) => "metal".to_string(),
            DeviceSpec::Metal(Some(n)) => format!("metal:{n}"),
        };
        f.pad(&name)
    }
}

impl FromStr for DeviceSpec {
    type Err = Error;

    /// Parse `cpu`, `cuda[:N]` or `metal[:N]` (trimmed, case-insensitive). A bad ordinal is
    /// [`Error::Unknown`] of kind `device ordinal`, any other name of kind `device`.
    fn from_str(name: &str) -> Result<DeviceSpec> {
        let lower = name.trim().to_ascii_lowercase();
        let (kind, ordinal) = match lower.split_once(':') {
            Some((k, o)) => {
                let ordinal = o.parse::<usize>().map_err(|_| Error::Unknown {
                    kind: "device ordinal",
                    got: o.to_string(),
                    expected: "a non-negative integer (e.g. cuda:0)".into(),
                })?;
                (k, Some(ordinal))
            }
            None => (lower.as_str(), None),
        };
        match kind {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(ordinal)),
            "metal" => Ok(DeviceSpec::Metal(ordinal)),
            _ => Err(Error::Unknown {
                kind: "device",
                got: name.into(),
                expected: "cpu, cuda[:N], metal[:N]".into(),
            }),
        }
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<DeviceSpec, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Parse a device name and open it ([`DeviceSpec`], [`DeviceSpec::open`]): for names that
/// arrive as text outside a config (examples, tests).
pub fn parse_device(name: &str) -> Result<Device> {
    name.parse::<DeviceSpec>()?.open()
}

/// Short name of a device for result files (`cpu`, `cuda:0`, `metal:0`).
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Whether `device` computes in f64: every device but Metal (Apple GPUs have no f64).
pub fn has_f64(device: &Device) -> bool {
    !device.is_metal()
}

/// The device of an f64 computation (the f64 shadow of a network, [`crate::nets::Network::f64_shadow`])
/// for a network on `device`: `device` itself when `device_has_f64`, else the CPU. Callers pass
/// [`has_f64`]; tests pass `false` to take the CPU path on a machine without such a device.
pub fn f64_device(device: &Device, device_has_f64: bool) -> Device {
    if device_has_f64 {
        device.clone()
    } else {
        Device::Cpu
    }
}

/// The backend that actually computed a network's layers on `device`, as result files record it:
/// [`Backend::Kernels`] computes CPU tensors only ([`Backend::applies`]), so on any other device
/// candle's ops ran (`candle`); on the CPU, the configured backend.
pub fn backend_that_ran(backend: Backend, device: &Device) -> &'static str {
    if device.is_cpu() {
        backend.as_str()
    } else {
        Backend::Candle.as_str()
    }
}

/// What a result file records about the device: its name ([`device_name`]), its kind (`cpu`,
/// `cuda`, `metal`), whether it has f64, and the backend that ran ([`backend_that_ran`]).
pub fn device_json(device: &Device, backend: Backend) -> serde_json::Value {
    let kind = match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu",
        candle_core::DeviceLocation::Cuda { .. } => "cuda",
        candle_core::DeviceLocation::Metal { .. } => "metal",
    };
    serde_json::json!({
        "name": device_name(device),
        "kind": kind,
        "has_f64": has_f64(device),
        "backend_that_ran": backend_that_ran(backend, device),
    })
}

/// [`device_json`] of the device `spec` for a result file; a device that does not open
/// (results written without it) gives its name alone.
pub fn device_record(spec: DeviceSpec, backend: Backend) -> serde_json::Value {
    match spec.open() {
        Ok(device) => device_json(&device, backend),
        Err(_) => serde_json::json!({ "name": spec.to_string() }),
    }
}

/// Number of NaN and inf values of `t`, as a scalar `f32` tensor on `t`'s device: a device-side
/// reduction, `sum(d != d)` with `d = t - t` (NaN exactly where `t` is NaN or +-inf, 0
/// elsewhere). Exact up to 2^24 non-finite values. Nothing is copied to the host.
pub fn non_finite_count(t: &Tensor) -> Result<Tensor> {
    #[allow(clippy::eq_op)] // deliberate: `t - t` is NaN exactly where `t` is not finite
    let d = (t - t)?;
    Ok(d.ne(&d)?.to_dtype(DType::F32)?.sum_all()?)
}

/// A check whose verdict is still on the device: `count` (scalar, any float dtype) is the number
/// of offending values, `error` builds the error when it is not 0 (it may read tensors: it only
/// runs on failure).
struct PendingCheck {
    count: Tensor,
    error: Box<dyn FnOnce(usize) -> Error>,
}

thread_local! {
    /// The checks of the innermost [`with_deferred_checks`] on this thread; `None` outside.
    static PENDING: RefCell<Option<Vec<PendingCheck>>> = const { RefCell::new(None) };
}

/// Queue a device-side check for the enclosing [`with_deferred_checks`]; without one, read its
/// count now (one scalar, not the tensor) and fail at once. `count` is a scalar tensor (the
/// number of offending values); `error(count)` builds the error.
pub fn defer_check(count: Tensor, error: impl FnOnce(usize) -> Error + 'static) -> Result<()> {
    let check = PendingCheck {
        count,
        error: Box::new(error),
    };
    let unqueued = PENDING.with(|p| match p.borrow_mut().as_mut() {
        Some(queue) => {
            queue.push(check);
            None
        }
        None => Some(check),
    });
    match unqueued {
        None => Ok(()),
        Some(check) => {
            let n = check.count.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if n != 0.0 {
                Err((check.error)(n as usize))
            } else {
                Ok(())
            }
        }
    }
}

/// Run `f` with the device-side checks it queues ([`defer_check`]) held back, then read their
/// counts and `reads(&value)` (scalar tensors, e.g. the loss) in one transfer: a host round trip
/// of a few numbers, once. The first failed check (in queue order) is the error; otherwise the
/// values of `reads`, in order, in f64 (computed in f64 where the device has it, else f32).
/// When `f` itself fails, a failed check queued before is still the error (the cause: a NaN
/// input, say, rather than what it broke later). Nested calls each read their own checks.
pub fn with_deferred_checks<T>(
    device: &Device,
    f: impl FnOnce() -> Result<T>,
    reads: impl FnOnce(&T) -> Result<Vec<Tensor>>,
) -> Result<(T, Vec<f64>)> {
    let outer = PENDING.with(|p| p.borrow_mut().replace(Vec::new()));
    let result = f();
    let queued = PENDING
        .with(|p| std::mem::replace(&mut *p.borrow_mut(), outer))
        .unwrap_or_default();
    let value = match result {
        Ok(value) => value,
        Err(e) => {
            return Err(match read_scalars(device, queued, Vec::new()) {
                Err(check) => check,
                Ok(_) => e,
            })
        }
    };
    let wanted = reads(&value)?;
    Ok((value, read_scalars(device, queued, wanted)?))
}

/// Read the counts of `queued` and the scalars `wanted` in one transfer; the first failed check
/// is the error, else the values of `wanted`.
fn read_scalars(
    device: &Device,
    queued: Vec<PendingCheck>,
    wanted: Vec<Tensor>,
) -> Result<Vec<f64>> {
    let dtype = if has_f64(device) {
        DType::F64
    } else {
        DType::F32
    };
    let mut scalars = Vec::with_capacity(queued.len() + wanted.len());
    for t in queued.iter().map(|c| &c.count).chain(&wanted) {
        scalars.push(t.to_device(device)?.to_dtype(dtype)?.reshape(1)?);
    }
    if scalars.is_empty() {
        return Ok(Vec::new());
    }
    let all = Tensor::cat(&scalars, 0)?
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?;
    let (counts, values) = all.split_at(queued.len());
    for (check, &n) in queued.into_iter().zip(counts) {
        if n != 0.0 {
            return Err((check.error)(n as usize));
        }
    }
    Ok(values.to_vec())
}

/// Parse a dtype name ([`Precision`]'s names) into its candle dtype: for names that arrive as
/// text outside a config (examples, tests).
pub fn parse_dtype(name: &str) -> Result<DType> {
    Ok(name.parse::<Precision>()?.dtype())
}

/// Name of a dtype as [`Precision`] writes it (`other` for a dtype that is not one).
pub fn dtype_name(dtype: DType) -> &'static str {
    Precision::from_dtype(dtype).map_or("other", Precision::name)
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
    fn non_finite_count_is_a_device_side_reduction() {
        let t = Tensor::new(
            &[
                1.0f32,
                f32::NAN,
                f32::INFINITY,
                -2.0,
                f32::NEG_INFINITY,
                0.0,
            ],
            &Device::Cpu,
        )
        .unwrap();
        let count = non_finite_count(&t).unwrap();
        assert_eq!(count.dims(), &[] as &[usize]);
        assert_eq!(count.to_scalar::<f32>().unwrap(), 3.0);
        let half = t.to_dtype(DType::F16).unwrap();
        assert_eq!(
            non_finite_count(&half).unwrap().to_scalar::<f32>().unwrap(),
            3.0
        );
        let fine = Tensor::new(&[f32::MAX, -f32::MAX, 0.0], &Device::Cpu).unwrap();
        assert_eq!(
            non_finite_count(&fine).unwrap().to_scalar::<f32>().unwrap(),
            0.0
        );
    }

    /// Checks queued inside `with_deferred_checks` do not stop the work; the first failing one
    /// is the error after it, in queue order; passing checks give the values read with them.
    #[test]
    fn deferred_checks_are_read_once_after_the_work() {
        let cpu = Device::Cpu;
        let scalar = |v: f32| Tensor::new(v, &cpu).unwrap();
        let mut ran_after_failure = false;
        let err = with_deferred_checks(
            &cpu,
            || {
                defer_check(scalar(0.0), |_| Error::internal("test", "first"))?;
                defer_check(scalar(2.0), |n| Error::NonFinite {
                    context: "second".into(),
                    count: n,
                })?;
                defer_check(scalar(1.0), |_| Error::internal("test", "third"))?;
                ran_after_failure = true;
                Ok(())
            },
            |_| Ok(vec![scalar(7.5)]),
        )
        .unwrap_err();
        assert!(ran_after_failure);
        assert!(
            matches!(&err, Error::NonFinite { context, count: 2 } if context == "second"),
            "{err}"
        );
        let (value, reads) = with_deferred_checks(
            &cpu,
            || {
                defer_check(scalar(0.0), |_| Error::internal("test", "never"))?;
                Ok(41)
            },
            |v| Ok(vec![scalar(*v as f32 + 1.0), scalar(0.25)]),
        )
        .unwrap();
        assert_eq!((value, reads), (41, vec![42.0, 0.25]));
        // Work that fails after a failed check reports the check (the cause).
        let err = with_deferred_checks(
            &cpu,
            || -> Result<()> {
                defer_check(scalar(3.0), |n| Error::NonFinite {
                    context: "input".into(),
                    count: n,
                })?;
                Err(Error::internal("test", "a later symptom"))
            },
            |_| Ok(Vec::new()),
        )
        .unwrap_err();
        assert!(matches!(err, Error::NonFinite { count: 3, .. }), "{err}");
        let err = with_deferred_checks(
            &cpu,
            || -> Result<()> {
                defer_check(scalar(0.0), |_| Error::internal("test", "never"))?;
                Err(Error::internal("test", "the work's own error"))
            },
            |_| Ok(Vec::new()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("the work's own error"), "{err}");
        // Outside a deferred scope a check is read at once.
        assert!(matches!(
            defer_check(scalar(1.0), |_| Error::internal("test", "now")),
            Err(Error::Internal { .. })
        ));
        assert!(defer_check(scalar(0.0), |_| Error::internal("test", "never")).is_ok());
    }

    /// The f64 shadow's device: the CPU whenever the device lacks f64 (the stand-in flag), the
    /// device itself otherwise; result files name the backend that actually ran.
    #[test]
    fn f64_work_goes_to_the_cpu_when_the_device_lacks_f64() {
        assert!(has_f64(&Device::Cpu));
        assert!(f64_device(&Device::Cpu, false).is_cpu());
        assert!(f64_device(&Device::Cpu, true).is_cpu());
        #[cfg(feature = "cuda")]
        if let Ok(gpu) = Device::new_cuda(0) {
            assert!(has_f64(&gpu));
            assert!(f64_device(&gpu, true).is_cuda());
            assert!(f64_device(&gpu, false).is_cpu());
            assert_eq!(backend_that_ran(Backend::Kernels, &gpu), "candle");
        }
        #[cfg(feature = "metal")]
        if let Ok(gpu) = Device::new_metal(0) {
            assert!(!has_f64(&gpu));
            assert!(f64_device(&gpu, has_f64(&gpu)).is_cpu());
        }
        assert_eq!(backend_that_ran(Backend::Kernels, &Device::Cpu), "kernels");
        assert_eq!(backend_that_ran(Backend::Candle, &Device::Cpu), "candle");
        let json = device_json(&Device::Cpu, Backend::Kernels);
        assert_eq!(json["name"], "cpu");
        assert_eq!(json["kind"], "cpu");
        assert_eq!(json["backend_that_ran"], "kernels");
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
