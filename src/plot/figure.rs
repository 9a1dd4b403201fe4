//! Figures: [`render`] lays out a row of panels and draws each one (grid, shaded spans,
//! series, tick and axis text, legend), with the markers and line samples of every [`Style`].

use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::layout::{self, Axis, Corner, PreparedChart, PreparedSeries};
use super::output::{caption_height, de, draw_caption, write_outputs, Scene};
use super::text::{self, Painter, V};
use super::{
    ensure_font, nothing_to_plot, palette, Figure, Style, AXIS_DESC_FONT, CAPTION_FONT, FONT,
    LEGEND_FONT, PANEL_SIZE, PANEL_TITLE_FONT, SPAN_FONT, TICK_FONT, TITLE_FONT,
};
use crate::error::Result;

/// Render `fig` to `<out_stem>.png` and `<out_stem>.svg` (panels side by side).
///
/// Errors: [`Error::Config`](crate::Error::Config) when there is nothing to plot (no panels, a
/// panel without series, a panel whose points are all dropped and has no fixed ranges) or a
/// fixed range is invalid; [`Error::Io`](crate::Error::Io) naming the output file when it
/// cannot be written.
pub fn render(fig: &Figure, out_stem: &Path) -> Result<()> {
    ensure_font()?;
    if fig.panels.is_empty() {
        let what = format!("figure `{}`", fig.title);
        return Err(nothing_to_plot(what, "at least one panel", "none"));
    }
    let panels = fig
        .panels
        .iter()
        .enumerate()
        .map(|(i, c)| layout::prepare(c, i))
        .collect::<Result<Vec<_>>>()?;
    let n = panels.len() as u32;
    let width = PANEL_SIZE.0 * n;
    let title_h = if fig.title.trim().is_empty() { 0 } else { 44 };
    let caption = layout::wrap_text(&fig.caption, CAPTION_FONT, width.saturating_sub(24));
    let caption_h = caption_height(&caption);
    let scene = FigureScene {
        title: &fig.title,
        title_h,
        caption,
        caption_h,
        panels,
        width,
    };
    write_outputs(&scene, out_stem)
}

struct FigureScene<'a> {
    title: &'a str,
    title_h: u32,
    caption: Vec<String>,
    caption_h: u32,
    panels: Vec<PreparedChart>,
    width: u32,
}

impl Scene for FigureScene<'_> {
    fn size(&self) -> (u32, u32) {
        (self.width, self.title_h + PANEL_SIZE.1 + self.caption_h)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        p: Painter,
    ) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(de)?;
        let (top, rest) = root.split_vertically(self.title_h);
        let (middle, bottom) = rest.split_vertically(PANEL_SIZE.1);
        if self.title_h > 0 {
            let at = (self.width as i32 / 2, self.title_h as i32 / 2 + 4);
            p.draw(
                &top,
                self.title,
                at,
                TITLE_FONT,
                BLACK,
                HPos::Center,
                V::Center,
                false,
            )?;
        }
        let areas = middle.split_evenly((1, self.panels.len()));
        for (chart, area) in self.panels.iter().zip(areas.iter()) {
            draw_chart(area, chart, p)?;
        }
        draw_caption(&bottom, &self.caption, p)
    }
}

fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &PreparedChart,
    p: Painter,
) -> std::result::Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .margin_left(layout::MARGIN_LEFT)
        .margin_right(layout::MARGIN_RIGHT)
        .margin_top(c.title_h)
        .margin_bottom(layout::MARGIN_BOTTOM)
        .x_label_area_size(c.x_label_area)
        .y_label_area_size(c.y_label_area)
        .build_cartesian_2d(AxisCoord::from(&c.x), AxisCoord::from(&c.y))
        .map_err(de)?;

    // Grid, axes and tick marks from plotters; all text is placed below by the painter.
    let no_label = |_: &f64| String::new();
    chart
        .configure_mesh()
        .x_label_formatter(&no_label)
        .y_label_formatter(&no_label)
        .label_style((FONT, 1).into_font().color(&TRANSPARENT))
        .set_all_tick_mark_size(layout::TICK_MARK)
        .bold_line_style(BLACK.mix(0.13))
        .light_line_style(BLACK.mix(0.05))
        .axis_style(BLACK.mix(0.8))
        .draw()
        .map_err(de)?;

    // Shaded spans, under the data.
    let shade = RGBColor(0x80, 0x80, 0x80).mix(0.18).filled();
    for (from, to, _) in &c.spans {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(*from, c.y.lo), (*to, c.y.hi)],
                shade,
            )))
            .map_err(de)?;
    }
    // Every marker first, so that no point text covers one.
    let mut placed: Vec<[i32; 4]> = c
        .series
        .iter()
        .filter(|s| matches!(s.style, Style::Markers | Style::LineMarkers))
        .flat_map(|s| s.runs.iter().flatten())
        .map(|p| {
            let (x, y) = chart.backend_coord(p);
            [x - 5, y - 5, x + 5, y + 5]
        })
        .collect();
    for s in &c.series {
        draw_series(&mut chart, s, c, &mut placed)?;
    }

    // Text, in panel pixels.
    let (bx, by) = area.get_base_pixel();
    let px = |x: f64, y: f64| {
        let (ax, ay) = chart.backend_coord(&(x, y));
        (ax - bx, ay - by)
    };
    let (plot_x, plot_y) = chart.plotting_area().get_pixel_range();
    let (left, right, top, bottom) = (
        plot_x.start - bx,
        plot_x.end - bx,
        plot_y.start - by,
        plot_y.end - by,
    );
    let gap = layout::TICK_MARK + layout::TICK_GAP;
    for (t, label) in c.x.ticks.iter().zip(&c.x.labels) {
        let at = (px(*t, c.y.lo).0, bottom + gap);
        p.draw(
            area,
            label,
            at,
            TICK_FONT,
            BLACK,
            HPos::Center,
            V::Top,
            false,
        )?;
    }
    for (t, label) in c.y.ticks.iter().zip(&c.y.labels) {
        let at = (left - gap, px(c.x.lo, *t).1);
        p.draw(
            area,
            label,
            at,
            TICK_FONT,
            BLACK,
            HPos::Right,
            V::Center,
            false,
        )?;
    }
    let mid_x = (left + right) / 2;
    let x_desc_y = bottom + gap + text::cap_height(TICK_FONT).ceil() as i32 + layout::DESC_GAP;
    p.draw(
        area,
        &c.x_label,
        (mid_x, x_desc_y),
        AXIS_DESC_FONT,
        BLACK,
        HPos::Center,
        V::Top,
        false,
    )?;
    p.draw(
        area,
        &c.y_label,
        (layout::MARGIN_LEFT, (top + bottom) / 2),
        AXIS_DESC_FONT,
        BLACK,
        HPos::Center,
        V::Top,
        true,
    )?;
    p.draw(
        area,
        &c.title,
        (mid_x, layout::TITLE_TOP),
        PANEL_TITLE_FONT,
        BLACK,
        HPos::Center,
        V::Top,
        false,
    )?;
    for (from, to, label) in &c.spans {
        if let Some(label) = label {
            let at = (px((from + to) / 2.0, c.y.hi).0, top + 6);
            p.draw(
                area,
                label,
                at,
                SPAN_FONT,
                RGBColor(0x33, 0x33, 0x33),
                HPos::Center,
                V::Top,
                false,
            )?;
        }
    }

    // Legend: a white box in the least crowded corner.
    let entries: Vec<&PreparedSeries> = c.series.iter().filter(|s| !s.label.is_empty()).collect();
    if !entries.is_empty() {
        let (w, h) = (c.legend_size.0 as i32, c.legend_size.1 as i32);
        let inset = layout::LEGEND_INSET;
        let x0 = match c.legend {
            Corner::UpperLeft | Corner::LowerLeft => left + inset,
            _ => right - inset - w,
        };
        let y0 = match c.legend {
            Corner::UpperLeft | Corner::UpperRight => top + inset,
            _ => bottom - inset - h,
        };
        area.draw(&Rectangle::new(
            [(x0, y0), (x0 + w, y0 + h)],
            WHITE.filled(),
        ))
        .map_err(de)?;
        area.draw(&Rectangle::new(
            [(x0, y0), (x0 + w, y0 + h)],
            BLACK.mix(0.35).stroke_width(1),
        ))
        .map_err(de)?;
        for (i, s) in entries.iter().enumerate() {
            let cy =
                y0 + layout::LEGEND_PAD + layout::LEGEND_ROW * i as i32 + layout::LEGEND_ROW / 2;
            let g = Glyph::new(s.style, s.marker, palette(s.color));
            let anchor = (x0 + layout::LEGEND_PAD + layout::LEGEND_GLYPH / 2, cy);
            area.draw(
                &(EmptyElement::at(anchor)
                    + PathElement::new(g.paths[0].clone(), g.path_style)
                    + PathElement::new(g.paths[1].clone(), g.path_style)
                    + PathElement::new(g.paths[2].clone(), g.path_style)
                    + Polygon::new(g.polygon.clone(), g.polygon_style)),
            )
            .map_err(de)?;
            let tx = x0 + layout::LEGEND_PAD + layout::LEGEND_GLYPH + layout::LEGEND_GAP;
            p.draw(
                area,
                &s.label,
                (tx, cy),
                LEGEND_FONT,
                BLACK,
                HPos::Left,
                V::Center,
                false,
            )?;
        }
    }
    Ok(())
}

type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<AxisCoord, AxisCoord>>;

/// A linear plotters coordinate (in axis space) with the ticks chosen in [`layout`]:
/// bold points carry labels and grid lines, light points only faint grid lines.
#[derive(Debug, Clone)]
struct AxisCoord {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl From<&Axis> for AxisCoord {
    fn from(a: &Axis) -> Self {
        AxisCoord {
            lo: a.lo,
            hi: a.hi,
            bold: a.ticks.clone(),
            light: a.minor.clone(),
        }
    }
}

impl Ranged for AxisCoord {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        (limit.0 as f64 + t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// The pixel offset of a point text `text` at `anchor` (backend pixels): the first spot that
/// overlaps nothing in `placed` (markers and texts already placed) and stays inside the
/// plotting `area` (`[x0, y0, x1, y1]`), else the one that overlaps least, inside the area
/// first; the text's box is added to `placed`.
fn place_text(
    anchor: (i32, i32),
    text: &str,
    area: [i32; 4],
    placed: &mut Vec<[i32; 4]>,
) -> (i32, i32) {
    // DejaVu Sans at SPAN_FONT px: at most about 0.65 em per character, with a margin.
    let w = (text.chars().count() as f64 * SPAN_FONT * 0.65).ceil() as i32 + 4;
    let h = SPAN_FONT as i32 + 2;
    let spots = [
        (7, -16),
        (7, 2),
        (-7 - w, -16),
        (-7 - w, 2),
        (7, -32),
        (7, 18),
        (-w / 2, -34),
        (-w / 2, 20),
        (-7 - w, -32),
        (-7 - w, 18),
        (-w / 2, -50),
        (-w / 2, 36),
        (-7 - w, -48),
        (7, -48),
    ];
    let boxed = |(dx, dy): (i32, i32)| {
        let (x, y) = (anchor.0 + dx, anchor.1 + dy);
        [x, y, x + w, y + h]
    };
    // Pixels of overlap with what is placed, and (weighted far above) outside the area.
    let cost = |b: [i32; 4]| -> i64 {
        let overlap = |p: &[i32; 4]| {
            let w = (b[2].min(p[2]) - b[0].max(p[0])).max(0) as i64;
            let h = (b[3].min(p[3]) - b[1].max(p[1])).max(0) as i64;
            w * h
        };
        let inside = overlap(&area);
        let own = ((b[2] - b[0]) * (b[3] - b[1])) as i64;
        placed.iter().map(overlap).sum::<i64>() + 1000 * (own - inside)
    };
    let spot = spots
        .iter()
        .copied()
        .min_by_key(|&o| cost(boxed(o)))
        .unwrap_or(spots[0]);
    placed.push(boxed(spot));
    spot
}

fn draw_series<DB: DrawingBackend>(
    chart: &mut Chart2d<'_, DB>,
    s: &PreparedSeries,
    c: &PreparedChart,
    placed: &mut Vec<[i32; 4]>,
) -> std::result::Result<(), String> {
    let color = palette(s.color);
    let line = color.stroke_width(2);
    let has_line = matches!(
        s.style,
        Style::Line | Style::LineMarkers | Style::Dashed | Style::Dotted
    );
    let has_markers = matches!(s.style, Style::Markers | Style::LineMarkers);
    if has_line {
        for run in layout::clip_runs(&s.runs, &c.x, &c.y) {
            if s.style == Style::Dashed {
                chart
                    .draw_series(DashedLineSeries::new(run, 9, 6, line))
                    .map_err(de)?;
            } else if s.style == Style::Dotted {
                chart
                    .draw_series(DashedLineSeries::new(run, 2, 4, line))
                    .map_err(de)?;
            } else {
                chart.draw_series(LineSeries::new(run, line)).map_err(de)?;
            }
        }
    }
    if has_markers {
        let g = Glyph::new(Style::Markers, s.marker, color);
        let pts = s
            .runs
            .iter()
            .flatten()
            .copied()
            .filter(|&(x, y)| c.x.contains(x) && c.y.contains(y));
        chart
            .draw_series(pts.map(|p| {
                EmptyElement::at(p)
                    + PathElement::new(g.paths[0].clone(), g.path_style)
                    + PathElement::new(g.paths[1].clone(), g.path_style)
                    + PathElement::new(g.paths[2].clone(), g.path_style)
                    + Polygon::new(g.polygon.clone(), g.polygon_style)
            }))
            .map_err(de)?;
    }
    let (x0, y0) = chart.backend_coord(&(c.x.lo, c.y.hi));
    let (x1, y1) = chart.backend_coord(&(c.x.hi, c.y.lo));
    let area = [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)];
    let texts: Vec<(f64, f64, String, (i32, i32))> = s
        .labels
        .iter()
        .filter(|(x, y, _)| c.x.contains(*x) && c.y.contains(*y))
        .map(|(x, y, t)| {
            let at = place_text(chart.backend_coord(&(*x, *y)), t, area, placed);
            (*x, *y, t.clone(), at)
        })
        .collect();
    chart
        .draw_series(texts.into_iter().map(|(x, y, t, at)| {
            EmptyElement::at((x, y)) + Text::new(t, at, (FONT, SPAN_FONT).into_font().color(&color))
        }))
        .map_err(de)?;
    Ok(())
}

/// A marker (and, for legends, a line sample) in pixel offsets from an anchor, as up to three
/// strokes and one filled polygon, so every style composes into one element type.
#[derive(Debug, Clone)]
struct Glyph {
    paths: [Vec<(i32, i32)>; 3],
    path_style: ShapeStyle,
    polygon: Vec<(i32, i32)>,
    polygon_style: ShapeStyle,
}

impl Glyph {
    const RADIUS: f64 = 4.5;

    /// The glyph of `style` centred on the anchor, its marker of shape `marker` (0 circle, 1
    /// square, 2 triangle, 3 cross, 4 and above diamond); a line sample spans `-10..10`.
    fn new(style: Style, marker: usize, color: RGBColor) -> Glyph {
        let stroke = color.stroke_width(2);
        let mut paths: [Vec<(i32, i32)>; 3] = [vec![], vec![], vec![]];
        match style {
            Style::Line | Style::LineMarkers => paths[0] = vec![(-10, 0), (10, 0)],
            Style::Dashed => {
                paths[0] = vec![(-11, 0), (-3, 0)];
                paths[1] = vec![(3, 0), (11, 0)];
            }
            Style::Dotted => {
                paths[0] = vec![(-10, 0), (-8, 0)];
                paths[1] = vec![(-1, 0), (1, 0)];
                paths[2] = vec![(8, 0), (10, 0)];
            }
            Style::Markers => {}
        }
        let mut polygon = vec![];
        if matches!(style, Style::Markers | Style::LineMarkers) {
            let r = Self::RADIUS;
            let ring = |n: usize, radius: f64, phase: f64| -> Vec<(i32, i32)> {
                (0..n)
                    .map(|k| {
                        let a = phase + std::f64::consts::TAU * k as f64 / n as f64;
                        (
                            (radius * a.cos()).round() as i32,
                            (radius * a.sin()).round() as i32,
                        )
                    })
                    .collect()
            };
            match marker {
                0 => polygon = ring(16, r, 0.0),
                1 => polygon = ring(4, r * 1.3, std::f64::consts::FRAC_PI_4),
                2 => polygon = ring(3, r * 1.4, -std::f64::consts::FRAC_PI_2),
                3 => {
                    let d = r.round() as i32;
                    paths[1] = vec![(-d, -d), (d, d)];
                    paths[2] = vec![(-d, d), (d, -d)];
                }
                _ => polygon = ring(4, r * 1.6, 0.0),
            }
        }
        Glyph {
            paths,
            path_style: stroke,
            polygon,
            polygon_style: color.filled(),
        }
    }
}
