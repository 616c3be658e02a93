//! One module per scenario of issue 6; each returns the rows it measured.

pub mod bulk;
pub mod commands;
pub mod fanout;
pub mod rebuild;
pub mod resume;
