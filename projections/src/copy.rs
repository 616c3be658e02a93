//! Rows for PostgreSQL's `COPY ... FROM STDIN (FORMAT binary)`: how a
//! rebuild loads the tables it only inserts into
//! ([`crate::BulkLoad::load_batch`]). COPY inserts rows a page at a time
//! instead of one executor row at a time, and the binary format is what the
//! extended protocol binds parameters in, so each value is stored exactly as
//! an `INSERT` would store it (times in whole microseconds, truncated).
//!
//! The format (PostgreSQL's documentation, "COPY", "Binary Format"): a
//! header, then per row the number of fields and each field as its length
//! and its bytes in the type's binary send format, then a trailer.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// PostgreSQL's epoch for times: 2000-01-01 00:00:00 UTC.
const POSTGRES_EPOCH: DateTime<Utc> = match DateTime::from_timestamp(946_684_800, 0) {
    Some(epoch) => epoch,
    None => panic!("2000-01-01 is a valid time"),
};

/// Rows of one table being built for one COPY.
pub(crate) struct CopyRows {
    buf: Vec<u8>,
    columns: i16,
}

impl CopyRows {
    /// Rows of `columns` fields each, as the COPY statement lists them.
    pub fn new(columns: i16) -> CopyRows {
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(SIGNATURE);
        // Flags (no OIDs) and the length of the header extension (none).
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        CopyRows { buf, columns }
    }

    /// Starts a row: exactly `columns` fields must follow.
    pub fn row(&mut self) -> &mut CopyRows {
        self.buf.extend_from_slice(&self.columns.to_be_bytes());
        self
    }

    fn field(&mut self, bytes: &[u8]) -> Result<&mut CopyRows, sqlx::Error> {
        let len = i32::try_from(bytes.len())
            .map_err(|_| sqlx::Error::Protocol(format!("a {} byte value", bytes.len())))?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
        Ok(self)
    }

    pub fn int8(&mut self, value: i64) -> &mut CopyRows {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn bool(&mut self, value: bool) -> &mut CopyRows {
        self.buf.extend_from_slice(&1i32.to_be_bytes());
        self.buf.push(u8::from(value));
        self
    }

    pub fn uuid(&mut self, value: Uuid) -> &mut CopyRows {
        self.buf.extend_from_slice(&16i32.to_be_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self
    }

    pub fn text(&mut self, value: &str) -> Result<&mut CopyRows, sqlx::Error> {
        self.field(value.as_bytes())
    }

    /// A text, or NULL.
    pub fn opt_text(&mut self, value: Option<&str>) -> Result<&mut CopyRows, sqlx::Error> {
        match value {
            Some(value) => self.text(value),
            None => {
                self.buf.extend_from_slice(&(-1i32).to_be_bytes());
                Ok(self)
            }
        }
    }

    /// A `jsonb` from its JSON text (checked by the server, as a bound
    /// `::jsonb` cast would be).
    pub fn jsonb(&mut self, json: &str) -> Result<&mut CopyRows, sqlx::Error> {
        let len = i32::try_from(json.len() + 1)
            .map_err(|_| sqlx::Error::Protocol(format!("a {} byte value", json.len())))?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        // The jsonb binary format's version.
        self.buf.push(1);
        self.buf.extend_from_slice(json.as_bytes());
        Ok(self)
    }

    /// A `timestamptz`: microseconds since 2000-01-01 UTC, the fraction
    /// below a microsecond dropped (as sqlx encodes a bound time).
    pub fn time(&mut self, at: DateTime<Utc>) -> Result<&mut CopyRows, sqlx::Error> {
        let micros = (at - POSTGRES_EPOCH)
            .num_microseconds()
            .ok_or_else(|| sqlx::Error::Protocol(format!("time {at} is out of range")))?;
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&micros.to_be_bytes());
        Ok(self)
    }

    /// Runs `statement` (`COPY table (columns) FROM STDIN (FORMAT binary)`)
    /// with these rows; the number of rows copied.
    pub async fn copy(
        mut self,
        conn: &mut PgConnection,
        statement: &str,
    ) -> Result<u64, sqlx::Error> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        let mut copy = conn.copy_in_raw(statement).await?;
        copy.send(self.buf).await?;
        copy.finish().await
    }
}
