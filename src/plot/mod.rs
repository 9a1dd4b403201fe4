//! A small figure layer on top of [plotters]: every paper figure is built from it.
//!
//! A [`Figure`] is a row of [`Chart`] panels (600x450 px each, so two panels are 1200 px wide)
//! with a title on top and a provenance caption (config, seed, dtype, revision) at the bottom.
//! [`render`] writes `<stem>.png` and `<stem>.svg`; [`render_table`] draws a table the same way.
//!
//! Conventions:
//! - Colours come from the colour-blind-safe Okabe-Ito palette ([`PALETTE`]); a series without
//!   an explicit colour takes its position in the panel. Marker shapes cycle with the colour
//!   (circle, square, triangle, cross), so series stay distinguishable in greyscale; a series
//!   may name its own ([`Series::with_marker`], a fifth: diamond).
//! - Point texts ([`Series::with_labels`]) go up and to the right of their point unless that
//!   spot overlaps a marker or a text already placed in the panel; then the first free spot
//!   among right, left, below and further up or down (the last one tried when none is free).
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

mod figure;
mod layout;
mod output;
mod table;
mod text;

// The figure renderers, one file per family, and their registry.
pub mod accuracy;
pub mod alpha;
pub mod anchors;
pub mod bn_eps;
pub mod common;
pub mod depth_law;
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
pub use anchors::anchors;
pub use bn_eps::bn_eps;
pub use depth_law::depth_law;
pub use figure::render;
pub use lipschitz::lipschitz;
pub use memory::{memory_scaling, table1};
pub use precision::precision;
pub use registry::{spec, specs, DataSource, FigureSpec, FIGURE_IDS};
pub use revnet::revnet_fig4;
pub use scaling::{fig11, fig14};
pub use table::render_table;
pub use trace::{fig10, fig13};
pub use tradeoff::tradeoff;

use std::sync::OnceLock;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
    /// Marker shape (0 circle, 1 square, 2 triangle, 3 cross, 4 diamond); `None`: the colour's
    /// (its palette index modulo 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<usize>,
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
            marker: None,
        }
    }

    /// The same series with marker shape `index` ([`Series::marker`]).
    pub fn with_marker(mut self, index: usize) -> Self {
        self.marker = Some(index);
        self
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

fn palette(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

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

#[cfg(test)]
mod tests;
