//! `--dry-run` of the long tools: the points a run would compute and an estimate of its time,
//! printed without writing anything (no output directory, no lock).
//!
//! Every estimate is measured on the spot: the tool times a few small representative points
//! (the cheapest of each kind) and scales each planned point by a stated cost model. The
//! printed line names the probes, their measured seconds and the model, so a reader can judge
//! it.

/// Lines printed in full up to this count; beyond it, the first [`HEAD`] and a count.
pub const FULL_LIST: usize = 20;
/// Lines shown of a longer list.
pub const HEAD: usize = 10;

/// Print `what` (e.g. "points") as `N <what> would be computed:` and the lines, in full up to
/// [`FULL_LIST`] lines, otherwise the first [`HEAD`] and a count of the rest.
pub fn print_plan(what: &str, lines: &[String]) {
    // "points" / "training runs": one of them is singular.
    let what = match (lines.len(), what.strip_suffix('s')) {
        (1, Some(one)) => one,
        _ => what,
    };
    print_list(&format!("{} {what} would be computed", lines.len()), lines);
}

/// Print `dry run: <title>:` and the lines, shortened as [`print_plan`] does.
pub fn print_list(title: &str, lines: &[String]) {
    println!("dry run: {title}:");
    let shown = if lines.len() <= FULL_LIST {
        lines.len()
    } else {
        HEAD
    };
    for l in &lines[..shown] {
        println!("  {l}");
    }
    if shown < lines.len() {
        println!("  ... and {} more", lines.len() - shown);
    }
}

/// Scale measured probes to a plan. `probes` are `(cost, seconds)` of timed points of one kind
/// (cost in the model's units); each planned point is `(kind index, cost)`. Returns the
/// estimated seconds of the plan run one point after the other: each point costs its probe's
/// seconds times `cost / probe cost` (time linear in the model's cost).
pub fn scale(probes: &[(f64, f64)], plan: &[(usize, f64)]) -> f64 {
    plan.iter()
        .map(|&(kind, cost)| {
            let (c0, s0) = probes[kind];
            s0 * cost / c0.max(f64::MIN_POSITIVE)
        })
        // From +0 (`sum` of nothing is -0, printed `-0.00 s`).
        .fold(0.0, |a, b| a + b)
}

/// Deepest network a dry run times: deeper points are estimated from it (time linear in depth).
pub const PROBE_DEPTH: usize = 4;
/// Widest network a dry run times: wider points are estimated from it (time in width^2, the
/// convolutions' multiply-adds).
pub const PROBE_WIDTH: usize = 32;

/// The `(depth, width)` a dry run times in place of a point's: at most [`PROBE_DEPTH`] and
/// [`PROBE_WIDTH`] (a width above it becomes [`PROBE_WIDTH`], a multiple of 8, as the pools
/// and couplings need), so that no probe takes more than a moment or more memory than a small
/// network, whatever the point; the estimate then scales by [`probe_cost`].
pub fn probe_shape(depth: usize, width: usize) -> (usize, usize) {
    (depth.clamp(1, PROBE_DEPTH), width.min(PROBE_WIDTH))
}

/// The dry runs' cost model of a point: `(depth + 1) x width^2 x pixels` (the stem and every
/// unit or block run convolutions of `width` channels over every pixel of the batch).
pub fn probe_cost(depth: usize, width: usize, pixels: usize) -> f64 {
    (depth + 1) as f64 * (width * width) as f64 * pixels as f64
}

/// `1234.5` -> `"1234.5 s (20.6 min)"`.
pub fn fmt_seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!("{s:.1} s ({:.1} h)", s / 3600.0)
    } else if s >= 60.0 {
        format!("{s:.1} s ({:.1} min)", s / 60.0)
    } else {
        format!("{s:.2} s")
    }
}

/// The closing line of every dry run.
pub fn print_nothing_written() {
    println!("dry run: nothing written (no output directory created, no lock taken)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_linear_in_cost() {
        // Probe: cost 2 took 0.5 s; points of cost 2, 4 and 8 take 0.5 + 1 + 2 s.
        let s = scale(&[(2.0, 0.5)], &[(0, 2.0), (0, 4.0), (0, 8.0)]);
        assert!((s - 3.5).abs() < 1e-12, "{s}");
        // Nothing planned: +0, printed without a sign.
        assert_eq!(fmt_seconds(scale(&[], &[])), "0.00 s");
    }
}
