//! Small shared helpers: seeded random tensors, atomic file writes, finiteness checks.

use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::io::Write;
use std::path::Path;

/// A deterministic RNG for `seed` and a string `stream` (e.g. a parameter path), so that every
/// parameter and data set is reproducible independently of creation order.
pub fn rng_for(seed: u64, stream: &str) -> ChaCha8Rng {
    // FNV-1a over the stream name, mixed with the seed.
    let h = crate::hash::fnv1a64(stream.as_bytes());
    ChaCha8Rng::seed_from_u64(seed ^ h.rotate_left(17))
}

/// A tensor of i.i.d. `N(mean, std^2)` values drawn in f64 from `rng`, then cast to `dtype`.
pub fn randn(
    rng: &mut impl Rng,
    shape: &[usize],
    mean: f64,
    std: f64,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f64> = (0..n)
        .map(|_| mean + std * rng.sample::<f64, _>(StandardNormal))
        .collect();
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(device)?)
}

/// All values of `t` as f64 (any dtype, any device).
pub fn to_f64_vec(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?
        .flatten_all()?
        .to_device(&Device::Cpu)?
        .to_vec1::<f64>()?)
}

/// Number of non-finite values in `t`.
pub fn count_non_finite(t: &Tensor) -> Result<usize> {
    Ok(to_f64_vec(t)?.iter().filter(|v| !v.is_finite()).count())
}

/// Error if `t` holds NaN or inf ([`Error::NonFinite`] with their number).
///
/// On the CPU the values are read and counted at once. On another device the count is a
/// device-side reduction ([`crate::device::non_finite_count`]) queued with
/// [`crate::device::defer_check`]: inside [`crate::device::with_deferred_checks`] (every
/// [`crate::nets::Network::step`]) it is read with the step's other scalars and the error comes
/// at the end of the step; outside, one scalar is read now.
pub fn ensure_finite(t: &Tensor, context: &str) -> Result<()> {
    if !t.device().is_cpu() {
        let context = context.to_string();
        return crate::device::defer_check(crate::device::non_finite_count(t)?, move |count| {
            Error::NonFinite { context, count }
        });
    }
    let count = count_non_finite(t)?;
    if count > 0 {
        return Err(Error::NonFinite {
            context: context.into(),
            count,
        });
    }
    Ok(())
}

/// Write `bytes` to `path` atomically: a temporary file in the same directory, then rename.
/// A reader (or a run killed mid-write) never sees a half-written file. No fsync: the rename is
/// atomic for processes; durability across power loss is not promised.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file_name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// The git revision of the source tree this binary was built from, fixed at build time
/// ([`crate::provenance::git_revision`]; `-dirty` when tracked files outside `figures/` had
/// uncommitted changes, `unknown` when the source was not a git checkout). Always `Some`; an
/// `Option` for the callers that record it.
pub fn git_revision() -> Option<String> {
    Some(crate::provenance::git_revision())
}

/// `n` and a noun, plural unless `n == 1`: `count(1, "epoch")` is `1 epoch`, `count(3, "epoch")`
/// is `3 epochs`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Median of `v` (mean of the middle two for even lengths; NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => s[n / 2],
        _ => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}
