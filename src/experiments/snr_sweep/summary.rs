//! The printed summary of a sweep ([`summary_table`]): the lowest-layer SNR per depth and
//! slope, one table per architecture, `eps_i`, width, dtype and seed.

use super::{fmt_f, parse_f, PointResult};
use crate::device::Precision;
use crate::nets::Arch;

/// The printed summary: per (arch, eps_i, width, dtype, seed), a table of the lowest-layer SNR
/// (dB) per depth and slope, with the f64-shadow figure in parentheses.
pub fn summary_table(results: &[PointResult]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut groups: Vec<(Arch, String, usize, Precision, u64)> = Vec::new();
    for r in results {
        let p = &r.point;
        let g = (p.arch, fmt_f(p.eps_i), p.width, p.dtype, p.seed);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for (arch, eps, width, dtype, seed) in groups {
        let rs: Vec<&PointResult> = results
            .iter()
            .filter(|r| {
                r.point.arch == arch
                    && fmt_f(r.point.eps_i) == eps
                    && r.point.width == width
                    && r.point.dtype == dtype
                    && r.point.seed == seed
            })
            .collect();
        let mut slopes: Vec<f64> = Vec::new();
        let mut depths: Vec<usize> = Vec::new();
        for r in &rs {
            if !slopes.contains(&r.point.slope) {
                slopes.push(r.point.slope);
            }
            if !depths.contains(&r.point.depth) {
                depths.push(r.point.depth);
            }
        }
        let what = if arch.has_blocks() {
            "lowest block input"
        } else {
            "lowest-layer input"
        };
        let _ = writeln!(s, "\n{arch} ({dtype}, width {width}, eps_i {eps}, seed {seed}): {what} SNR in dB, same-dtype reference (f64 shadow)");
        let _ = write!(s, "{:>6}", "depth");
        for sl in &slopes {
            let _ = write!(s, " | {:>17}", format!("n = {sl}"));
        }
        let _ = writeln!(s);
        for d in &depths {
            let _ = write!(s, "{d:>6}");
            for sl in &slopes {
                let cell = rs
                    .iter()
                    .find(|r| r.point.depth == *d && r.point.slope == *sl)
                    .map(|r| {
                        let parts: Vec<&str> = r.summary_line.split(',').collect();
                        let lo = parts
                            .get(9)
                            .and_then(|v| parse_f(v).ok())
                            .unwrap_or(f64::NAN);
                        let lo64 = parts
                            .get(10)
                            .and_then(|v| parse_f(v).ok())
                            .unwrap_or(f64::NAN);
                        format!("{:>7} ({:>7})", short(lo), short(lo64))
                    });
                let _ = write!(s, " | {:>17}", cell.unwrap_or_default());
            }
            let _ = writeln!(s);
        }
    }
    s
}

pub(super) fn short(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        fmt_f(v)
    }
}
