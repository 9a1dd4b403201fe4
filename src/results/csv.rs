//! CSV result files: rows to CSV text (the `csv` crate: fields quoted where needed, `\n` line
//! ends), by records or by serde, and the figures' CSV (plain, header first) with its
//! provenance in a `<id>.provenance.json` sidecar, written atomically.

use crate::error::{Error, Result};
use crate::util::write_atomic;
use serde::Serialize;
use std::path::Path;

/// A CSV text that cannot be made (rows of unequal length, a bug of the caller): internal.
fn csv_error(e: impl std::fmt::Display) -> Error {
    Error::internal("CSV serialisation", e)
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

/// The provenance of a figure's CSV, written beside it as `<id>.provenance.json` so that the
/// CSV itself is plain (header first; no comment lines for readers to skip).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CsvProvenance {
    /// Figure id.
    pub figure: String,
    /// The CSV file it describes (`<id>.csv`, same directory).
    pub csv: String,
    /// The figure's caption on one line: config, seed, dtype, device, backend, revision.
    pub provenance: String,
}

/// Path of the provenance sidecar of `<out>/<id>.csv`.
pub fn provenance_path(out: &Path, id: &str) -> std::path::PathBuf {
    out.join(format!("{id}.provenance.json"))
}

/// Write `<out>/<id>.csv` (header and rows, plain CSV) and its provenance sidecar
/// `<out>/<id>.provenance.json` ([`CsvProvenance`]: the caption on one line), both atomically.
pub fn write_csv(
    out: &Path,
    id: &str,
    caption: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<()> {
    let path = out.join(format!("{id}.csv"));
    let body = csv_text(header, rows).map_err(|e| match e {
        Error::Internal { context, detail } => {
            Error::internal(format!("{}: {context}", path.display()), detail)
        }
        e => e,
    })?;
    let side = CsvProvenance {
        figure: id.to_string(),
        csv: format!("{id}.csv"),
        provenance: caption.replace('\n', " "),
    };
    let mut json = serde_json::to_string_pretty(&side).map_err(csv_error)?;
    json.push('\n');
    write_atomic(&provenance_path(out, id), json.as_bytes())?;
    write_atomic(&path, body.as_bytes())
}
