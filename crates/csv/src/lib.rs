//! CSV for SecureAI user management: reading an import file into the
//! domain's rows ([`CsvFile`], the `RowSource` port) and writing CSV for
//! people (the skipped rows of an import; cells defused against formula
//! injection).

mod read;
mod write;

pub use read::{CsvFile, CsvRows};
pub use write::{SKIPPED_ROWS_HEADER, safe_cell, write_skipped_rows};
