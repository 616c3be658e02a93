//! The connection to EventStoreDB: one client, replaced when it gives up, and
//! every call retried with backoff while the server is unreachable or changing
//! leader.
//!
//! The 4.0.0 client reconnects by itself after a dropped connection or a
//! "not leader" answer (it switches to the leader it was told about), but the
//! call that saw the failure still fails, and when it cannot reach any node its
//! connection task stops for good: every later call fails with
//! `ConnectionClosed`. So each call here runs under a few attempts with
//! exponential backoff, and a client that stopped is replaced by a new one.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventstore::{Client, ClientSettings};

use super::translate::{is_transient, needs_new_client};
use crate::StoreError;

/// Attempts of one store call before it reports [`StoreError::Unavailable`]:
/// with [`Backoff::for_calls`] about 1.5 s of waiting, enough for a leader
/// election, short enough that a request handler answers "unavailable" soon.
const CALL_ATTEMPTS: u32 = 5;

/// A call that takes longer is treated as a lost connection. The client has no
/// deadline of its own by default, and a half-open connection would otherwise
/// hang the caller.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Exponential backoff: each delay twice the previous, up to a cap.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, cap: Duration) -> Self {
        Backoff {
            first,
            next: first,
            cap,
        }
    }

    /// For one store call: 100 ms, 200 ms, 400 ms, 800 ms.
    pub(crate) fn for_calls() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(2))
    }

    /// For a subscription, which retries for as long as it lives: from 200 ms up
    /// to 30 s between attempts.
    pub(crate) fn for_subscriptions() -> Self {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(30))
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.cap);
        delay
    }

    /// After a success: the next failure starts again from the first delay.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

/// The current client and a generation number, so that of several calls that
/// saw the same client fail, only the first replaces it.
pub(crate) struct Connection {
    settings: ClientSettings,
    runtime: tokio::runtime::Handle,
    current: Mutex<(u64, Client)>,
}

impl Connection {
    /// Creates the client. It connects on first use, so no server is needed yet.
    pub(crate) fn open(
        settings: ClientSettings,
        runtime: tokio::runtime::Handle,
    ) -> Result<Arc<Self>, StoreError> {
        let client = new_client(&settings, &runtime)?;
        Ok(Arc::new(Connection {
            settings,
            runtime,
            current: Mutex::new((0, client)),
        }))
    }

    /// The client to use now, and its generation.
    pub(crate) fn client(&self) -> (u64, Client) {
        let current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (current.0, current.1.clone())
    }

    /// Replaces the client of `generation` if `error` means it stopped for good.
    pub(crate) fn recover(&self, generation: u64, error: &eventstore::Error) {
        if !needs_new_client(error) {
            return;
        }
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.0 != generation {
            return; // another call replaced it already
        }
        match new_client(&self.settings, &self.runtime) {
            Ok(client) => *current = (generation + 1, client),
            Err(e) => tracing::warn!(error = %e, "could not create a new EventStoreDB client"),
        }
    }

    /// Runs `call` with the current client, retrying transient failures with
    /// backoff (each logged at `warn`). The last error is returned as is, for
    /// the caller to map with the context it knows.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        mut call: F,
    ) -> Result<T, eventstore::Error>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, eventstore::Error>>,
    {
        let mut backoff = Backoff::for_calls();
        let mut attempt = 1;
        loop {
            let (generation, client) = self.client();
            let outcome = tokio::time::timeout(CALL_TIMEOUT, call(client))
                .await
                .unwrap_or(Err(eventstore::Error::DeadlineExceeded));
            let error = match outcome {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            self.recover(generation, &error);
            if !is_transient(&error) || attempt >= CALL_ATTEMPTS {
                return Err(error);
            }
            let delay = backoff.next_delay();
            tracing::warn!(
                operation,
                attempt,
                error = %error,
                retry_in_ms = delay.as_millis() as u64,
                "EventStoreDB call failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

fn new_client(
    settings: &ClientSettings,
    runtime: &tokio::runtime::Handle,
) -> Result<Client, StoreError> {
    Client::with_runtime_handle(runtime.clone(), settings.clone())
        .map_err(|e| StoreError::Unavailable(format!("cannot create an EventStoreDB client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delays double from the first one, stop growing at the cap, and start over
    /// after a success.
    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<u64> = (0..5)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    /// A store call waits about 1.5 s in all before it gives up: long enough
    /// for a leader election, short enough for a request to fail fast.
    #[test]
    fn a_call_gives_up_after_about_a_second_and_a_half_of_backoff() {
        let mut backoff = Backoff::for_calls();
        let total: Duration = (1..CALL_ATTEMPTS).map(|_| backoff.next_delay()).sum();
        assert_eq!(total, Duration::from_millis(1500));
    }
}
