//! Reading an import file: CSV with a header row, streamed record by record
//! with the `csv` crate (never the whole file as rows in memory).
//!
//! Dialect: columns `email`, `name`, `role` and optional `department` in any
//! order, header names trimmed and case-insensitive; UTF-8 with or without a
//! byte-order mark; LF or CRLF; quoted fields may hold commas, quotes and
//! newlines. Unknown columns are reported once as a warning. A missing
//! required column, a non-UTF-8 byte or a broken quote fails the whole file.

use std::collections::VecDeque;
use std::io::{Read, Seek};

use secureai_domain::imports::ports::{RowReader, RowSource, SourceError};
use secureai_domain::imports::rows::{FileError, RawRow};

/// An import file in CSV, read from the start each time the import asks
/// (once to check it as a whole, once to import it).
pub struct CsvFile<R> {
    input: R,
}

impl<R: Read + Seek + Send> CsvFile<R> {
    /// The file behind `input` (a `File`, or a `Cursor` over bytes).
    pub fn new(input: R) -> Self {
        Self { input }
    }
}

impl<R: Read + Seek + Send> RowSource for CsvFile<R> {
    fn read(&mut self) -> Result<RowReader<'_>, SourceError> {
        self.input.rewind().map_err(|e| SourceError::Unreadable(e.to_string()))?;
        let rows = CsvRows::new(&mut self.input)?;
        Ok(RowReader { warnings: rows.warnings().to_vec(), rows: Box::new(rows) })
    }
}

/// Passes bytes through, remembering where line ends (CR, LF) are, so that
/// a record's byte offset gives its line: the `csv` crate counts neither the
/// blank lines it skips nor the LF of a CRLF before a record's start. Only
/// line ends not yet asked about are kept: about a buffer's worth.
struct LineIndex<R> {
    inner: R,
    offset: u64,
    /// Offsets of CR and LF bytes, and whether each is an LF.
    ends: VecDeque<(u64, bool)>,
    line: u64,
}

impl<R: Read> Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, byte) in buf[..n].iter().enumerate() {
            if matches!(byte, b'\n' | b'\r') {
                self.ends.push_back((self.offset + i as u64, *byte == b'\n'));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineIndex<R> {
    /// The line of the first byte at or after `offset` that does not end a
    /// line (where a record really starts); offsets must not go backwards.
    fn line_at(&mut self, offset: u64) -> u64 {
        let mut start = offset;
        while let Some(&(at, is_lf)) = self.ends.front() {
            if at > start {
                break;
            }
            if at == start {
                start += 1;
            }
            self.ends.pop_front();
            // LF ends a line; so does a CR not followed by LF (old Mac files).
            let cr_alone =
                !is_lf && !matches!(self.ends.front(), Some(&(next, true)) if next == at + 1);
            self.line += u64::from(is_lf || cr_alone);
        }
        self.line
    }
}

#[derive(Debug, Clone, Copy)]
struct Columns {
    email: usize,
    name: usize,
    role: usize,
    department: Option<usize>,
}

/// The rows of a CSV file, one at a time.
pub struct CsvRows<R: Read> {
    reader: csv::Reader<LineIndex<R>>,
    columns: Columns,
    warnings: Vec<String>,
    record: csv::ByteRecord,
    failed: bool,
}

fn field(record: &csv::ByteRecord, index: Option<usize>, line: u64) -> Result<String, FileError> {
    let Some(bytes) = index.and_then(|i| record.get(i)) else { return Ok(String::new()) };
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| FileError::NotUtf8 { line })
}

fn csv_error(error: &csv::Error, fallback_line: u64) -> FileError {
    let line = error.position().map_or(fallback_line, csv::Position::line);
    match error.kind() {
        csv::ErrorKind::Utf8 { .. } => FileError::NotUtf8 { line },
        _ => FileError::Malformed { line, reason: error.to_string() },
    }
}

impl<R: Read> CsvRows<R> {
    /// Reads the header row.
    ///
    /// # Errors
    /// [`FileError`] for an empty file, a header that is not UTF-8, or
    /// missing or repeated columns.
    pub fn new(input: R) -> Result<Self, FileError> {
        let input = LineIndex { inner: input, offset: 0, ends: VecDeque::new(), line: 1 };
        let mut reader =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input);
        let mut header = csv::ByteRecord::new();
        if !reader.read_byte_record(&mut header).map_err(|e| csv_error(&e, 1))? {
            return Err(FileError::Empty);
        }
        let mut email = None;
        let mut name = None;
        let mut role = None;
        let mut department = None;
        let mut unknown = Vec::new();
        let mut names = Vec::new();
        for (index, raw) in header.iter().enumerate() {
            let raw = std::str::from_utf8(raw).map_err(|_| FileError::NotUtf8 { line: 1 })?;
            let text = raw.trim_start_matches('\u{feff}').trim();
            names.push(text.to_owned());
            let slot = match text.to_lowercase().as_str() {
                "email" => Some((&mut email, "email")),
                "name" => Some((&mut name, "name")),
                "role" => Some((&mut role, "role")),
                "department" => Some((&mut department, "department")),
                _ => None,
            };
            match slot {
                Some((slot, column)) => {
                    if slot.replace(index).is_some() {
                        return Err(FileError::DuplicateColumn(column));
                    }
                }
                None => unknown.push(if text.is_empty() {
                    format!("(unnamed column {})", index + 1)
                } else {
                    text.to_owned()
                }),
            }
        }
        let missing: Vec<&'static str> = [("email", email), ("name", name), ("role", role)]
            .into_iter()
            .filter(|(_, index)| index.is_none())
            .map(|(column, _)| column)
            .collect();
        let (Some(email), Some(name), Some(role)) = (email, name, role) else {
            return Err(FileError::MissingColumns { missing, found: names.join(", ") });
        };
        let warnings = if unknown.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "ignored unknown column{}: {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join(", ")
            )]
        };
        Ok(Self {
            reader,
            columns: Columns { email, name, role, department },
            warnings,
            record: csv::ByteRecord::new(),
            failed: false,
        })
    }

    /// Warnings about the file as a whole (unknown columns), once each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn next_row(&mut self) -> Result<Option<RawRow>, FileError> {
        loop {
            let fallback = self.reader.position().line();
            if !self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| csv_error(&e, fallback))?
            {
                return Ok(None);
            }
            let line = match self.record.position() {
                Some(position) => self.reader.get_mut().line_at(position.byte()),
                None => fallback,
            };
            // A line with nothing on it is not a row.
            if self.record.len() == 1 && self.record.get(0).is_some_and(<[u8]>::is_empty) {
                continue;
            }
            let c = self.columns;
            return Ok(Some(RawRow {
                line,
                email: field(&self.record, Some(c.email), line)?,
                name: field(&self.record, Some(c.name), line)?,
                role: field(&self.record, Some(c.role), line)?,
                department: field(&self.record, c.department, line)?,
            }));
        }
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<RawRow, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_row().transpose();
        if matches!(next, Some(Err(_))) {
            self.failed = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[u8]) -> Result<(Vec<RawRow>, Vec<String>), FileError> {
        let parsed = CsvRows::new(text)?;
        let warnings = parsed.warnings().to_vec();
        Ok((parsed.collect::<Result<Vec<_>, _>>()?, warnings))
    }

    fn row(line: u64, email: &str, name: &str, role: &str, department: &str) -> RawRow {
        RawRow {
            line,
            email: email.into(),
            name: name.into(),
            role: role.into(),
            department: department.into(),
        }
    }

    #[test]
    fn columns_come_in_any_order_and_any_case_with_or_without_bom() {
        let expected = vec![row(2, "ada@example.com", "Ada", "user", "R&D")];
        for text in [
            "email,name,role,department\nada@example.com,Ada,user,R&D\n",
            " Role , NAME,Department,EMAIL \nuser,Ada,R&D,ada@example.com\n",
            "\u{feff}email,name,role,department\r\nada@example.com,Ada,user,R&D\r\n",
            "email,name,role,department\nada@example.com,Ada,user,R&D",
        ] {
            assert_eq!(rows(text.as_bytes()).unwrap().0, expected, "{text:?}");
        }
    }

    #[test]
    fn quoted_fields_keep_commas_quotes_and_newlines_and_lines_are_counted() {
        let text = "email,name,role\n\"ada@example.com\",\"Lovelace, Ada \"\"the first\"\"\",user\n\"bob@example.com\",\"Bob\nSecond line\",admin\ncyd@example.com,Cyd,user\n";
        let (parsed, _) = rows(text.as_bytes()).unwrap();
        assert_eq!(parsed[0], row(2, "ada@example.com", "Lovelace, Ada \"the first\"", "user", ""));
        assert_eq!(parsed[1], row(3, "bob@example.com", "Bob\nSecond line", "admin", ""));
        assert_eq!(parsed[2].line, 5, "the quoted newline moved the next row down a line");
    }

    #[test]
    fn unknown_columns_are_one_warning_and_the_department_is_optional() {
        let (parsed, warnings) =
            rows(b"email,name,role,phone,Manager\na@example.com,A,user,123,Bo\nb@example.com,B,user,4,C\n").unwrap();
        assert_eq!(warnings, ["ignored unknown columns: phone, Manager"]);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].department, "");
    }

    #[test]
    fn a_missing_column_fails_the_file_naming_it() {
        let error = rows(b"e-mail,name\nada@example.com,Ada\n").unwrap_err();
        assert_eq!(
            error,
            FileError::MissingColumns {
                missing: vec!["email", "role"],
                found: "e-mail, name".into()
            }
        );
        assert!(error.to_string().contains("no email, role columns"), "{error}");
        assert_eq!(rows(b"").unwrap_err(), FileError::Empty);
        assert_eq!(
            rows(b"email,name,role,Email\n").unwrap_err(),
            FileError::DuplicateColumn("email")
        );
    }

    #[test]
    fn a_non_utf8_file_fails_naming_the_line() {
        let error =
            rows(b"email,name,role\nada@example.com,Ada,user\nbob@example.com,Bj\xf6rn,user\n")
                .unwrap_err();
        assert_eq!(error, FileError::NotUtf8 { line: 3 });
        assert!(rows(b"em\xe9il,name,role\n").is_err());
    }

    #[test]
    fn bare_cr_line_ends_count_as_lines() {
        let (parsed, _) =
            rows(b"email,name,role\ra@example.com,A,user\rb@example.com,B,user\r").unwrap();
        let lines: Vec<u64> = parsed.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3]);
    }

    #[test]
    fn short_rows_have_empty_fields_and_blank_lines_are_skipped() {
        let (parsed, _) = rows(b"email,name,role,department\n\nada@example.com\n\nbob@example.com,Bob,user,Sales,extra\n").unwrap();
        assert_eq!(
            parsed,
            vec![
                row(3, "ada@example.com", "", "", ""),
                row(5, "bob@example.com", "Bob", "user", "Sales")
            ]
        );
    }
}
