//! A small figure layer on top of [plotters]: every paper figure is built from it.
//!
//! A [`Figure`] is a row of [`Chart`] panels (600x450 px each, so two panels are 1200 px wide)
//! with a title on top and a provenance caption (config, seed, dtype, revision) at the bottom.
//! [`render`] writes `<stem>.png` and `<stem>.svg`; [`render_table`] draws a table the same way.
//!
//! Conventions:
//! - Colours come from the colour-blind-safe Okabe-Ito palette ([`PALETTE`]); a series without
//!   an explicit colour takes its position in the panel. Marker shapes cycle with the colour
//!   (circle, square, triangle, cross), so series stay distinguishable in greyscale.
//! - Use [`Style::Markers`] for measurements and [`Style::Line`] / [`Style::Dashed`] for theory.
//! - Non-finite points (an exact reconstruction has SNR `+inf`) and, on a log axis, values
//!   `<= 0` are left out; lines break at them and the legend label says so, e.g.
//!   `"depth 0 (inf omitted)"`.
//! - Axis ranges are computed from the data (and the shaded spans) with a little padding unless
//!   given; ticks are chosen here (1-2-5 steps, decades on log axes).
//! - Text uses the DejaVu Sans font embedded in the library, so figures render on a machine
//!   without any system font.
//! - Output is atomic: the PNG is rendered to a temporary file in the target directory and
//!   renamed, the SVG is rendered in memory and written with [`crate::util::write_atomic`].

mod layout;
mod text;

// The figure renderers, one file per family, and their registry.
pub mod accuracy;
pub mod alpha;
pub mod bn_eps;
pub mod common;
pub mod lipschitz;
pub mod memory;
pub mod precision;
pub mod registry;
pub mod revnet;
pub mod scaling;
pub mod snr_sweep;
pub mod trace;
pub mod tradeoff;

pub use accuracy::{fig12, fig15};
pub use alpha::{fig05, fig06};
pub use bn_eps::bn_eps;
pub use lipschitz::lipschitz;
pub use memory::{memory_scaling, table1};
pub use precision::precision;
pub use registry::{spec, specs, DataSource, FigureSpec, FIGURE_IDS};
pub use revnet::revnet_fig4;
pub use scaling::{fig11, fig14};
pub use trace::{fig10, fig13};
pub use tradeoff::tradeoff;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use layout::{Axis, Corner, PreparedChart, PreparedSeries};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use text::{Painter, V};

/// Font family under which the embedded font is registered; also the SVG `font-family`.
const FONT: &str = "DejaVu Sans, sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Width and height of one panel, in pixels.
pub const PANEL_SIZE: (u32, u32) = (600, 450);

// Text sizes in pixels (even, so plotters' glyph baseline lands on a whole pixel).
const TITLE_FONT: f64 = 24.0;
const PANEL_TITLE_FONT: f64 = 20.0;
const AXIS_DESC_FONT: f64 = 18.0;
const TICK_FONT: f64 = 16.0;
const LEGEND_FONT: f64 = 16.0;
const CAPTION_FONT: f64 = 14.0;
const SPAN_FONT: f64 = 14.0;
const TABLE_FONT: f64 = 18.0;
const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Okabe-Ito colour-blind-safe palette (blue, vermillion, bluish green, reddish purple,
/// orange, sky blue, black, yellow); [`Series::color`] indexes it modulo its length.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0x00, 0x72, 0xB2),
    (0xD5, 0x5E, 0x00),
    (0x00, 0x9E, 0x73),
    (0xCC, 0x79, 0xA7),
    (0xE6, 0x9F, 0x00),
    (0x56, 0xB4, 0xE9),
    (0x00, 0x00, 0x00),
    (0xF0, 0xE4, 0x42),
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Style {
    /// A solid line (theory, fitted curves).
    Line,
    /// Markers only (measurements).
    Markers,
    /// A solid line through markers (measurements along a sweep).
    LineMarkers,
    /// A dashed line (bounds, reference curves).
    Dashed,
    /// A dotted line (a second reference curve beside a dashed one).
    Dotted,
}

/// One labelled set of points in a panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend label; an empty label keeps the series out of the legend.
    pub label: String,
    /// `(x, y)` points in drawing order.
    pub points: Vec<(f64, f64)>,
    /// How the series is drawn.
    pub style: Style,
    /// Palette index ([`PALETTE`]); `None` uses the series' position in the panel.
    pub color: Option<usize>,
    /// A text drawn beside each point (same order as `points`; empty: no text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

impl Series {
    /// A series with an automatic colour.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Self {
        Series {
            label: label.into(),
            points,
            style,
            color: None,
            labels: Vec::new(),
        }
    }

    /// The same series with a text beside each point (`labels[i]` beside `points[i]`).
    pub fn with_labels(mut self, labels: Vec<String>) -> Self {
        self.labels = labels;
        self
    }

    /// The same series with palette colour `index`.
    pub fn with_color(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }
}

/// A shaded x-range (a block of layers, a warm-up phase...), optionally labelled at its top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub from: f64,
    pub to: f64,
    pub label: Option<String>,
}

/// One panel: axes, series and shaded spans.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_log: bool,
    pub y_log: bool,
    pub series: Vec<Series>,
    pub spans: Vec<Span>,
    /// Fixed x range (in data units); `None` fits the data with a little padding.
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range (in data units); `None` fits the data with a little padding.
    pub y_range: Option<(f64, f64)>,
}

impl Chart {
    /// An empty panel with linear axes and automatic ranges.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Default::default()
        }
    }
}

/// A row of panels with a title and a provenance caption.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Figure {
    pub title: String,
    /// Provenance line drawn small at the bottom: config, seed, dtype, revision.
    pub caption: String,
    pub panels: Vec<Chart>,
}

/// Render `fig` to `<out_stem>.png` and `<out_stem>.svg` (panels side by side).
///
/// Errors: [`Error::Config`] when there is nothing to plot (no panels, a panel without series,
/// a panel whose points are all dropped and has no fixed ranges) or a fixed range is invalid;
/// [`Error::Io`] naming the output file when it cannot be written.
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

/// Render a table as a figure: `<out_stem>.png` and `<out_stem>.svg`.
///
/// Numeric columns are right-aligned, text columns left-aligned; the style is booktabs-like
/// (rules above and below the header and at the bottom, light zebra striping).
/// Errors: [`Error::Config`] for an empty header or a row whose length differs from the
/// header's; [`Error::Io`] naming the output file when it cannot be written.
pub fn render_table(
    title: &str,
    caption: &str,
    header: &[String],
    rows: &[Vec<String>],
    out_stem: &Path,
) -> Result<()> {
    ensure_font()?;
    if header.is_empty() {
        let what = format!("table `{title}`");
        return Err(nothing_to_plot(what, "at least one column", "none"));
    }
    if let Some((i, r)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != header.len())
    {
        return Err(Error::config(
            format!("table `{title}`: row {i}"),
            format!("{} cells (one per header column)", header.len()),
            format!("{} cells", r.len()),
        ));
    }
    let ncol = header.len();
    let numeric: Vec<bool> = (0..ncol)
        .map(|j| {
            let mut cells = rows
                .iter()
                .map(|r| r[j].trim())
                .filter(|s| !s.is_empty())
                .peekable();
            cells.peek().is_some() && cells.all(layout::looks_numeric)
        })
        .collect();
    let pad = 14u32;
    let col_w: Vec<u32> = (0..ncol)
        .map(|j| {
            std::iter::once(&header[j])
                .chain(rows.iter().map(|r| &r[j]))
                .map(|s| layout::text_width(s, TABLE_FONT))
                .max()
                .unwrap_or(0)
                + 2 * pad
        })
        .collect();
    let table_w: u32 = col_w.iter().sum();
    let title_w = layout::text_width(title, TITLE_FONT) + 40;
    let width = (table_w + 60).max(title_w).max(PANEL_SIZE.0);
    let title_h = if title.trim().is_empty() { 16 } else { 50 };
    let caption = layout::wrap_text(caption, CAPTION_FONT, width.saturating_sub(24));
    let caption_h = caption_height(&caption);
    let row_h = 30u32;
    let height = title_h + row_h * (rows.len() as u32 + 1) + 24 + caption_h;
    let scene = TableScene {
        title,
        title_h,
        header,
        rows,
        numeric,
        col_w,
        pad,
        row_h,
        width,
        height,
        caption,
        caption_h,
    };
    write_outputs(&scene, out_stem)
}

// ---------------------------------------------------------------------------------------------
// font and output plumbing

fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // Register the one embedded face under the generic family names plotters uses.
            for family in [FONT, "sans-serif", "serif", "monospace"] {
                for style in [
                    FontStyle::Normal,
                    FontStyle::Bold,
                    FontStyle::Italic,
                    FontStyle::Oblique,
                ] {
                    plotters::style::register_font(family, style, FONT_BYTES).map_err(|_| {
                        "the embedded font assets/DejaVuSans.ttf is not a valid font".to_string()
                    })?;
                }
            }
            Ok(())
        })
        .clone()
        .map_err(|e| Error::internal("font", e))
}

/// A figure or table with nothing to draw: an [`Error::Config`] whose context starts with
/// `nothing to plot: ` and names the figure, panel or table.
pub(crate) fn nothing_to_plot(what: impl std::fmt::Display, expected: &str, got: &str) -> Error {
    Error::config(format!("nothing to plot: {what}"), expected, got)
}

fn caption_height(lines: &[String]) -> u32 {
    if lines.is_empty() {
        8
    } else {
        lines.len() as u32 * (CAPTION_FONT as u32 + 6) + 14
    }
}

/// Something drawable on any plotters backend.
trait Scene {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        p: Painter,
    ) -> std::result::Result<(), String>;
}

fn de<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn write_outputs(scene: &impl Scene, out_stem: &Path) -> Result<()> {
    let png = with_ext(out_stem, "png");
    let svg = with_ext(out_stem, "svg");
    let dir = png
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let size = scene.size();

    // PNG: BitMapBackend encodes from the file extension, so the temporary name ends in .png.
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = png
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp.png",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let drawn = {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        scene
            .draw(&root, Painter { per_glyph: true })
            .and_then(|()| root.present().map_err(de))
        // `root` is dropped here; a backend that was never presented writes on drop, so the
        // temporary file is only removed after this block.
    };
    let finished = drawn
        .map_err(|msg| Error::io(&png, std::io::Error::other(msg)))
        .and_then(|()| std::fs::rename(&tmp, &png).map_err(|e| Error::io(&png, e)));
    if let Err(e) = finished {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        scene
            .draw(&root, Painter { per_glyph: false })
            .and_then(|()| root.present().map_err(de))
            .map_err(|msg| Error::io(&svg, std::io::Error::other(msg)))?;
    }
    crate::util::write_atomic(&svg, text.as_bytes())
}

fn palette(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

fn draw_caption<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[String],
    p: Painter,
) -> std::result::Result<(), String> {
    for (i, line) in lines.iter().enumerate() {
        let y = 8 + (CAPTION_FONT as i32 + 6) * i as i32;
        p.draw(
            area,
            line,
            (12, y),
            CAPTION_FONT,
            GREY,
            HPos::Left,
            V::Top,
            false,
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// figures

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
    for s in &c.series {
        draw_series(&mut chart, s, c)?;
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
            let g = Glyph::new(s.style, s.color, palette(s.color));
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

fn draw_series<DB: DrawingBackend>(
    chart: &mut Chart2d<'_, DB>,
    s: &PreparedSeries,
    c: &PreparedChart,
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
        let g = Glyph::new(Style::Markers, s.color, color);
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
    let texts = s
        .labels
        .iter()
        .filter(|(x, y, _)| c.x.contains(*x) && c.y.contains(*y));
    chart
        .draw_series(texts.map(|(x, y, t)| {
            EmptyElement::at((*x, *y))
                + Text::new(
                    t.clone(),
                    (7, -16),
                    (FONT, SPAN_FONT).into_font().color(&color),
                )
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

    /// The glyph of `style` centred on the anchor; a line sample spans `-10..10`.
    fn new(style: Style, color_index: usize, color: RGBColor) -> Glyph {
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
            match color_index % 4 {
                0 => polygon = ring(16, r, 0.0),
                1 => polygon = ring(4, r * 1.3, std::f64::consts::FRAC_PI_4),
                2 => polygon = ring(3, r * 1.4, -std::f64::consts::FRAC_PI_2),
                _ => {
                    let d = r.round() as i32;
                    paths[1] = vec![(-d, -d), (d, d)];
                    paths[2] = vec![(-d, d), (d, -d)];
                }
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

// ---------------------------------------------------------------------------------------------
// tables

struct TableScene<'a> {
    title: &'a str,
    title_h: u32,
    header: &'a [String],
    rows: &'a [Vec<String>],
    numeric: Vec<bool>,
    col_w: Vec<u32>,
    pad: u32,
    row_h: u32,
    width: u32,
    height: u32,
    caption: Vec<String>,
    caption_h: u32,
}

impl Scene for TableScene<'_> {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        p: Painter,
    ) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(de)?;
        let w = self.width as i32;
        if !self.title.trim().is_empty() {
            let at = (w / 2, self.title_h as i32 / 2);
            p.draw(
                root,
                self.title,
                at,
                TITLE_FONT,
                BLACK,
                HPos::Center,
                V::Center,
                false,
            )?;
        }
        let table_w: i32 = self.col_w.iter().sum::<u32>() as i32;
        let x0 = (w - table_w) / 2;
        let y0 = self.title_h as i32;
        let rh = self.row_h as i32;
        let nrows = self.rows.len() as i32;

        // Zebra striping of the body.
        let stripe = RGBColor(0xF2, 0xF2, 0xF2).filled();
        for i in (1..nrows).step_by(2) {
            let top = y0 + rh * (i + 1);
            root.draw(&Rectangle::new(
                [(x0, top), (x0 + table_w, top + rh)],
                stripe,
            ))
            .map_err(de)?;
        }
        // Header background and booktabs rules.
        root.draw(&Rectangle::new(
            [(x0, y0), (x0 + table_w, y0 + rh)],
            RGBColor(0xE4, 0xEC, 0xF4).filled(),
        ))
        .map_err(de)?;
        let rule = |y: i32, width: u32| {
            root.draw(&PathElement::new(
                vec![(x0, y), (x0 + table_w, y)],
                BLACK.stroke_width(width),
            ))
            .map_err(de)
        };
        rule(y0, 2)?;
        rule(y0 + rh, 1)?;
        rule(y0 + rh * (nrows + 1), 2)?;

        let pad = self.pad as i32;
        let cells = std::iter::once(self.header).chain(self.rows.iter().map(|r| r.as_slice()));
        for (i, row) in cells.enumerate() {
            let cy = y0 + rh * i as i32 + rh / 2;
            let mut cx = x0;
            for (j, cell) in row.iter().enumerate() {
                let cw = self.col_w[j] as i32;
                let (hpos, tx) = if self.numeric[j] {
                    (HPos::Right, cx + cw - pad)
                } else {
                    (HPos::Left, cx + pad)
                };
                p.draw(
                    root,
                    cell,
                    (tx, cy),
                    TABLE_FONT,
                    BLACK,
                    hpos,
                    V::Center,
                    false,
                )?;
                cx += cw;
            }
        }

        let (_, bottom) = root.split_vertically(self.height - self.caption_h);
        draw_caption(&bottom, &self.caption, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_wraps_and_font_registers() {
        assert_eq!(palette(0), palette(PALETTE.len()));
        ensure_font().unwrap();
        assert!(text::width("hello", 14.0) > 10.0);
    }

    #[test]
    fn with_ext_keeps_dots_in_stem() {
        assert_eq!(
            with_ext(Path::new("out/fig1.v2"), "png"),
            PathBuf::from("out/fig1.v2.png")
        );
    }
}
