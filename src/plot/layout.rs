//! Data preparation for the figure layer: filtering, axis ranges and ticks, clipping, legend
//! placement and text measurement. Everything here is backend independent; coordinates are in
//! "axis space" (`log10` of the data on a log axis).

use super::nothing_to_plot;
use super::text::{cap_height, width};
use super::{Chart, Style, AXIS_DESC_FONT, LEGEND_FONT, PANEL_SIZE, PANEL_TITLE_FONT, TICK_FONT};
use crate::error::{Error, Result};

// Panel geometry, in pixels.
pub(crate) const MARGIN_LEFT: i32 = 10;
pub(crate) const MARGIN_RIGHT: i32 = 24;
pub(crate) const MARGIN_BOTTOM: i32 = 8;
pub(crate) const TITLE_TOP: i32 = 12;
pub(crate) const TICK_MARK: i32 = 5;
/// Between a tick mark and its label.
pub(crate) const TICK_GAP: i32 = 6;
/// Between tick labels and the axis description.
pub(crate) const DESC_GAP: i32 = 12;
pub(crate) const LEGEND_INSET: i32 = 10;
pub(crate) const LEGEND_PAD: i32 = 8;
pub(crate) const LEGEND_ROW: i32 = 24;
pub(crate) const LEGEND_GLYPH: i32 = 26;
pub(crate) const LEGEND_GAP: i32 = 8;

/// A corner of the plotting area (for the legend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Corner {
    UpperRight,
    UpperLeft,
    LowerRight,
    LowerLeft,
}

/// One axis, in axis space.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
    pub labels: Vec<String>,
    pub minor: Vec<f64>,
}

impl Axis {
    fn new(lo: f64, hi: f64, log: bool) -> Axis {
        let (ticks, labels, minor) = if log {
            log_ticks(lo, hi)
        } else {
            linear_ticks(lo, hi)
        };
        Axis {
            lo,
            hi,
            ticks,
            labels,
            minor,
        }
    }

    /// Whether axis-space value `v` lies in the range (with a rounding tolerance).
    pub fn contains(&self, v: f64) -> bool {
        let tol = 1e-9 * (self.hi - self.lo).abs();
        v >= self.lo - tol && v <= self.hi + tol
    }

    fn normalized(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }
}

/// A series after filtering: runs of consecutive drawable points (axis space), broken where a
/// point was dropped.
#[derive(Debug, Clone)]
pub(crate) struct PreparedSeries {
    pub label: String,
    pub style: Style,
    pub color: usize,
    /// Marker shape ([`crate::plot::Series::marker`], else the colour's modulo 4).
    pub marker: usize,
    pub runs: Vec<Vec<(f64, f64)>>,
    /// The texts of the drawable points (axis space).
    pub labels: Vec<(f64, f64, String)>,
}

/// A panel ready to draw.
#[derive(Debug, Clone)]
pub(crate) struct PreparedChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<PreparedSeries>,
    /// `(from, to, label)` in axis space, clipped to the x range.
    pub spans: Vec<(f64, f64, Option<String>)>,
    pub legend: Corner,
    /// Legend box `(width, height)` in pixels.
    pub legend_size: (u32, u32),
    /// Space above the plotting area (the panel title).
    pub title_h: i32,
    pub x_label_area: i32,
    pub y_label_area: i32,
}

fn to_axis(v: f64, log: bool) -> Option<f64> {
    if !v.is_finite() || (log && v <= 0.0) {
        None
    } else if log {
        Some(v.log10())
    } else {
        Some(v)
    }
}

fn fixed_range(
    r: Option<(f64, f64)>,
    log: bool,
    which: &str,
    panel: &str,
) -> Result<Option<(f64, f64)>> {
    let Some((lo, hi)) = r else { return Ok(None) };
    if !(lo.is_finite() && hi.is_finite() && lo < hi) || (log && lo <= 0.0) {
        let need = if log {
            "finite, 0 < lo < hi on a log axis"
        } else {
            "finite, lo < hi"
        };
        return Err(Error::config(
            format!("panel `{panel}`: {which}_range"),
            need,
            format!("({lo}, {hi})"),
        ));
    }
    Ok(Some((
        to_axis(lo, log).unwrap_or(lo),
        to_axis(hi, log).unwrap_or(hi),
    )))
}

fn auto_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return None;
    }
    if hi - lo <= 1e-12 * lo.abs().max(hi.abs()) {
        let d = if lo != 0.0 { 0.1 * lo.abs() } else { 1.0 };
        return Some((lo - d, hi + d));
    }
    let pad = 0.04 * (hi - lo);
    Some((lo - pad, hi + pad))
}

/// Validate and lay out one panel (`index` is its position, for messages).
pub(crate) fn prepare(chart: &Chart, index: usize) -> Result<PreparedChart> {
    let name = if chart.title.is_empty() {
        format!("#{index}")
    } else {
        chart.title.clone()
    };
    if chart.series.is_empty() {
        return Err(nothing_to_plot(
            format!("panel `{name}`"),
            "at least one series",
            "none",
        ));
    }
    let (xl, yl) = (chart.x_log, chart.y_log);
    let mut series = Vec::with_capacity(chart.series.len());
    for (i, s) in chart.series.iter().enumerate() {
        let (mut inf, mut nan, mut nonpos) = (0usize, 0usize, 0usize);
        let mut runs: Vec<Vec<(f64, f64)>> = vec![];
        let mut current = vec![];
        let mut labels = vec![];
        for (k, &(x, y)) in s.points.iter().enumerate() {
            match (to_axis(x, xl), to_axis(y, yl)) {
                (Some(ax), Some(ay)) => {
                    current.push((ax, ay));
                    if let Some(t) = s.labels.get(k).filter(|t| !t.is_empty()) {
                        labels.push((ax, ay, t.clone()));
                    }
                }
                _ => {
                    if x.is_nan() || y.is_nan() {
                        nan += 1;
                    } else if x.is_infinite() || y.is_infinite() {
                        inf += 1;
                    } else {
                        nonpos += 1;
                    }
                    if !current.is_empty() {
                        runs.push(std::mem::take(&mut current));
                    }
                }
            }
        }
        if !current.is_empty() {
            runs.push(current);
        }
        let mut notes = vec![];
        if inf > 0 {
            notes.push("inf");
        }
        if nan > 0 {
            notes.push("NaN");
        }
        if nonpos > 0 {
            notes.push("≤0");
        }
        let mut label = s.label.clone();
        if !notes.is_empty() && !label.is_empty() {
            label = format!("{label} ({} omitted)", notes.join(", "));
        }
        series.push(PreparedSeries {
            label,
            style: s.style,
            color: s.color.unwrap_or(i),
            marker: s.marker.unwrap_or(s.color.unwrap_or(i) % 4),
            runs,
            labels,
        });
    }

    let fixed_x = fixed_range(chart.x_range, xl, "x", &name)?;
    let fixed_y = fixed_range(chart.y_range, yl, "y", &name)?;
    let span_ends: Vec<f64> = chart
        .spans
        .iter()
        .flat_map(|s| [s.from, s.to])
        .filter_map(|v| to_axis(v, xl))
        .collect();
    let points = || series.iter().flat_map(|s| s.runs.iter().flatten().copied());
    let nothing = || {
        nothing_to_plot(
            format!("panel `{name}`"),
            "a drawable point to fit an axis range to (points must be finite, > 0 on a log axis, and inside a fixed range if one is given)",
            "none",
        )
    };
    let (x_lo, x_hi) = match fixed_x {
        Some(r) => r,
        None => auto_range(points().map(|p| p.0).chain(span_ends.iter().copied()))
            .ok_or_else(nothing)?,
    };
    let (y_lo, y_hi) = match fixed_y {
        Some(r) => r,
        None => {
            let tol = 1e-9 * (x_hi - x_lo);
            auto_range(
                points()
                    .filter(|p| p.0 >= x_lo - tol && p.0 <= x_hi + tol)
                    .map(|p| p.1),
            )
            .ok_or_else(nothing)?
        }
    };
    let x = Axis::new(x_lo, x_hi, xl);
    let y = Axis::new(y_lo, y_hi, yl);

    let mut spans = vec![];
    for s in &chart.spans {
        let (a, b) = (s.from.min(s.to), s.from.max(s.to));
        let a = if xl && a <= 0.0 {
            Some(x.lo)
        } else {
            to_axis(a, xl)
        };
        let (Some(a), Some(b)) = (a, to_axis(b, xl)) else {
            continue;
        };
        let (a, b) = (a.max(x.lo), b.min(x.hi));
        if a < b {
            spans.push((a, b, s.label.clone().filter(|l| !l.is_empty())));
        }
    }

    let widest_y = y
        .labels
        .iter()
        .map(|l| width(l, TICK_FONT))
        .fold(0.0, f64::max)
        .ceil() as i32;
    // Descenders of the axis description: a quarter of its size is plenty.
    let desc_h = (cap_height(AXIS_DESC_FONT) + AXIS_DESC_FONT * 0.25).ceil() as i32;
    let y_label_area = TICK_MARK
        + TICK_GAP
        + widest_y
        + if chart.y_label.is_empty() {
            4
        } else {
            DESC_GAP + desc_h
        };
    let x_label_area = TICK_MARK
        + TICK_GAP
        + cap_height(TICK_FONT).ceil() as i32
        + if chart.x_label.is_empty() {
            8
        } else {
            DESC_GAP + desc_h
        };
    let title_h = if chart.title.is_empty() {
        TITLE_TOP
    } else {
        TITLE_TOP + (cap_height(PANEL_TITLE_FONT) + PANEL_TITLE_FONT * 0.25).ceil() as i32 + 14
    };

    let labelled: Vec<&PreparedSeries> = series.iter().filter(|s| !s.label.is_empty()).collect();
    let widest_label = labelled
        .iter()
        .map(|s| width(&s.label, LEGEND_FONT))
        .fold(0.0, f64::max)
        .ceil() as i32;
    let legend_size = (
        (LEGEND_PAD + LEGEND_GLYPH + LEGEND_GAP + widest_label + LEGEND_PAD + 2) as u32,
        (2 * LEGEND_PAD + LEGEND_ROW * labelled.len() as i32) as u32,
    );
    let plot_w = (PANEL_SIZE.0 as i32 - MARGIN_LEFT - MARGIN_RIGHT - y_label_area).max(1);
    let plot_h = (PANEL_SIZE.1 as i32 - title_h - MARGIN_BOTTOM - x_label_area).max(1);
    let legend = place_legend(&series, &spans, &x, &y, legend_size, (plot_w, plot_h));
    Ok(PreparedChart {
        title: chart.title.clone(),
        x_label: chart.x_label.clone(),
        y_label: chart.y_label.clone(),
        x,
        y,
        series,
        spans,
        legend,
        legend_size,
        title_h,
        x_label_area,
        y_label_area,
    })
}

/// The corner whose legend-sized box covers the least data (ties: upper right first).
fn place_legend(
    series: &[PreparedSeries],
    spans: &[(f64, f64, Option<String>)],
    x: &Axis,
    y: &Axis,
    legend: (u32, u32),
    plot: (i32, i32),
) -> Corner {
    let fw = ((legend.0 as i32 + LEGEND_INSET) as f64 / plot.0 as f64).min(1.0);
    let fh = ((legend.1 as i32 + LEGEND_INSET) as f64 / plot.1 as f64).min(1.0);
    let mut samples: Vec<(f64, f64, f64)> = vec![];
    let norm = |p: (f64, f64)| (x.normalized(p.0), y.normalized(p.1));
    for s in series {
        let line = matches!(
            s.style,
            Style::Line | Style::LineMarkers | Style::Dashed | Style::Dotted
        );
        let markers = matches!(s.style, Style::Markers | Style::LineMarkers);
        for run in &s.runs {
            if markers {
                samples.extend(run.iter().map(|&p| {
                    let (x, y) = norm(p);
                    (x, y, 4.0)
                }));
            }
            if line {
                for w in run.windows(2) {
                    let (a, b) = (norm(w[0]), norm(w[1]));
                    for k in 0..16 {
                        let t = k as f64 / 16.0;
                        samples.push((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1), 1.0));
                    }
                }
            }
        }
    }
    for (a, b, label) in spans {
        if label.is_some() {
            samples.push((x.normalized((a + b) / 2.0), 0.97, 30.0));
        }
    }
    let corners = [
        (Corner::UpperRight, (1.0 - fw, 1.0), (1.0 - fh, 1.0)),
        (Corner::UpperLeft, (0.0, fw), (1.0 - fh, 1.0)),
        (Corner::LowerRight, (1.0 - fw, 1.0), (0.0, fh)),
        (Corner::LowerLeft, (0.0, fw), (0.0, fh)),
    ];
    let mut best = (Corner::UpperRight, f64::INFINITY);
    for (corner, (x0, x1), (y0, y1)) in corners {
        let cost: f64 = samples
            .iter()
            .filter(|&&(x, y, _)| {
                x >= x0 - 0.02 && x <= x1 + 0.02 && y >= y0 - 0.02 && y <= y1 + 0.02
            })
            .map(|s| s.2)
            .sum();
        if cost < best.1 {
            best = (corner, cost);
        }
    }
    best.0
}

/// Clip polylines to the axes' box (Liang-Barsky per segment), splitting where they leave it.
pub(crate) fn clip_runs(runs: &[Vec<(f64, f64)>], x: &Axis, y: &Axis) -> Vec<Vec<(f64, f64)>> {
    let ex = 1e-9 * (x.hi - x.lo);
    let ey = 1e-9 * (y.hi - y.lo);
    let (xmin, xmax, ymin, ymax) = (x.lo - ex, x.hi + ex, y.lo - ey, y.hi + ey);
    let mut out: Vec<Vec<(f64, f64)>> = vec![];
    for run in runs {
        let mut current: Vec<(f64, f64)> = vec![];
        for w in run.windows(2) {
            let (p, q) = (w[0], w[1]);
            let (dx, dy) = (q.0 - p.0, q.1 - p.1);
            let (mut t0, mut t1) = (0.0f64, 1.0f64);
            let mut visible = true;
            for (pk, qk) in [
                (-dx, p.0 - xmin),
                (dx, xmax - p.0),
                (-dy, p.1 - ymin),
                (dy, ymax - p.1),
            ] {
                if pk == 0.0 {
                    if qk < 0.0 {
                        visible = false;
                        break;
                    }
                } else {
                    let r = qk / pk;
                    if pk < 0.0 {
                        t0 = t0.max(r);
                    } else {
                        t1 = t1.min(r);
                    }
                }
            }
            if !visible || t0 > t1 {
                if current.len() > 1 {
                    out.push(std::mem::take(&mut current));
                }
                current.clear();
                continue;
            }
            let a = (p.0 + t0 * dx, p.1 + t0 * dy);
            let b = (p.0 + t1 * dx, p.1 + t1 * dy);
            if current.last() != Some(&a) {
                if current.len() > 1 {
                    out.push(std::mem::take(&mut current));
                }
                current = vec![a];
            }
            current.push(b);
            if t1 < 1.0 {
                out.push(std::mem::take(&mut current));
            }
        }
        if current.len() > 1 {
            out.push(current);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// ticks and number formatting

fn superscript(n: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut s = String::new();
    if n < 0 {
        s.push('⁻');
    }
    for c in n.unsigned_abs().to_string().chars() {
        s.push(DIGITS[c.to_digit(10).unwrap_or(0) as usize]);
    }
    s
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `m×10ⁿ` with `decimals` digits in the mantissa (just `10ⁿ` when the mantissa is 1).
fn fmt_sci(v: f64, decimals: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let mut e = v.abs().log10().floor() as i32;
    let mut m = v / 10f64.powi(e);
    if format!("{:.*}", decimals, m.abs()).starts_with("10") {
        e += 1;
        m = v / 10f64.powi(e);
    }
    let ms = trim_zeros(format!("{:.*}", decimals, m));
    match ms.as_str() {
        "1" => format!("10{}", superscript(e)),
        "-1" => format!("-10{}", superscript(e)),
        _ => format!("{ms}×10{}", superscript(e)),
    }
}

/// A compact label for an arbitrary value: plain between 1e-3 and 1e5, else `m×10ⁿ`.
pub(crate) fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-3..1e5).contains(&a) {
        let decimals = (4 - a.log10().floor() as i32).clamp(0, 8) as usize;
        trim_zeros(format!("{v:.decimals$}"))
    } else {
        fmt_sci(v, 3)
    }
}

type Ticks = (Vec<f64>, Vec<String>, Vec<f64>);

/// "Nice" 1-2-2.5-5 ticks for a linear axis, labelled with a common number of decimals.
fn linear_ticks(lo: f64, hi: f64) -> Ticks {
    let raw = (hi - lo) / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let mult = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|&m| m >= norm - 1e-9)
        .unwrap_or(10.0);
    let step = mult * mag;
    let k0 = (lo / step - 1e-9).ceil() as i64;
    let k1 = (hi / step + 1e-9).floor() as i64;
    let ticks: Vec<f64> = (k0..=k1).map(|k| k as f64 * step).collect();
    let step_exp = step.log10().floor() as i32;
    let extra = usize::from(mult == 2.5);
    let max_abs = ticks.iter().fold(0f64, |m, t| m.max(t.abs()));
    let labels = if max_abs >= 1e5 || step < 1e-3 {
        ticks
            .iter()
            .map(|&t| {
                if t == 0.0 {
                    "0".into()
                } else {
                    let e = t.abs().log10().floor() as i32;
                    fmt_sci(t, ((e - step_exp).max(0) as usize) + extra)
                }
            })
            .collect()
    } else {
        let decimals = (-step_exp).max(0) as usize + extra;
        ticks
            .iter()
            .map(|&t| format!("{:.*}", decimals, if t == 0.0 { 0.0 } else { t }))
            .collect()
    };
    (ticks, labels, vec![])
}

/// Ticks for a log axis (axis space is log10): decades when the range holds two or more,
/// else 1-2-5 (or 1..9) multiples of powers of ten, else nice linear ticks of the data.
fn log_ticks(lo: f64, hi: f64) -> Ticks {
    let e0 = (lo - 1e-9).ceil() as i32;
    let e1 = (hi + 1e-9).floor() as i32;
    let count = e1 - e0 + 1;
    if count >= 2 {
        let stride = ((count as f64) / 7.0).ceil().max(1.0) as i32;
        let mut decades: Vec<i32> = (e0..=e1).filter(|e| e.rem_euclid(stride) == 0).collect();
        if decades.len() < 2 {
            decades = (e0..=e1).step_by(stride as usize).collect();
        }
        let plain = decades.iter().all(|&e| (-2..=4).contains(&e));
        let labels = decades
            .iter()
            .map(|&e| {
                if plain {
                    fmt_num(10f64.powi(e))
                } else {
                    format!("10{}", superscript(e))
                }
            })
            .collect();
        let minor = if stride == 1 {
            let (f0, f1) = (lo.floor() as i32, hi.floor() as i32);
            (f0..=f1)
                .flat_map(|e| (2..=9).map(move |m| (m as f64).log10() + e as f64))
                .filter(|&v| v > lo && v < hi)
                .collect()
        } else {
            (e0..=e1)
                .filter(|e| !decades.contains(e))
                .map(|e| e as f64)
                .collect()
        };
        return (decades.into_iter().map(f64::from).collect(), labels, minor);
    }
    for mults in [
        &[1.0, 2.0, 5.0][..],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0][..],
    ] {
        let values: Vec<f64> = ((lo.floor() as i32)..=(hi.ceil() as i32))
            .flat_map(|e| mults.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| {
                let l = v.log10();
                l >= lo - 1e-9 && l <= hi + 1e-9
            })
            .collect();
        if values.len() >= 3 {
            let labels = values.iter().map(|&v| fmt_num(v)).collect();
            return (values.iter().map(|v| v.log10()).collect(), labels, vec![]);
        }
    }
    let (values, labels, _) = linear_ticks(10f64.powf(lo), 10f64.powf(hi));
    let keep: Vec<usize> = (0..values.len()).filter(|&i| values[i] > 0.0).collect();
    (
        keep.iter().map(|&i| values[i].log10()).collect(),
        keep.iter().map(|&i| labels[i].clone()).collect(),
        vec![],
    )
}

// ---------------------------------------------------------------------------------------------
// text

/// Width in whole pixels of `text` in the embedded font at `size`.
pub(crate) fn text_width(text: &str, size: f64) -> u32 {
    width(text, size).ceil() as u32
}

/// Greedy word wrap to `max_w` pixels; explicit newlines are kept.
pub(crate) fn wrap_text(text: &str, size: f64, max_w: u32) -> Vec<String> {
    let mut lines = vec![];
    for para in text.lines() {
        let mut line = String::new();
        for word in para.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if !line.is_empty() && text_width(&candidate, size) > max_w {
                lines.push(std::mem::replace(&mut line, word.to_string()));
            } else {
                line = candidate;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// Whether a table cell reads as a number (`1.5`, `-3e-4`, `12%`, `inf`, `0.91 ± 0.02`).
pub(crate) fn looks_numeric(s: &str) -> bool {
    let s = s.trim();
    if matches!(s, "-" | "—" | "n/a" | "NA") {
        return true;
    }
    s.split('±').all(|part| {
        let p = part
            .trim()
            .trim_end_matches('%')
            .trim()
            .trim_start_matches('+')
            .replace('−', "-");
        !p.is_empty() && p.parse::<f64>().is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_nice() {
        let (t, l, _) = linear_ticks(-0.04, 1.04);
        assert_eq!(l, vec!["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(t.len(), 6);
        let (_, l, _) = linear_ticks(0.0, 3e6);
        assert!(l.contains(&"10⁶".to_string()), "{l:?}");
    }

    #[test]
    fn log_ticks_use_decades_or_multiples() {
        let (t, l, minor) = log_ticks(-6.2, 2.1);
        assert_eq!(t.first(), Some(&-6.0));
        assert!(l.contains(&"10⁻⁶".to_string()), "{l:?}");
        assert!(!minor.is_empty());
        let (_, l, _) = log_ticks(0.3, 0.95); // 2 .. 8.9
        assert_eq!(l, vec!["2", "3", "4", "5", "6", "7", "8"]);
        let (t, _, _) = log_ticks(2.0, 2.03); // 100 .. 107
        assert!(t.len() >= 2);
    }

    #[test]
    fn clipping_splits_lines_that_leave_the_box() {
        let ax = Axis::new(0.0, 1.0, false);
        let runs = vec![vec![(0.5, 0.5), (1.5, 0.5), (0.5, 0.6)]];
        let out = clip_runs(&runs, &ax, &ax);
        assert_eq!(out.len(), 2);
        assert!(out.iter().flatten().all(|&(x, _)| x <= 1.0 + 1e-6));
    }

    #[test]
    fn numbers_are_formatted_compactly() {
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1e-6), "10⁻⁶");
        assert_eq!(fmt_num(2.5e7), "2.5×10⁷");
        assert!(looks_numeric("12.5%") && looks_numeric("0.91 ± 0.02") && !looks_numeric("RevNet"));
    }
}
