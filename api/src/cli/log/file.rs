//! The export file: JSON lines, versioned by its first line.
//!
//! Line 1 is the header `{"format":"tickets-log","version":1}`; every other
//! line is one event, in log order:
//! `{"id","position","stream","version","type","schemaVersion","data",
//! "metadata","recordedAt","hash"}` (`position` as the store's cursor, a
//! string; `recordedAt` RFC 3339 UTC). A reader refuses a header it does not
//! know, so a later format cannot be misread as this one.

use std::io::{BufRead, Write};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::{NewEvent, Position, RecordedEvent};
use uuid::Uuid;

/// The `format` of the header line.
pub const FORMAT: &str = "tickets-log";
/// The line format this build writes and reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
}

/// One event line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Line {
    pub id: Uuid,
    pub position: String,
    pub stream: String,
    pub version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: i32,
    pub data: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
    pub hash: String,
}

impl From<RecordedEvent> for Line {
    fn from(e: RecordedEvent) -> Self {
        Line {
            id: e.id,
            position: e.position.to_cursor(),
            stream: e.stream_id,
            version: e.version,
            event_type: e.event_type,
            schema_version: e.schema_version,
            data: e.data,
            metadata: e.metadata,
            recorded_at: e.recorded_at,
            hash: e.hash,
        }
    }
}

impl Line {
    /// The event as the source store recorded it (for checking).
    pub fn recorded(self) -> anyhow::Result<RecordedEvent> {
        let position: Position = self.position.parse()?;
        Ok(RecordedEvent {
            id: self.id,
            position,
            stream_id: self.stream,
            version: self.version,
            event_type: self.event_type,
            schema_version: self.schema_version,
            data: self.data,
            metadata: self.metadata,
            recorded_at: self.recorded_at,
            hash: self.hash,
        })
    }
}

/// The event to append again.
pub fn new_event(e: &RecordedEvent) -> NewEvent {
    NewEvent {
        id: e.id,
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        data: e.data.clone(),
        metadata: e.metadata.clone(),
    }
}

pub fn write_header(out: &mut dyn Write) -> anyhow::Result<()> {
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
    };
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n").context("writing the export")
}

pub fn write_event(out: &mut dyn Write, event: RecordedEvent) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, &Line::from(event))?;
    out.write_all(b"\n").context("writing the export")
}

/// The events of an export, read one line at a time after its header.
pub struct Reader<R> {
    lines: std::io::Lines<R>,
    line: usize,
}

impl<R: BufRead> Reader<R> {
    /// Reads and checks the header.
    pub fn open(input: R) -> anyhow::Result<Self> {
        let mut lines = input.lines();
        let first = lines
            .next()
            .context("the file is empty, not an export")?
            .context("reading line 1")?;
        let header: Header = serde_json::from_str(&first)
            .context("line 1 is not the header of a `tickets log export` file")?;
        if header.format != FORMAT || header.version != VERSION {
            bail!(
                "line 1: format {:?} version {}; this build reads {FORMAT:?} version {VERSION}",
                header.format,
                header.version
            );
        }
        Ok(Reader { lines, line: 1 })
    }

    /// The next event, `None` at the end of the file.
    pub fn next_event(&mut self) -> anyhow::Result<Option<RecordedEvent>> {
        let Some(text) = self.lines.next() else {
            return Ok(None);
        };
        self.line += 1;
        let line = self.line;
        let text = text.with_context(|| format!("reading line {line}"))?;
        let parsed: Line = serde_json::from_str(&text)
            .with_context(|| format!("line {line} is not an exported event"))?;
        parsed
            .recorded()
            .map(Some)
            .with_context(|| format!("line {line}"))
    }
}
