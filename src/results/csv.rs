//! CSV result files with a provenance comment line, written atomically.

use crate::error::{Error, Result};
use crate::util::write_atomic;
use std::path::Path;

/// Write `<out>/<id>.csv`: a `# ` provenance line, then the header and rows.
pub fn write_csv(
    out: &Path,
    id: &str,
    caption: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<()> {
    let path = out.join(format!("{id}.csv"));
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Config(format!("{}: {e}", path.display()));
    w.write_record(header).map_err(err)?;
    for r in rows {
        w.write_record(r).map_err(err)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let mut text = format!("# {}\n", caption.replace('\n', " ")).into_bytes();
    text.extend(body);
    write_atomic(&path, &text)
}
