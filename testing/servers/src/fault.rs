//! [`FaultProxy`]: a TCP proxy on 127.0.0.1 in front of a real server, whose
//! behaviour a test switches at runtime to what a network does to a driver:
//! connections cut after some bytes, refused (nothing listening), blackholed
//! (accepted, never answered), or an outage of some seconds that then heals.
//!
//! Threads rather than an async runtime: a test may drive it from sync or
//! async code alike, and two threads per connection are cheap at test scale.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often threads look at the mode; also the longest a switch takes to act.
const POLL: Duration = Duration::from_millis(20);

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways.
    Pass,
    /// Forward, but reset each connection once `n` bytes (both directions
    /// together) went through it.
    CutAfter(u64),
    /// Stop listening: connections are refused. Open ones are reset, as when
    /// the server process dies.
    Refuse,
    /// Accept and read, never forward and never answer. Open connections go
    /// silent too (kept open, nothing more forwarded), as when a path dies
    /// mid-transfer.
    Blackhole,
}

struct Shared {
    mode: Mutex<Fault>,
    /// Raised on every switch: connections opened before it end.
    generation: AtomicU64,
    /// The generation the acceptor has put into effect (listening or not).
    applied: AtomicU64,
    /// When set, a [`Fault::Refuse`] that turns into [`Fault::Pass`] then.
    heal_at: Mutex<Option<Instant>>,
    upstream_bytes: AtomicU64,
    downstream_bytes: AtomicU64,
    accepted: AtomicU64,
    stop: AtomicBool,
}

/// A proxy from `127.0.0.1:port` to `127.0.0.1:upstream`; stops on drop.
pub struct FaultProxy {
    /// The port clients connect to.
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts forwarding to `127.0.0.1:upstream` on a free port.
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            mode: Mutex::new(Fault::Pass),
            generation: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            heal_at: Mutex::new(None),
            upstream_bytes: AtomicU64::new(0),
            downstream_bytes: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || accept_loop(Some(listener), port, upstream, s));
        FaultProxy { port, shared, acceptor: Some(acceptor) }
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Switches the mode; connections already open end (a real fault hits
    /// them too), or go silent for [`Fault::Blackhole`]. Returns once the
    /// listener is closed or open as the mode needs.
    pub fn set(&self, fault: Fault) {
        *self.shared.heal_at.lock().unwrap() = None;
        *self.shared.mode.lock().unwrap() = fault;
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let start = Instant::now();
        while self.shared.applied.load(Ordering::SeqCst) < generation && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The mode now.
    pub fn mode(&self) -> Fault {
        *self.shared.mode.lock().unwrap()
    }

    /// Refuses connections for `duration` from now, then forwards again, as a
    /// server restart or a load balancer fail-over does.
    pub fn outage(&self, duration: Duration) {
        self.set(Fault::Refuse);
        *self.shared.heal_at.lock().unwrap() = Some(Instant::now() + duration);
    }

    /// Bytes forwarded from clients to the server so far (a test waits on it
    /// to inject a fault in the middle of a transfer).
    pub fn upstream_bytes(&self) -> u64 {
        self.shared.upstream_bytes.load(Ordering::SeqCst)
    }

    /// Bytes forwarded from the server to clients so far.
    pub fn downstream_bytes(&self) -> u64 {
        self.shared.downstream_bytes.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// On a thread of its own: once `bytes` more went upstream, an outage of
    /// `duration` (see [`FaultProxy::outage`]). The handle gives the instant
    /// it began.
    pub fn outage_after(self: &Arc<Self>, bytes: u64, duration: Duration) -> std::thread::JoinHandle<Instant> {
        let proxy = self.clone();
        let target = proxy.upstream_bytes() + bytes;
        std::thread::spawn(move || {
            proxy.wait_for_upstream_bytes(target, Duration::from_secs(60));
            let began = Instant::now();
            proxy.outage(duration);
            began
        })
    }

    /// Blocks until `n` bytes went upstream (panics after `timeout`).
    pub fn wait_for_upstream_bytes(&self, n: u64, timeout: Duration) {
        let start = Instant::now();
        while self.upstream_bytes() < n {
            assert!(start.elapsed() < timeout, "only {} of {n} bytes went through the proxy", self.upstream_bytes());
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(mut listener: Option<TcpListener>, port: u16, upstream: u16, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let heal = *shared.heal_at.lock().unwrap();
        if heal.is_some_and(|at| Instant::now() >= at) {
            *shared.heal_at.lock().unwrap() = None;
            *shared.mode.lock().unwrap() = Fault::Pass;
            shared.generation.fetch_add(1, Ordering::SeqCst);
        }
        let generation = shared.generation.load(Ordering::SeqCst);
        let mode = *shared.mode.lock().unwrap();
        if mode == Fault::Refuse {
            // Closing the socket is what makes the kernel answer RST.
            listener = None;
            shared.applied.store(generation, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => {
                // std sets SO_REUSEADDR, so the port is ours again at once.
                match TcpListener::bind(("127.0.0.1", port)) {
                    Ok(l) => listener.insert(l),
                    Err(_) => {
                        std::thread::sleep(POLL);
                        continue;
                    }
                }
            }
        };
        l.set_nonblocking(true).unwrap();
        shared.applied.store(generation, Ordering::SeqCst);
        match l.accept() {
            Ok((client, _)) => {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let s = shared.clone();
                std::thread::spawn(move || serve(client, upstream, mode, s));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn serve(client: TcpStream, upstream: u16, mode: Fault, shared: Arc<Shared>) {
    let generation = shared.generation.load(Ordering::SeqCst);
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(POLL));
    let alive =
        |shared: &Shared| !shared.stop.load(Ordering::SeqCst) && shared.generation.load(Ordering::SeqCst) == generation;
    if mode == Fault::Blackhole {
        let mut sink = [0u8; 64 << 10];
        let mut c = &client;
        while alive(&shared) {
            match c.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
        reset(&client);
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        reset(&client);
        return;
    };
    let _ = server.set_read_timeout(Some(POLL));
    let budget = match mode {
        Fault::CutAfter(n) => Some(Arc::new(AtomicU64::new(n))),
        _ => None,
    };
    let done = Arc::new(AtomicBool::new(false));
    let pump = |from: TcpStream, to: TcpStream, up: bool| {
        let shared = shared.clone();
        let budget = budget.clone();
        let done = done.clone();
        move || {
            let (mut from, mut to) = (from, to);
            let mut buf = vec![0u8; 64 << 10];
            let mut current = generation;
            // A switch to Blackhole silences this connection instead of
            // ending it: what a client sees when a path dies mid-transfer.
            let mut silent = false;
            // Whether to go on after a switch: silently for a blackhole.
            let still_open = |silent: &mut bool, current: &mut u64| {
                let now = shared.generation.load(Ordering::SeqCst);
                if now == *current {
                    return true;
                }
                if *silent || *shared.mode.lock().unwrap() != Fault::Blackhole {
                    return false;
                }
                (*silent, *current) = (true, now);
                true
            };
            while !done.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
                if !still_open(&mut silent, &mut current) {
                    break;
                }
                let n = match from.read(&mut buf) {
                    Ok(0) if silent => return,
                    Ok(0) => {
                        let _ = to.shutdown(Shutdown::Write);
                        return;
                    }
                    Ok(n) => n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
                    Err(_) => break,
                };
                // A switch while the read waited applies to what it read.
                if !still_open(&mut silent, &mut current) {
                    break;
                }
                if silent {
                    continue;
                }
                let mut n = n;
                let mut cut = false;
                if let Some(b) = &budget {
                    let left = b.load(Ordering::SeqCst);
                    if (n as u64) >= left {
                        n = left as usize;
                        cut = true;
                    }
                    b.fetch_sub(n as u64, Ordering::SeqCst);
                }
                let counter = if up { &shared.upstream_bytes } else { &shared.downstream_bytes };
                counter.fetch_add(n as u64, Ordering::SeqCst);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                if cut {
                    break;
                }
            }
            done.store(true, Ordering::SeqCst);
            reset(&from);
            reset(&to);
        }
    };
    let up = std::thread::spawn(pump(client.try_clone().unwrap(), server.try_clone().unwrap(), true));
    pump(server, client, false)();
    let _ = up.join();
}

/// Ends both directions, as a dying peer or a middlebox does (the kernel
/// answers later bytes from the peer with RST).
fn reset(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Both);
}

/// Makes `proxy` blackhole, then refuse, and calls Save, Load, Delete and
/// List of `at` (whose endpoint is the proxy) through `client` each time:
/// every call must fail within `bound`, of kind Transient, with a message
/// naming the proxy's host and the cause ("timed out", "connection
/// refused"). Prints each message with its time, for the test's output.
pub async fn assert_calls_fail_clearly(
    client: &ferry_sdk::client::DriverClient,
    at: &ferry_sdk::client::Location,
    proxy: &FaultProxy,
    bound: Duration,
) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("small.txt");
    std::fs::write(&src, "small").unwrap();
    let back = dir.path().join("back.txt");
    for (fault, cause) in [(Fault::Blackhole, "timed out"), (Fault::Refuse, "connection refused")] {
        proxy.set(fault);
        for rpc in ["save", "load", "delete", "list"] {
            let start = Instant::now();
            let call = async {
                match rpc {
                    "save" => client.save(at, &src).await,
                    "load" => client.load(at, &back).await,
                    "delete" => client.delete(at).await,
                    _ => client.list(at).await.map(drop),
                }
            };
            let err = tokio::time::timeout(bound * 2, call)
                .await
                .unwrap_or_else(|_| panic!("{rpc} against a {fault:?} endpoint still waits after {:?}", bound * 2))
                .unwrap_err();
            let took = start.elapsed();
            let text = err.to_string();
            eprintln!("{rpc} ({fault:?}) failed in {took:?}: {text}");
            assert!(took < bound, "{rpc} ({fault:?}) took {took:?}: {text}");
            assert!(text.contains(cause), "{rpc} ({fault:?}): the message should say {cause:?}: {text}");
            assert!(text.contains(&proxy.endpoint()), "{rpc} ({fault:?}): the message should name the host: {text}");
            assert_eq!(err.kind(), ferry_sdk::ErrorKind::Transient, "{rpc} ({fault:?}): {text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port; answers each connection until EOF.
    fn echo() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut c = c;
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 || c.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn roundtrip(port: u16, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut c = TcpStream::connect(("127.0.0.1", port))?;
        c.set_read_timeout(Some(Duration::from_millis(500)))?;
        c.write_all(msg)?;
        let mut got = vec![0u8; msg.len()];
        c.read_exact(&mut got)?;
        Ok(got)
    }

    #[test]
    fn passes_refuses_blackholes_and_heals() {
        let proxy = FaultProxy::start(echo());
        assert_eq!(roundtrip(proxy.port, b"hello").unwrap(), b"hello");
        assert_eq!(proxy.upstream_bytes(), 5);

        proxy.set(Fault::Refuse);
        std::thread::sleep(POLL * 3);
        let err = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);

        proxy.set(Fault::Blackhole);
        let err = roundtrip(proxy.port, b"anyone?").unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err:?}");

        proxy.outage(Duration::from_millis(300));
        std::thread::sleep(POLL * 3);
        assert!(TcpStream::connect(("127.0.0.1", proxy.port)).is_err());
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(roundtrip(proxy.port, b"back").unwrap(), b"back");
        assert_eq!(proxy.mode(), Fault::Pass);
    }

    #[test]
    fn cuts_a_connection_after_n_bytes() {
        let proxy = FaultProxy::start(echo());
        proxy.set(Fault::CutAfter(6));
        // 4 bytes up, 4 back = 8 > 6: the echo comes back short and then the connection ends.
        let err = roundtrip(proxy.port, b"abcd").unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset), "{err:?}");
        // Each connection has its own budget.
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        c.write_all(b"ab").unwrap();
        let mut got = [0u8; 2];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ab");
    }

    #[test]
    fn a_blackhole_silences_open_connections_without_closing_them() {
        let proxy = FaultProxy::start(echo());
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        c.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        c.read_exact(&mut one).unwrap();
        assert_eq!(proxy.downstream_bytes(), 1);
        proxy.set(Fault::Blackhole);
        c.write_all(b"y").unwrap();
        let err = c.read(&mut one).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err:?}");
    }

    #[test]
    fn a_switch_ends_open_connections() {
        let proxy = FaultProxy::start(echo());
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        c.read_exact(&mut one).unwrap();
        proxy.set(Fault::Refuse);
        let mut rest = [0u8; 1];
        let ended = matches!(c.read(&mut rest), Ok(0) | Err(_));
        assert!(ended, "an open connection outlived the switch");
    }
}
