//! The figure layer: PNG + SVG output, log axes, spans, non-finite points, tables, errors.

use std::path::Path;

use revstab::plot::*;
use revstab::Error;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

fn sample_figure() -> Figure {
    let depths: Vec<f64> = (0..=12).map(f64::from).collect();
    let theory: Vec<(f64, f64)> = depths
        .iter()
        .map(|&d| (d, 1e14 * 0.08f64.powf(d / 1.5)))
        .collect();
    // The first measurement is an exact reconstruction (SNR = +inf) and must be skipped.
    let measured: Vec<(f64, f64)> = depths
        .iter()
        .map(|&d| {
            (
                d,
                if d == 0.0 {
                    f64::INFINITY
                } else {
                    3e13 * 0.09f64.powf(d / 1.5)
                },
            )
        })
        .collect();
    let bound: Vec<(f64, f64)> = depths
        .iter()
        .map(|&d| (d, 1e13 * 0.2f64.powf(d / 1.5)))
        .collect();
    let snr = Chart {
        title: "Reconstruction SNR vs depth".into(),
        x_label: "blocks inverted".into(),
        y_label: "SNR".into(),
        y_log: true,
        series: vec![
            Series::new("alpha theory", theory, Style::Line),
            Series::new("measured f32", measured, Style::Markers),
            Series::new("bound", bound, Style::Dashed),
        ],
        spans: vec![
            Span {
                from: 2.5,
                to: 5.5,
                label: Some("stage 2".into()),
            },
            Span {
                from: 8.5,
                to: 11.5,
                label: Some("stage 3".into()),
            },
        ],
        ..Default::default()
    };
    let widths = [16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
    let mem = Chart {
        title: "Activation memory".into(),
        x_label: "width".into(),
        y_label: "memory [MiB]".into(),
        x_log: true,
        y_log: true,
        series: vec![
            Series::new(
                "standard",
                widths.iter().map(|&w| (w, 0.02 * w * w)).collect(),
                Style::LineMarkers,
            ),
            // A zero on the log axis is dropped, not a crash.
            Series::new(
                "reversible",
                widths
                    .iter()
                    .map(|&w| (w, 0.05 * w))
                    .chain([(1024.0, 0.0)])
                    .collect(),
                Style::LineMarkers,
            ),
        ],
        spans: vec![Span {
            from: 100.0,
            to: 300.0,
            label: None,
        }],
        ..Default::default()
    };
    Figure {
        title: "Figure 7: reconstruction error and memory".into(),
        caption: "config=configs/fig7.toml seed=0 dtype=f32 rev=abc1234-dirty".into(),
        panels: vec![snr, mem],
    }
}

fn assert_outputs(stem: &Path, title: &str) {
    let png = std::fs::read(stem.with_extension("png")).unwrap();
    assert!(png.len() > 1000, "PNG too small: {} bytes", png.len());
    assert_eq!(png[..8], PNG_SIGNATURE);
    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    assert!(svg.contains("<svg"));
    assert!(svg.contains(title), "SVG lacks the title `{title}`");
}

#[test]
fn two_panel_figure_renders_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("fig7");
    let fig = sample_figure();
    render(&fig, &stem).unwrap();
    assert_outputs(&stem, "Figure 7: reconstruction error and memory");
    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    assert!(
        svg.contains("measured f32 (inf omitted)"),
        "the inf point is not noted in the legend"
    );
    assert!(svg.contains("reversible (≤0 omitted)"));
    assert!(svg.contains("stage 2"));
    // Only the two outputs are left behind (no temporary files).
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["fig7.png", "fig7.svg"]);
    if let Ok(copy) = std::env::var("REVSTAB_PLOT_SAMPLE") {
        std::fs::copy(stem.with_extension("png"), copy).unwrap();
    }
}

#[test]
fn table_renders_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("table1");
    let header: Vec<String> = ["network", "dtype", "accuracy", "memory [MiB]"]
        .map(String::from)
        .to_vec();
    let rows: Vec<Vec<String>> = vec![
        vec![
            "RevNet-38".into(),
            "f32".into(),
            "92.1%".into(),
            "412".into(),
        ],
        vec![
            "i-RevNet".into(),
            "bf16".into(),
            "91.4 ± 0.2%".into(),
            "207".into(),
        ],
        vec![
            "ResNet-32".into(),
            "f32".into(),
            "92.5%".into(),
            "1380".into(),
        ],
    ];
    render_table(
        "Table 1: accuracy and memory",
        "seed=0 rev=abc1234",
        &header,
        &rows,
        &stem,
    )
    .unwrap();
    assert_outputs(&stem, "Table 1: accuracy and memory");
    if let Ok(copy) = std::env::var("REVSTAB_TABLE_SAMPLE") {
        std::fs::copy(stem.with_extension("png"), copy).unwrap();
    }
}

#[test]
fn unwritable_output_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file used as a directory: fails even for root.
    let blocker = dir.path().join("not_a_dir");
    std::fs::write(&blocker, b"x").unwrap();
    let stem = blocker.join("fig");
    let err = render(&sample_figure(), &stem).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    let header = vec!["a".to_string()];
    let err = render_table("t", "", &header, &[vec!["1".into()]], &stem).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn empty_inputs_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("empty");
    let no_panels = Figure {
        title: "empty".into(),
        ..Default::default()
    };
    assert!(matches!(
        render(&no_panels, &stem),
        Err(Error::Config { .. })
    ));
    let no_series = Figure {
        panels: vec![Chart::new("p", "x", "y")],
        ..Default::default()
    };
    let err = render(&no_series, &stem).unwrap_err();
    assert!(
        matches!(&err, Error::Config { context, .. } if context.starts_with("nothing to plot")),
        "{err}"
    );
    // Only non-finite points and no fixed range: nothing to plot either.
    let mut all_inf = Chart::new("p", "x", "y");
    all_inf.series.push(Series::new(
        "s",
        vec![(0.0, f64::INFINITY), (1.0, f64::NAN)],
        Style::Markers,
    ));
    let fig = Figure {
        panels: vec![all_inf],
        ..Default::default()
    };
    assert!(matches!(render(&fig, &stem), Err(Error::Config { .. })));
    let mut bad_range = Chart::new("p", "x", "y");
    bad_range.y_log = true;
    bad_range.y_range = Some((0.0, 1.0));
    bad_range
        .series
        .push(Series::new("s", vec![(0.0, 1.0)], Style::Markers));
    let fig = Figure {
        panels: vec![bad_range],
        ..Default::default()
    };
    assert!(matches!(render(&fig, &stem), Err(Error::Config { .. })));
    let header: Vec<String> = vec![];
    assert!(matches!(
        render_table("t", "", &header, &[], &stem),
        Err(Error::Config { .. })
    ));
    let header = vec!["a".to_string(), "b".to_string()];
    assert!(matches!(
        render_table("t", "", &header, &[vec!["1".into()]], &stem),
        Err(Error::Config { .. })
    ));
    assert!(!stem.with_extension("png").exists());
}

#[test]
fn single_panel_with_fixed_ranges_clips_and_renders() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("fixed");
    let mut chart = Chart::new("Clipped", "x", "y");
    chart.x_range = Some((0.0, 1.0));
    chart.y_range = Some((-1.0, 1.0));
    let pts: Vec<(f64, f64)> = (0..50)
        .map(|i| (i as f64 / 20.0, (i as f64 / 3.0).sin() * 1.5))
        .collect();
    chart
        .series
        .push(Series::new("sin", pts.clone(), Style::Line).with_color(2));
    chart
        .series
        .push(Series::new("", pts, Style::Markers).with_color(2));
    let fig = Figure {
        title: String::new(),
        caption: String::new(),
        panels: vec![chart],
    };
    render(&fig, &stem).unwrap();
    assert_outputs(&stem, "Clipped");
    if let Ok(gallery) = std::env::var("REVSTAB_PLOT_GALLERY") {
        render(&fig, &Path::new(&gallery).join("fixed")).unwrap();
    }
}

/// Awkward inputs: negative and tiny/huge values, a narrow log range, many series, long labels,
/// a long wrapped caption, three panels. Set `REVSTAB_PLOT_GALLERY=<dir>` to keep the PNGs.
#[test]
fn awkward_inputs_render() {
    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var("REVSTAB_PLOT_GALLERY")
        .ok()
        .map(std::path::PathBuf::from);
    let out = keep.clone().unwrap_or_else(|| dir.path().to_path_buf());

    let xs: Vec<f64> = (0..40).map(|i| i as f64 * 0.25 - 3.0).collect();
    let mut many = Chart::new(
        "Eight series, signed values",
        "offset",
        "response (a very long axis label)",
    );
    for k in 0..8 {
        let style = [
            Style::Line,
            Style::Markers,
            Style::LineMarkers,
            Style::Dashed,
        ][k % 4];
        let pts = xs
            .iter()
            .map(|&x| {
                (
                    x,
                    (x * (1.0 + k as f64 * 0.1)).sin() * 2e-5 - 1e-5 * k as f64,
                )
            })
            .collect();
        many.series
            .push(Series::new(format!("series {k}"), pts, style));
    }
    let mut huge = Chart::new("Huge values, narrow log x", "batch size", "bytes");
    huge.x_log = true;
    huge.series.push(Series::new(
        "peak",
        vec![(100.0, 3.2e9), (110.0, 3.5e9), (125.0, 4.1e9)],
        Style::LineMarkers,
    ));
    huge.series.push(Series::new(
        "nan here",
        vec![(105.0, f64::NAN), (120.0, 3.9e9)],
        Style::Markers,
    ));
    let mut flat = Chart::new("", "", "");
    flat.series.push(Series::new(
        "constant",
        vec![(1.0, 5.0), (2.0, 5.0)],
        Style::Line,
    ));
    flat.spans.push(Span {
        from: 1.2,
        to: 1.4,
        label: Some("warm-up".into()),
    });
    let caption = "config=configs/a/very/long/path/to/the/experiment/configuration/file.toml seed=12345 \
                   dtype=bf16 device=cuda:0 revision=0123456789abcdef0123456789abcdef01234567-dirty \
                   extra=some more provenance words to force wrapping";
    let fig = Figure {
        title: "Gallery".into(),
        caption: caption.into(),
        panels: vec![many, huge, flat],
    };
    render(&fig, &out.join("gallery")).unwrap();
    assert!(out.join("gallery.png").exists());
}
