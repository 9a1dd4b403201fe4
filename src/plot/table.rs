//! Tables drawn as figures: [`render_table`] sizes the columns and draws a booktabs-like table
//! with its title and caption.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::layout;
use super::output::{caption_height, de, draw_caption, write_outputs, Scene};
use super::text::{Painter, V};
use super::{ensure_font, nothing_to_plot, CAPTION_FONT, PANEL_SIZE, TABLE_FONT, TITLE_FONT};
use crate::error::{Error, Result};

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
