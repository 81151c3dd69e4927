//! CSV written for people, escaped against formula injection (OWASP ASVS
//! 1.2.10): a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage
//! return is prefixed with `'` so spreadsheets show it instead of running
//! it. The skipped-rows report of an import is written here, the same for
//! the API's download and the command line's file.

/// A cell made safe for spreadsheets.
pub fn safe_cell(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

/// The header of a skipped-rows report.
pub const SKIPPED_ROWS_HEADER: [&str; 4] = ["line", "email", "field", "reason"];

/// Writes the skipped rows among `rows` as `line,email,field,reason`
/// (several problems of a row joined with `; `), formula-like cells defused.
/// The same report for the API's download and the command line's file.
///
/// # Errors
/// When the writer fails.
pub fn write_skipped_rows<W: std::io::Write>(
    writer: &mut csv::Writer<W>,
    rows: &[secureai_domain::imports::models::RowReport],
) -> csv::Result<()> {
    use secureai_domain::imports::models::RowOutcome;
    for row in rows {
        if let RowOutcome::Skipped(problems) = &row.outcome {
            let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
            let reasons: Vec<&str> = problems.iter().map(|p| p.reason.as_str()).collect();
            writer.write_record([
                row.line.to_string(),
                safe_cell(&row.email).into_owned(),
                fields.join("; "),
                safe_cell(&reasons.join("; ")).into_owned(),
            ])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_cell;

    #[test]
    fn formula_like_cells_are_defused_and_others_untouched() {
        for dangerous in ["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "\rx"] {
            assert_eq!(safe_cell(dangerous), format!("'{dangerous}"));
        }
        for harmless in ["ada@example.com", "user.invited", "", "2026-01-01"] {
            assert_eq!(safe_cell(harmless), harmless);
        }
    }
}
