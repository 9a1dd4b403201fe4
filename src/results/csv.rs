//! CSV result files: rows to CSV text (the `csv` crate: fields quoted where needed, `\n` line
//! ends), by records or by serde, and the figures' CSV with a provenance comment line, written
//! atomically.

use crate::error::{Error, Result};
use crate::util::write_atomic;
use serde::Serialize;
use std::path::Path;

fn csv_error(e: impl std::fmt::Display) -> Error {
    Error::Config(format!("CSV serialisation: {e}"))
}

fn finish(w: csv::Writer<Vec<u8>>) -> Result<String> {
    let bytes = w.into_inner().map_err(csv_error)?;
    String::from_utf8(bytes).map_err(csv_error)
}

/// A header and rows of fields as CSV text.
pub fn csv_text(header: &[&str], rows: &[Vec<String>]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(csv_error)?;
    for r in rows {
        w.write_record(r).map_err(csv_error)?;
    }
    finish(w)
}

/// Serde rows as CSV text, the header from the first row's field names.
pub fn csv_serialized<T: Serialize>(rows: impl IntoIterator<Item = T>) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(csv_error)?;
    }
    finish(w)
}

/// Write `<out>/<id>.csv`: a `# ` provenance line (the caption on one line), then the header
/// and rows.
pub fn write_csv(
    out: &Path,
    id: &str,
    caption: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<()> {
    let path = out.join(format!("{id}.csv"));
    let body =
        csv_text(header, rows).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let mut text = format!("# {}\n", caption.replace('\n', " ")).into_bytes();
    text.extend(body.into_bytes());
    write_atomic(&path, &text)
}
