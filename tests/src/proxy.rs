//! [`StallingProxy`]: a TCP proxy on loopback that forwards to a server and
//! can stop forwarding on demand, for tests of what the product does while
//! its database is there but does not answer (a network partition, a server
//! stuck in a long checkpoint), or goes away for a while and comes back (a
//! restart: [`StallingProxy::restart`]).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Forwards every connection made to [`StallingProxy::address`] to `target`,
/// byte for byte, until [`StallingProxy::stall`]; bytes that arrive while it
/// is stalled wait, undelivered, until [`StallingProxy::resume`].
pub struct StallingProxy {
    address: String,
    stalled: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    /// Both ends of every forwarded connection, to cut them at a restart.
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// Until when new connections are closed at once.
    down_until: Arc<Mutex<Option<Instant>>>,
}

impl StallingProxy {
    /// Listens on a free loopback port and forwards to `target` (`host:port`).
    pub fn start(target: &str) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let address = listener.local_addr().expect("proxy address").to_string();
        let stalled = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let down_until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let target = target.to_string();
        let (stall, close) = (stalled.clone(), closed.clone());
        let (tracked, down) = (open.clone(), down_until.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if close.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if down
                    .lock()
                    .unwrap()
                    .is_some_and(|until| Instant::now() < until)
                {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut ends = tracked.lock().unwrap();
                ends.extend(client.try_clone());
                ends.extend(server.try_clone());
                drop(ends);
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    if let (Ok(from), Ok(to)) = (from, to) {
                        let (stall, close) = (stall.clone(), close.clone());
                        thread::spawn(move || pump(from, to, &stall, &close));
                    }
                }
            }
        });
        StallingProxy {
            address,
            stalled,
            closed,
            open,
            down_until,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Stops forwarding: connections stay open, nothing arrives.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Forwards again, first whatever waited.
    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    /// What a database restart looks like to its clients: every open
    /// connection is cut, and new ones are closed at once for `down`; then
    /// connections are forwarded again.
    pub fn restart(&self, down: Duration) {
        *self.down_until.lock().unwrap() = Some(Instant::now() + down);
        for end in self.open.lock().unwrap().drain(..) {
            let _ = end.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        self.stalled.store(false, Ordering::SeqCst);
        // Wakes the accept loop so it sees `closed`.
        let _ = TcpStream::connect(&self.address);
    }
}

/// Copies `from` to `to`, holding each chunk while stalled.
fn pump(mut from: TcpStream, mut to: TcpStream, stalled: &AtomicBool, closed: &AtomicBool) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) && !closed.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(10));
        }
        if closed.load(Ordering::SeqCst) || to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
