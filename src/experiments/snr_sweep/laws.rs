//! `laws.csv` of a sweep: how far each depth law is from the measurement, per architecture and
//! dtype (and `all`), over the top-level entries whose measured SNR is finite and above 0 dB
//! ([`crate::measure::law::error_stats`]: median and max |predicted - measured|, dB; a
//! prediction that is not finite where the measurement is counts as an infinite error). A law
//! with no prediction at all (a sweep run without the depth law) has no row.

use super::{PointResult, TRACE_HEADER};
use crate::measure::law::{error_stats, LAWS};
use std::collections::BTreeSet;

/// Header of `laws.csv`.
pub const LAWS_HEADER: &str = "arch,dtype,law,entries,median_abs_error_db,max_abs_error_db";

/// The text of `laws.csv` for `results` (module doc).
pub fn laws_table(results: &[PointResult]) -> String {
    let header: Vec<&str> = TRACE_HEADER.split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or(0);
    let (arch, dtype, role, snr) = (col("arch"), col("dtype"), col("role"), col("snr_db"));
    let laws: Vec<usize> = LAWS.iter().map(|(c, _)| col(c)).collect();
    let rows: Vec<Vec<&str>> = results
        .iter()
        .flat_map(|r| r.trace_lines.iter())
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() == header.len() && f[role] != "hidden")
        .collect();
    let value = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
    let mut archs: BTreeSet<&str> = rows.iter().map(|f| f[arch]).collect();
    let mut dtypes: BTreeSet<&str> = rows.iter().map(|f| f[dtype]).collect();
    archs.insert("all");
    dtypes.insert("all");
    let mut text = format!("{LAWS_HEADER}\n");
    for a in &archs {
        for d in &dtypes {
            for ((name, _), &c) in LAWS.iter().zip(&laws) {
                let pairs: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|f| (*a == "all" || f[arch] == *a) && (*d == "all" || f[dtype] == *d))
                    .map(|f| (value(f[snr]), value(f[c])))
                    .collect();
                // A sweep without the depth law has no prediction to score.
                if pairs.iter().all(|(_, p)| p.is_nan()) {
                    continue;
                }
                let pairs = pairs.into_iter();
                if let Some((n, median, max)) = error_stats(pairs) {
                    text.push_str(&format!(
                        "{a},{d},{name},{n},{},{}\n",
                        crate::results::text::fmt_f(median),
                        crate::results::text::fmt_f(max)
                    ));
                }
            }
        }
    }
    text
}
