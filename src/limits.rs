//! Input limits checked before a run writes anything (every tool's `validate`): the leaky-ReLU
//! slope range, the sign of the batch-norm `eps_i`, and an up-front memory estimate, so that
//! out-of-range values get a clear message (exit code 2) instead of failing mid-run, a file
//! name too long, or an out-of-memory abort.

use crate::error::{Error, Result};

/// Smallest leaky-ReLU slope `n` accepted.
pub const SLOPE_MIN: f64 = 1e-6;
/// Largest leaky-ReLU slope `n` accepted.
pub const SLOPE_MAX: f64 = 1e6;

/// A slope `n` (convention `y = n x` for `x < 0`) in `[SLOPE_MIN, SLOPE_MAX]`.
///
/// `n <= 0` (or NaN) is not invertible ([`Error::InvalidSlope`]). Outside the range, one
/// inverse multiplies the negative activations by `1/n` or `n` beyond 1e6: the f16 range
/// (65504) is left within a single layer, f32's 24-bit mantissa loses every digit of a
/// unit-scale value within three, and values such as 1e300 or 1e-300 overflow even the f64
/// noise scales and point file names; nothing below 1e-6 or above 1e6 is a meaningful
/// measurement.
pub fn check_slope(n: f64) -> Result<()> {
    if !(n.is_finite() && n > 0.0) {
        return Err(Error::InvalidSlope { slope: n });
    }
    if !(SLOPE_MIN..=SLOPE_MAX).contains(&n) {
        return Err(Error::config(
            "slope",
            format!("a slope in the supported range [{SLOPE_MIN:e}, {SLOPE_MAX:e}] (the inverse scales negative activations by 1/n, which overflows or loses every digit beyond it)"),
            format!("{n:e}"),
        ));
    }
    Ok(())
}

/// The batch-norm reparameterisation `g~ = |gamma + eps_i|` (Hascoet eq. 27) takes `eps_i >= 0`.
///
/// `eps_i` exists to keep `g~` away from 0 for small `gamma`; a negative `eps_i` moves the
/// initial `gamma = 1` toward 0 instead (`eps_i = -1` makes `g~ = 0` in every channel: the
/// forward outputs only `beta`, the network is dead and the inverse divides by zero), so it is
/// rejected, as is a non-finite value.
pub fn check_eps_i(eps_i: f64) -> Result<()> {
    if !(eps_i.is_finite() && eps_i >= 0.0) {
        return Err(Error::config(
            "eps_i",
            "a finite value >= 0 (|gamma + eps_i| lower-bounds the batch-norm scale; a negative eps_i shrinks it toward 0: eps_i = -1 zeroes the initial gamma = 1, a dead network whose inverse divides by zero)",
            eps_i,
        ));
    }
    Ok(())
}

/// A rough upper bound of the bytes one network needs: `depth` units of two 3x3 convolutions
/// of `width` channels (weights, gradients and momentum), and `depth + 2` activations of
/// `batch x width x size x size` values stored for the backward, all at `bytes_per_value`,
/// ignoring the pooling that shrinks later stages (so it overestimates).
pub fn network_bytes_estimate(
    depth: usize,
    width: usize,
    batch: usize,
    size: usize,
    bytes_per_value: usize,
) -> f64 {
    let (d, w, b, s, v) = (
        depth as f64,
        width as f64,
        batch as f64,
        size as f64,
        bytes_per_value as f64,
    );
    let params = d * 2.0 * 9.0 * w * w;
    let activations = (d + 2.0) * b * w * s * s;
    (3.0 * params + activations) * v
}

/// The memory this machine has available (`MemAvailable` of `/proc/meminfo`), when known.
pub fn available_memory_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Error when `estimate` bytes (see [`network_bytes_estimate`]) exceed the memory available
/// (or 1 TiB where that is unknown): `what` names the configuration in the message.
pub fn check_memory(what: &str, estimate: f64) -> Result<()> {
    let available = available_memory_bytes().unwrap_or(1024f64.powi(4));
    if estimate > available {
        let gib = |b: f64| b / 1024f64.powi(3);
        return Err(Error::config(
            what,
            format!(
                "at most the {:.1} GiB of memory available (use a smaller width, depth or batch)",
                gib(available)
            ),
            format!(
                "about {:.1} GiB (weights, gradients, momentum and stored activations)",
                gib(estimate)
            ),
        ));
    }
    Ok(())
}

/// A list of grid values (`what`: its key, as `depths`) in which no value repeats: a repeated
/// value would compute the same point twice and write duplicate rows.
pub fn check_distinct<T: PartialEq + std::fmt::Debug>(what: &str, values: &[T]) -> Result<()> {
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(Error::config(
                format!("`{what}`"),
                "distinct values (each point of the grid once)",
                format!("{v:?} more than once in {values:?}"),
            ));
        }
    }
    Ok(())
}

/// Most threads a tool starts: 16 per logical CPU of this machine, and at least 64. Beyond it
/// the OS refuses threads (or the machine thrashes) long after the run began.
pub fn max_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (16 * cpus).max(64)
}

/// A `--threads` value: `0` (all cores) or `1..=`[`max_threads`], checked before anything runs.
pub fn check_threads(threads: usize) -> Result<()> {
    let max = max_threads();
    if threads > max {
        return Err(Error::config(
            "--threads",
            format!("0 (all cores) or at most {max} (16 per logical CPU of this machine)"),
            threads,
        ));
    }
    Ok(())
}
