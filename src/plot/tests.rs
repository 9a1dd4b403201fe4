//! Unit tests of the palette, the embedded font and the output file names.

use super::output::with_ext;
use super::*;
use std::path::{Path, PathBuf};

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
