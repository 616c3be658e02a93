//! [`StallingProxy`]: a TCP proxy on loopback that forwards to a server and
//! can stop forwarding on demand, for tests of what the product does while
//! its database is there but does not answer (a network partition, a server
//! stuck in a long checkpoint).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Forwards every connection made to [`StallingProxy::address`] to `target`,
/// byte for byte, until [`StallingProxy::stall`]; bytes that arrive while it
/// is stalled wait, undelivered, until [`StallingProxy::resume`].
pub struct StallingProxy {
    address: String,
    stalled: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
}

impl StallingProxy {
    /// Listens on a free loopback port and forwards to `target` (`host:port`).
    pub fn start(target: &str) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let address = listener.local_addr().expect("proxy address").to_string();
        let stalled = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicBool::new(false));
        let target = target.to_string();
        let (stall, close) = (stalled.clone(), closed.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if close.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
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
