//! A store that passes everything on to a real one, except the failures a
//! test switches on: the head not answering, or the next reads of the log
//! failing as a busy store's would.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use store::{
    AppendResult, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError,
};

pub struct Faulty {
    inner: Arc<dyn EventStore>,
    /// `head` fails while set.
    pub head_down: AtomicBool,
    /// How many of the next `read_all` calls fail.
    pub read_all_failures: AtomicU32,
}

impl Faulty {
    /// A store with no failure switched on.
    pub fn new(inner: Arc<dyn EventStore>) -> Faulty {
        Faulty {
            inner,
            head_down: AtomicBool::new(false),
            read_all_failures: AtomicU32::new(0),
        }
    }
}

#[async_trait]
impl EventStore for Faulty {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version, max).await
    }

    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let failing = self
            .read_all_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::Unavailable("pool timed out".into()));
        }
        self.inner.read_all(after, max).await
    }

    async fn head(&self) -> Result<Position, StoreError> {
        if self.head_down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("not yet".into()));
        }
        self.inner.head().await
    }

    fn subscribe_all(
        &self,
        after: Position,
    ) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        self.inner.subscribe_all(after)
    }
}
