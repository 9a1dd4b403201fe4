//! `precision`: lowest reconstruction SNR per storage dtype.

use crate::error::Result;
use crate::experiments::figures::*;
use crate::nets::Arch;
use crate::plot::common::*;
use crate::plot::{render, Chart, Figure, Series, Style};
use std::path::Path;

/// Lowest SNR vs depth per storage dtype, one panel per architecture.
pub fn precision(res: &Results, out: &Path) -> Result<()> {
    let id = "precision";
    let r = res.load(id)?;
    let ResultData::Precision(d) = expect_kind(&r, res, "precision")? else {
        unreachable!()
    };
    if d.rows.is_empty() {
        return Err(malformed(&res.path(id), "no points"));
    }
    let mut archs: Vec<Arch> = Vec::new();
    let mut dtypes: Vec<crate::device::Precision> = Vec::new();
    for p in &d.rows {
        if !archs.contains(&p.arch) {
            archs.push(p.arch);
        }
        if !dtypes.contains(&p.dtype) {
            dtypes.push(p.dtype);
        }
    }
    let mut panels = Vec::new();
    for &arch in &archs {
        let unit = arch.depth_noun();
        let what = if arch.has_blocks() {
            "lowest block input"
        } else {
            "lowest layer input"
        };
        let mut c = Chart::new(
            format!("{arch} (n = {})", d.slope),
            format!("depth N ({unit}s)"),
            format!("SNR of the {what} (dB)"),
        );
        let mut all = Vec::new();
        let mut xs = Vec::new();
        for (k, dt) in dtypes.iter().enumerate() {
            let pts: Vec<(f64, f64)> = d
                .rows
                .iter()
                .filter(|p| p.arch == arch && &p.dtype == dt)
                .map(|p| (p.depth as f64, p.lowest_snr_db))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let fit = depth_fit_text(arch, &pts);
            all.extend(pts.iter().map(|p| p.1));
            xs.extend(pts.iter().map(|p| p.0));
            c.series
                .push(Series::new(format!("{dt}{fit}"), pts, Style::LineMarkers).with_color(k));
        }
        zero_db_line(&mut c, &xs, &all);
        reserve_legend_room(&mut c, 0.0, 0.45);
        panels.push(c);
    }
    let caption = format!("{} f16 and bf16 convolutions run in f32 and are rounded once to the dtype (CPU); statistics in >= f32.", r.caption());
    render(
        &Figure {
            title: "Reconstruction SNR vs depth for each storage precision".into(),
            caption: caption.clone(),
            panels,
        },
        &stem(out, id),
    )?;
    let rows: Vec<(&str, &LowestRow)> = d.rows.iter().map(|p| ("depth", p)).collect();
    write_lowest_csv(out, id, &caption, &rows)
}
