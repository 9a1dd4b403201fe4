//! Text measurement and placement with the embedded font.
//!
//! plotters' ab_glyph renderer drops each glyph's left side bearing and truncates pen
//! positions, which makes bitmap text visibly uneven ("con fig", "the ory"). For bitmaps we
//! therefore place every glyph ourselves, reading advances and bearings from the font's `hmtx`
//! table, and let plotters rasterise one glyph at a time. Vector output (SVG) gets whole strings
//! as `<text>` elements, sized to the same metrics, so its text stays selectable and searchable.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use super::{FONT, FONT_BYTES};

/// Horizontal metrics of the embedded TrueType font.
struct Metrics {
    data: &'static [u8],
    /// `ascender - descender` (hhea), in font units: ab_glyph scales this to the text size.
    height: f64,
    units_per_em: f64,
    cap_height: f64,
    n_hmetrics: usize,
    n_glyphs: usize,
    hmtx: usize,
    cmap: Option<(usize, u16)>,
}

fn u16_at(d: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(o)?, *d.get(o + 1)?]))
}
fn i16_at(d: &[u8], o: usize) -> Option<i16> {
    u16_at(d, o).map(|v| v as i16)
}
fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *d.get(o)?,
        *d.get(o + 1)?,
        *d.get(o + 2)?,
        *d.get(o + 3)?,
    ]))
}

impl Metrics {
    fn parse(data: &'static [u8]) -> Option<Metrics> {
        let n_tables = u16_at(data, 4)? as usize;
        let table = |tag: &[u8; 4]| -> Option<usize> {
            (0..n_tables)
                .map(|i| 12 + 16 * i)
                .find(|&r| data.get(r..r + 4) == Some(&tag[..]))
                .and_then(|r| u32_at(data, r + 8).map(|o| o as usize))
        };
        let head = table(b"head")?;
        let hhea = table(b"hhea")?;
        let maxp = table(b"maxp")?;
        let hmtx = table(b"hmtx")?;
        let units_per_em = f64::from(u16_at(data, head + 18)?);
        let height = f64::from(i16_at(data, hhea + 4)?) - f64::from(i16_at(data, hhea + 6)?);
        let cap_height = table(b"OS/2")
            .filter(|&os2| u16_at(data, os2).is_some_and(|v| v >= 2))
            .and_then(|os2| i16_at(data, os2 + 88))
            .map(f64::from)
            .filter(|&c| c > 0.0)
            .unwrap_or(0.729 * units_per_em);
        let cmap = table(b"cmap").and_then(|cmap| {
            let n = u16_at(data, cmap + 2)? as usize;
            let mut best: Option<(usize, u16, u8)> = None;
            for i in 0..n {
                let r = cmap + 4 + 8 * i;
                let (platform, encoding) = (u16_at(data, r)?, u16_at(data, r + 2)?);
                let sub = cmap + u32_at(data, r + 4)? as usize;
                let format = u16_at(data, sub)?;
                let rank = match (platform, encoding, format) {
                    (3, 10, 12) | (0, _, 12) => 2,
                    (3, 1, 4) | (0, _, 4) => 1,
                    _ => continue,
                };
                if best.is_none_or(|b| rank > b.2) {
                    best = Some((sub, format, rank));
                }
            }
            best.map(|(sub, format, _)| (sub, format))
        });
        if height <= 0.0 {
            return None;
        }
        Some(Metrics {
            data,
            height,
            units_per_em,
            cap_height,
            n_hmetrics: u16_at(data, hhea + 34)? as usize,
            n_glyphs: u16_at(data, maxp + 4)? as usize,
            hmtx,
            cmap,
        })
    }

    fn glyph(&self, c: char) -> u32 {
        let d = self.data;
        let c = c as u32;
        let found = match self.cmap {
            Some((sub, 4)) => (|| {
                let seg_x2 = u16_at(d, sub + 6)? as usize;
                let ends = sub + 14;
                let starts = ends + seg_x2 + 2;
                let deltas = starts + seg_x2;
                let offsets = deltas + seg_x2;
                for s in (0..seg_x2).step_by(2) {
                    let end = u32::from(u16_at(d, ends + s)?);
                    if end < c {
                        continue;
                    }
                    let start = u32::from(u16_at(d, starts + s)?);
                    if start > c {
                        return Some(0);
                    }
                    let delta = u32::from(u16_at(d, deltas + s)?);
                    let range = u16_at(d, offsets + s)? as usize;
                    if range == 0 {
                        return Some((c + delta) & 0xFFFF);
                    }
                    let g = u32::from(u16_at(d, offsets + s + range + 2 * (c - start) as usize)?);
                    return Some(if g == 0 { 0 } else { (g + delta) & 0xFFFF });
                }
                Some(0)
            })(),
            Some((sub, 12)) => (|| {
                let groups = u32_at(d, sub + 12)? as usize;
                for i in 0..groups {
                    let g = sub + 16 + 12 * i;
                    let (start, end) = (u32_at(d, g)?, u32_at(d, g + 4)?);
                    if (start..=end).contains(&c) {
                        return Some(u32_at(d, g + 8)? + (c - start));
                    }
                }
                Some(0)
            })(),
            _ => None,
        };
        found.filter(|&g| (g as usize) < self.n_glyphs).unwrap_or(0)
    }

    /// `(advance, left side bearing)` of `c` in font units.
    fn h_metrics(&self, c: char) -> (f64, f64) {
        let g = self.glyph(c) as usize;
        let d = self.data;
        let n = self.n_hmetrics.max(1);
        let adv = u16_at(d, self.hmtx + 4 * g.min(n - 1)).unwrap_or(0);
        let lsb = if g < n {
            i16_at(d, self.hmtx + 4 * g + 2)
        } else {
            i16_at(d, self.hmtx + 4 * n + 2 * (g - n))
        };
        (f64::from(adv), f64::from(lsb.unwrap_or(0)))
    }
}

fn metrics() -> Option<&'static Metrics> {
    static METRICS: OnceLock<Option<Metrics>> = OnceLock::new();
    METRICS.get_or_init(|| Metrics::parse(FONT_BYTES)).as_ref()
}

/// Pixels per font unit at text size `size` (the scale ab_glyph uses).
fn scale(size: f64) -> f64 {
    metrics().map_or(size / 2400.0, |m| size / m.height)
}

/// Width in pixels of `text` at `size`.
pub(crate) fn width(text: &str, size: f64) -> f64 {
    match metrics() {
        Some(m) => text.chars().map(|c| m.h_metrics(c).0).sum::<f64>() * scale(size),
        None => text.chars().count() as f64 * size * 0.5,
    }
}

/// Height in pixels of capital letters at `size`.
pub(crate) fn cap_height(size: f64) -> f64 {
    metrics().map_or(size * 0.62, |m| m.cap_height * scale(size))
}

/// Vertical anchor of a text line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum V {
    /// The top of the capitals is at the anchor.
    Top,
    /// The middle of the capitals is at the anchor.
    Center,
}

/// Draws text on one kind of backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Painter {
    /// Place glyphs one by one (bitmaps); otherwise emit whole strings (vector output).
    pub per_glyph: bool,
}

impl Painter {
    /// Draw `text` with its anchor at `at` (area pixels). `up` rotates it to read bottom to top
    /// (a y-axis label); the anchors then apply along and across the rotated line.
    #[allow(clippy::too_many_arguments)]
    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        text: &str,
        at: (i32, i32),
        size: f64,
        color: RGBColor,
        h: HPos,
        v: V,
        up: bool,
    ) -> std::result::Result<(), String> {
        if text.is_empty() {
            return Ok(());
        }
        let transform = if up {
            FontTransform::Rotate270
        } else {
            FontTransform::None
        };
        let de = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let cap = cap_height(size);
        // Distance from the anchor to the baseline, across the line.
        let to_baseline = match v {
            V::Top => cap,
            V::Center => cap / 2.0,
        };
        let total = width(text, size);
        let start = match h {
            HPos::Left => 0.0,
            HPos::Center => -total / 2.0,
            HPos::Right => -total,
        };
        let Some(m) = metrics().filter(|_| self.per_glyph) else {
            // Whole string. plotters' SVG backend writes font-size = size / 1.24, so ask for
            // the bitmap's em; VPos::Top puts the baseline 0.76 em below the anchor.
            let em_px = scale(size) * metrics().map_or(2048.0, |m| m.units_per_em);
            let style = (FONT, em_px * 1.24)
                .into_font()
                .color(&color)
                .transform(transform)
                .pos(Pos::new(h, VPos::Top));
            let shift = to_baseline - 0.76 * em_px;
            let p = if up {
                (at.0 + shift.round() as i32, at.1)
            } else {
                (at.0, at.1 + shift.round() as i32)
            };
            return area.draw(&Text::new(text, p, style)).map_err(de);
        };
        // Glyph by glyph: plotters draws a glyph's ink from the anchor's x (its bearing is
        // dropped) with the baseline size/2 below the anchor's y.
        let s = scale(size);
        let style = (FONT, size)
            .into_font()
            .color(&color)
            .transform(transform)
            .pos(Pos::new(HPos::Left, VPos::Top));
        let across = (to_baseline - size / 2.0).round() as i32;
        let mut pen = start;
        for c in text.chars() {
            let (adv, lsb) = m.h_metrics(c);
            if !c.is_whitespace() {
                let along = pen.round() as i32 + (lsb * s).floor() as i32;
                let p = if up {
                    (at.0 + across, at.1 - along)
                } else {
                    (at.0 + along, at.1 + across)
                };
                let mut buf = [0u8; 4];
                area.draw(&Text::new(&*c.encode_utf8(&mut buf), p, style.clone()))
                    .map_err(de)?;
            }
            pen += adv * s;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_font_metrics_parse() {
        let m = metrics().expect("DejaVuSans.ttf parses");
        assert_ne!(m.glyph('A'), 0);
        assert_ne!(m.glyph('⁻'), 0, "superscripts are used in tick labels");
        assert_ne!(m.glyph('≤'), 0);
        let (adv_i, _) = m.h_metrics('i');
        let (adv_m, _) = m.h_metrics('m');
        assert!(adv_m > 2.0 * adv_i);
        // Agrees with plotters' own measurement (which sums the same advances).
        super::super::ensure_font().unwrap();
        let text = "Reconstruction SNR vs depth";
        let (w, _) = (FONT, 16.0).into_font().box_size(text).unwrap();
        assert!(
            (width(text, 16.0) - w as f64).abs() <= 2.0,
            "{} vs {w}",
            width(text, 16.0)
        );
        assert!(cap_height(20.0) > 10.0 && cap_height(20.0) < 16.0);
    }
}
