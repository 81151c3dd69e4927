//! Instance settings kept in the database, so every instance sees the same
//! value and a change takes effect without a restart.

pub mod ports;
