//! [`Operations`]: the live operations of one socket, by the client's id.
//! Their result streams are polled together in the socket's own task (a
//! [`SelectAll`]), each inside its tracing span; stopping one aborts its
//! stream, so nothing of it is sent afterwards, even for an id used again.

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use async_graphql::Response;
use futures::stream::{self, AbortHandle, Abortable, BoxStream, SelectAll};
use futures::StreamExt;

use crate::metrics::{Held, Metrics};

/// What an operation's stream produced: a result, or its end (`None`).
pub(super) struct Outcome {
    pub id: Arc<str>,
    seq: u64,
    pub response: Option<Response>,
}

struct Live {
    seq: u64,
    abort: AbortHandle,
    /// Whether a result was already sent (the first one may be a request error).
    answered: bool,
    _gauge: Held,
}

#[derive(Default)]
pub(super) struct Operations {
    live: HashMap<String, Live>,
    pub results: SelectAll<BoxStream<'static, Outcome>>,
    next_seq: u64,
}

fn ws_operations(metrics: &Metrics) -> &AtomicI64 {
    &metrics.ws_operations
}

/// What became of an outcome once matched with its operation.
// Lives for one match arm; boxing the response would cost an allocation per
// event for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Matched {
    /// A result; `first` when it is the operation's first.
    Result { response: Response, first: bool },
    /// The stream ended: the operation is done (and forgotten).
    Ended,
    /// The operation was stopped meanwhile: drop it.
    Stale,
}

impl Operations {
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_live(&self, id: &str) -> bool {
        self.live.contains_key(id)
    }

    /// Starts polling `results` for operation `id`, inside `span`.
    pub fn start(
        &mut self,
        id: String,
        mut results: BoxStream<'static, Response>,
        span: tracing::Span,
        metrics: &Arc<Metrics>,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let tag: Arc<str> = Arc::from(id.as_str());
        let end = tag.clone();
        let traced = stream::poll_fn(move |cx| {
            let _entered = span.enter();
            results.poll_next_unpin(cx)
        });
        let tagged = traced
            .map(move |response| Outcome {
                id: tag.clone(),
                seq,
                response: Some(response),
            })
            .chain(stream::once(async move {
                Outcome {
                    id: end,
                    seq,
                    response: None,
                }
            }));
        let (abort, registration) = AbortHandle::new_pair();
        self.results
            .push(Abortable::new(tagged, registration).boxed());
        self.live.insert(
            id,
            Live {
                seq,
                abort,
                answered: false,
                _gauge: Metrics::hold(metrics, ws_operations),
            },
        );
    }

    /// Stops operation `id`; whether it was live.
    pub fn stop(&mut self, id: &str) -> bool {
        match self.live.remove(id) {
            Some(live) => {
                live.abort.abort();
                true
            }
            None => false,
        }
    }

    /// Stops every operation and drops their streams now.
    pub fn stop_all(&mut self) {
        self.live.clear();
        self.results.clear();
    }

    /// Matches an outcome with its live operation.
    pub fn settle(&mut self, outcome: Outcome) -> Matched {
        let Some(live) = self
            .live
            .get_mut(&*outcome.id)
            .filter(|live| live.seq == outcome.seq)
        else {
            return Matched::Stale;
        };
        match outcome.response {
            Some(response) => {
                let first = !live.answered;
                live.answered = true;
                Matched::Result { response, first }
            }
            None => {
                self.live.remove(&*outcome.id);
                Matched::Ended
            }
        }
    }
}
