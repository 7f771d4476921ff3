//! The lab's event source: a small server-sent-events server on rustls with the lab's
//! certificate (`https://target.lab:8443/events`, on 198.18.0.2 in `qdlab`) and a UDP
//! sender from the same address, both emitting only when told to.
//!
//! The sockets are made inside the lab namespace and then served from ordinary threads
//! of the calling process (a socket stays in the namespace it was made in), so a test or
//! a bench run drives the source with plain calls: [`EventServer::send_sse`] writes an
//! event to every subscriber, cut into as many TLS records (and TCP segments) as asked;
//! [`EventServer::send_udp`] sends one datagram, to an address or to a multicast group
//! such as [`UDP_GROUP`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::{LabPaths, NETNS, TARGET_IP};
use crate::Error;

/// The SSE server's port on [`TARGET_IP`].
pub const EVENTS_PORT: u16 = 8443;
/// The stream's path.
pub const EVENTS_PATH: &str = "/events";
/// The UDP feed's port, on the appliance's address (AF_XDP) and the kernel path's.
pub const UDP_PORT: u16 = 9000;
/// The port datagrams leave from.
pub const UDP_SOURCE_PORT: u16 = 9001;
/// A multicast group for the UDP feed (administratively scoped, RFC 2365): datagrams to
/// it leave the namespace by `qd1` only, with a TTL of 1.
pub const UDP_GROUP: Ipv4Addr = Ipv4Addr::new(239, 18, 0, 1);

type Stream = StreamOwned<ServerConnection, TcpStream>;

/// One open stream and the address of its client.
#[derive(Debug)]
struct Subscriber {
    peer: Ipv4Addr,
    stream: Stream,
}

/// The running server; dropping it stops accepting and closes every stream.
#[derive(Debug)]
pub struct EventServer {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    udp: UdpSocket,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::EventServer { what, source }
}

/// Runs `f` on a thread inside the lab namespace.
fn in_lab<T: Send>(f: impl FnOnce() -> io::Result<T> + Send) -> Result<T, Error> {
    let ns = File::open(format!("/run/netns/{NETNS}")).map_err(io_error("open the lab netns"))?;
    thread::scope(|s| {
        s.spawn(|| {
            move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))?;
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
    .map_err(io_error("sockets in the lab netns"))
}

fn tls_config(paths: &LabPaths) -> Result<Arc<ServerConfig>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&paths.server_cert)
        .and_then(|i| i.collect())
        .map_err(|e| io_error("read the lab certificate")(io::Error::other(e)))?;
    let key = PrivateKeyDer::from_pem_file(&paths.server_key)
        .map_err(|e| io_error("read the lab key")(io::Error::other(e)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| io_error("TLS config")(io::Error::other(e)))?;
    Ok(Arc::new(config))
}

impl EventServer {
    /// Starts listening on 198.18.0.2:8443 (TLS) and binds the UDP sender, in the lab
    /// namespace. The lab must be up.
    pub fn start(paths: &LabPaths) -> Result<EventServer, Error> {
        let config = tls_config(paths)?;
        let (listener, udp) = in_lab(|| {
            let listener = TcpListener::bind(SocketAddrV4::new(TARGET_IP, EVENTS_PORT))?;
            let udp = UdpSocket::bind(SocketAddrV4::new(TARGET_IP, UDP_SOURCE_PORT))?;
            // Datagrams to a group leave by qd1 (the interface of TARGET_IP), with no
            // route for the group needed, and are not looped back into the namespace.
            let sock = socket2::SockRef::from(&udp);
            sock.set_multicast_if_v4(&TARGET_IP)?;
            sock.set_multicast_loop_v4(false)?;
            Ok((listener, udp))
        })?;
        listener
            .set_nonblocking(true)
            .map_err(io_error("listener"))?;
        let subscribers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (subscribers, stop) = (subscribers.clone(), stop.clone());
            thread::Builder::new()
                .name("lab-events".into())
                .spawn(move || accept_loop(&listener, &config, &subscribers, &stop))
                .map_err(io_error("spawn the accept thread"))?
        };
        Ok(EventServer {
            subscribers,
            udp,
            stop,
            accept: Some(accept),
        })
    }

    /// Streams open now.
    pub fn subscribers(&self) -> usize {
        self.subscribers.lock().map_or(0, |s| s.len())
    }

    /// Streams open now from client address `peer`.
    pub fn subscribed(&self, peer: Ipv4Addr) -> usize {
        self.subscribers
            .lock()
            .map_or(0, |s| s.iter().filter(|s| s.peer == peer).count())
    }

    /// Waits (bounded) until `n` streams are open.
    pub fn wait_subscribers(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.subscribers() >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Writes `event` (complete SSE text, ending in its blank line) to every stream: one
    /// chunk per piece, the pieces cut at `splits`, each in its own TLS record, flushed,
    /// with `pause` between pieces so they leave as separate TCP segments. Streams that
    /// fail are dropped. Returns how many streams it reached.
    pub fn send_sse(&self, event: &[u8], splits: &[usize], pause: Duration) -> usize {
        self.send_sse_to(None, event, splits, pause)
    }

    /// [`send_sse`](Self::send_sse) to the streams of client address `peer` only (all
    /// when `None`): the bench sends each backend its own events.
    pub fn send_sse_to(
        &self,
        peer: Option<Ipv4Addr>,
        event: &[u8],
        splits: &[usize],
        pause: Duration,
    ) -> usize {
        let Ok(mut subscribers) = self.subscribers.lock() else {
            return 0;
        };
        let mut cuts: Vec<usize> = splits
            .iter()
            .copied()
            .filter(|&c| c > 0 && c < event.len())
            .collect();
        cuts.push(event.len());
        let mut at = 0;
        let mut alive = vec![true; subscribers.len()];
        for (i, &cut) in cuts.iter().enumerate() {
            let piece = &event[at..cut];
            at = cut;
            let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
            chunk.extend_from_slice(piece);
            chunk.extend_from_slice(b"\r\n");
            for (s, ok) in subscribers.iter_mut().zip(alive.iter_mut()) {
                if *ok && peer.is_none_or(|p| p == s.peer) {
                    let w = &mut s.stream;
                    *ok = w.write_all(&chunk).and_then(|()| w.flush()).is_ok();
                }
            }
            if i + 1 < cuts.len() && !pause.is_zero() {
                thread::sleep(pause);
            }
        }
        let mut i = 0;
        subscribers.retain(|_| {
            i += 1;
            alive[i - 1]
        });
        subscribers.len()
    }

    /// Closes every stream (close_notify, then FIN): subscribers must reconnect.
    pub fn close_streams(&self) {
        if let Ok(mut subscribers) = self.subscribers.lock() {
            for mut s in subscribers.drain(..) {
                s.stream.conn.send_close_notify();
                let _ = s.stream.flush();
            }
        }
    }

    /// Sends `payload` as one datagram from 198.18.0.2:9001 to `to`, a unicast address or
    /// a multicast group (sent on `qd1`, TTL 1).
    pub fn send_udp(&self, to: SocketAddrV4, payload: &[u8]) -> Result<(), Error> {
        self.udp
            .send_to(payload, to)
            .map(drop)
            .map_err(io_error("send a datagram"))
    }
}

impl Drop for EventServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        self.close_streams();
    }
}

fn accept_loop(
    listener: &TcpListener,
    config: &Arc<ServerConfig>,
    subscribers: &Arc<Mutex<Vec<Subscriber>>>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let (config, subscribers) = (config.clone(), subscribers.clone());
                // The handshake and the request on their own thread, bounded by timeouts.
                let _ = thread::Builder::new()
                    .name("lab-events-conn".into())
                    .spawn(move || {
                        if let (Ok(stream), SocketAddr::V4(peer)) =
                            (subscribe(stream, config), peer)
                        {
                            if let Ok(mut all) = subscribers.lock() {
                                all.push(Subscriber {
                                    peer: *peer.ip(),
                                    stream,
                                });
                            }
                        }
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2))
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// TLS, the request head, and the stream's head; the stream is then written to only.
fn subscribe(stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<Stream> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut s = StreamOwned::new(conn, stream);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf)?;
        if n == 0 || head.len() > 8192 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let wanted = format!("GET {EVENTS_PATH} HTTP/1.1");
    if line != wanted.as_bytes() {
        s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        s.flush()?;
        return Err(io::ErrorKind::NotFound.into());
    }
    s.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    )?;
    // A comment first: the client sees the stream is live.
    s.write_all(b"b\r\n: welcome\n\n\r\n")?;
    s.flush()?;
    s.sock.set_read_timeout(None)?;
    Ok(s)
}

/// The UDP feed's address on each backend: the appliance's (AF_XDP) or the kernel path's.
pub fn udp_feed(backend_ip: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(backend_ip, UDP_PORT)
}
