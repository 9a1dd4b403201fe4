//! Output plumbing shared by figures and tables: the [`Scene`] a renderer draws, the atomic
//! PNG + SVG writer ([`write_outputs`]) and the provenance caption at the bottom.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::HPos;

use super::text::{Painter, V};
use super::{CAPTION_FONT, GREY};
use crate::error::{Error, Result};

pub(super) fn caption_height(lines: &[String]) -> u32 {
    if lines.is_empty() {
        8
    } else {
        lines.len() as u32 * (CAPTION_FONT as u32 + 6) + 14
    }
}

/// Something drawable on any plotters backend.
pub(super) trait Scene {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        p: Painter,
    ) -> std::result::Result<(), String>;
}

pub(super) fn de<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

pub(super) fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

pub(super) fn write_outputs(scene: &impl Scene, out_stem: &Path) -> Result<()> {
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

pub(super) fn draw_caption<DB: DrawingBackend>(
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
