//! The SIP driver: owns the UDP socket, the TCP listener and connections, and the clock,
//! and runs the sans-IO [`UserAgent`] in one loop (DESIGN.md, "Sans-IO protocol cores").
//!
//! One task runs the loop: it `select!`s over the UDP socket, frames from TCP connection
//! tasks, the application's commands and the next timer, feeds one input, then drains
//! every transmit and event. TCP and TLS connections are reused for every message to the
//! same peer address, whichever side opened them; the ones we open send an RFC 5626
//! CRLFCRLF keep-alive every 30 s.

use bytes::Bytes;
use dialtone_sip::ua::{UaEvent, UserAgent};
use dialtone_sip::{Destination, Malformed, Message, StreamParser, Transport};
use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// What an application built on the driver does with UA events and its own timers.
pub trait App {
    /// A UA event.
    fn on_event(&mut self, ev: UaEvent, ua: &mut UserAgent, now: Instant);
    /// The app's own next deadline, if any.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// Called when the app's deadline passes.
    fn on_timeout(&mut self, _ua: &mut UserAgent, _now: Instant) {}
    /// Ctrl-C (or a SIGTERM [`App::on_terminate`] did not take): end calls cleanly.
    fn on_interrupt(&mut self, _ua: &mut UserAgent, _now: Instant) {}
    /// The first SIGTERM: whether the app drains (finishes its calls, takes no new ones)
    /// instead of [`App::on_interrupt`]'s clean hang-up.
    fn on_terminate(&mut self, _ua: &mut UserAgent, _now: Instant) -> bool {
        false
    }
    /// Someone called [`Driver::waker`]'s `notify_one`: commands are waiting (the API).
    fn on_wake(&mut self, _ua: &mut UserAgent, _now: Instant) {}
    /// After each turn of the loop (a datagram, a frame, a timer, a wake): what the UA
    /// counted on its own (refusals it answered without an event) can be published.
    fn after_turn(&mut self, _ua: &UserAgent) {}
    /// Whether the driver loop should stop.
    fn finished(&self) -> bool {
        false
    }
}

enum Input {
    Frame { peer: Destination, frame: Result<Message, Malformed> },
    Opened { peer: Destination, tx: mpsc::UnboundedSender<Bytes> },
    Closed { peer: Destination },
    ConnectFailed { peer: Destination },
}

/// How often a connection we opened sends a CRLFCRLF keep-alive (RFC 5626 §3.5.1).
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// The bound sockets, before the loop starts.
pub struct Sockets {
    /// UDP socket.
    pub udp: Arc<UdpSocket>,
    /// TCP listener.
    pub tcp: TcpListener,
    /// TLS listener and its certificate, if SIP over TLS is served.
    pub tls: Option<(TcpListener, crate::tls::Server)>,
}

impl Sockets {
    /// Binds UDP and TCP on `addr` (the same port for both; with port 0, UDP picks it).
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Sockets> {
        let udp = bind_udp(addr).map_err(|e| anyhow::anyhow!("binding UDP {addr}: {e}"))?;
        let port = udp.local_addr()?.port();
        let tcp_addr = SocketAddr::new(addr.ip(), port);
        let tcp = TcpListener::bind(tcp_addr).await.map_err(|e| anyhow::anyhow!("binding TCP {tcp_addr}: {e}"))?;
        Ok(Sockets { udp: Arc::new(udp), tcp, tls: None })
    }

    /// Also serves SIP over TLS on `addr` with `server`'s certificate.
    pub async fn with_tls(mut self, addr: SocketAddr, server: crate::tls::Server) -> anyhow::Result<Sockets> {
        let l = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("binding TLS {addr}: {e}"))?;
        self.tls = Some((l, server));
        Ok(self)
    }

    /// The bound TLS address, if any.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.udp.local_addr().expect("bound socket has an address")
    }
}

/// A UDP socket with large kernel buffers, so bursts of signalling are not dropped
/// while the loop is busy.
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = sock.set_recv_buffer_size(8 << 20);
    let _ = sock.set_send_buffer_size(8 << 20);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// The driver loop's state.
pub struct Driver {
    ua: UserAgent,
    udp: Arc<UdpSocket>,
    trace: bool,
    conns: HashMap<Destination, mpsc::UnboundedSender<Bytes>>,
    connecting: HashMap<Destination, Vec<Bytes>>,
    tls: Option<crate::tls::Client>,
    in_tx: mpsc::UnboundedSender<Input>,
    in_rx: mpsc::UnboundedReceiver<Input>,
    linger: std::time::Duration,
    wake: Arc<tokio::sync::Notify>,
    /// Sees every message sent and received (the calls' SIP ladders).
    wire: Option<WireTap>,
}

/// Told of every SIP message the driver sends (`true`) or receives (`false`): its peer
/// and its bytes.
pub type WireTap = Arc<dyn Fn(bool, &Destination, &Bytes) + Send + Sync>;

fn trace_msg(dir: &str, dest: &Destination, data: &[u8]) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "{dir} {} {} ({} bytes)\n{}",
        dest.transport,
        dest.addr,
        data.len(),
        String::from_utf8_lossy(data).trim_end()
    );
    let _ = writeln!(err, "--");
}

impl Driver {
    /// Starts accepting TCP connections and returns the driver.
    pub fn new(ua: UserAgent, sockets: Sockets, trace: bool) -> Driver {
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let listener = sockets.tcp;
        let tx = in_tx.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let peer = Destination { transport: Transport::Tcp, addr: peer };
                        tokio::spawn(connection(stream, peer, tx.clone(), false));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TCP accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
        if let Some((listener, server)) = sockets.tls {
            let tx = in_tx.clone();
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, peer)) => {
                            let _ = stream.set_nodelay(true);
                            let (acceptor, tx) = (server.acceptor(), tx.clone());
                            tokio::spawn(async move {
                                let handshake = acceptor.accept(stream);
                                match tokio::time::timeout(std::time::Duration::from_secs(10), handshake).await {
                                    Ok(Ok(tls)) => {
                                        let peer = Destination { transport: Transport::Tls, addr: peer };
                                        connection(tls, peer, tx, false).await
                                    }
                                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                }
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "TLS accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
        Driver {
            ua,
            udp: sockets.udp,
            trace,
            wire: None,
            conns: HashMap::new(),
            connecting: HashMap::new(),
            tls: None,
            in_tx,
            in_rx,
            linger: std::time::Duration::ZERO,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Opens TLS connections with `client` (without one, a TLS destination fails).
    pub fn set_tls_client(&mut self, client: crate::tls::Client) {
        self.tls = Some(client);
    }

    /// Hands every message sent and received to `tap`.
    pub fn set_wire_tap(&mut self, tap: WireTap) {
        self.wire = Some(tap);
    }

    /// How long [`Driver::run`] keeps TCP connections open once the app has finished.
    pub fn set_linger(&mut self, linger: std::time::Duration) {
        self.linger = linger;
    }

    /// Wakes the loop from another task: it then calls [`App::on_wake`].
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// The UA, for commands before the loop starts.
    pub fn ua(&mut self) -> &mut UserAgent {
        &mut self.ua
    }

    /// Runs until the app says it is finished.
    pub async fn run<A: App>(&mut self, app: &mut A) -> anyhow::Result<()> {
        // One receive buffer; each datagram is copied out at its exact size, so the
        // header slices a call keeps pin ~1 KB, not the whole 64 KB buffer.
        let mut buf = vec![0u8; 1 << 16];
        let (mut interrupted, mut draining) = (0u32, false);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        self.flush(app, Instant::now()).await;
        while !app.finished() {
            let deadline = match (self.ua.poll_timeout(), app.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => {
                    let now = Instant::now();
                    match r {
                        Ok((n, from)) => {
                            let data = Bytes::copy_from_slice(&buf[..n]);
                            let src = Destination { transport: Transport::Udp, addr: from };
                            if self.trace {
                                trace_msg("<<< recv", &src, &data);
                            }
                            if let Some(tap) = &self.wire {
                                tap(false, &src, &data);
                            }
                            self.ua.on_datagram(data, src, now);
                        }
                        Err(e) => tracing::debug!(error = %e, "UDP receive error"),
                    }
                }
                Some(input) = self.in_rx.recv() => {
                    let now = Instant::now();
                    self.on_input(input, now);
                }
                _ = sleep => {
                    let now = Instant::now();
                    self.ua.handle_timeout(now);
                    if app.poll_timeout().is_some_and(|t| t <= now) {
                        app.on_timeout(&mut self.ua, now);
                    }
                }
                _ = self.wake.notified() => {
                    app.on_wake(&mut self.ua, Instant::now());
                }
                signal = stop_signal(&mut term) => {
                    let now = Instant::now();
                    if signal == Stop::Terminate && !draining && interrupted == 0 && app.on_terminate(&mut self.ua, now) {
                        draining = true;
                        tracing::info!("SIGTERM: draining (Ctrl-C or SIGTERM again to end the calls now)");
                    } else {
                        interrupted += 1;
                        if interrupted > 1 {
                            anyhow::bail!("interrupted");
                        }
                        tracing::info!("interrupted: ending calls (Ctrl-C or SIGTERM again to quit at once)");
                        app.on_interrupt(&mut self.ua, now);
                    }
                }
            }
            app.after_turn(&self.ua);
            self.flush(app, Instant::now()).await;
        }
        // Let the last messages (ACK, BYE response) leave.
        self.flush(app, Instant::now()).await;
        // Keep open TCP connections until the peer closes them or `linger` passes: a
        // peer in its post-BYE wait (SIPp's uas keeps 4 s) may count our close as a
        // failure, and retransmissions could still need the connection.
        let until = tokio::time::Instant::now() + self.linger;
        while !self.conns.is_empty() {
            tokio::select! {
                Some(input) = self.in_rx.recv() => {
                    let now = Instant::now();
                    self.on_input(input, now);
                }
                _ = tokio::time::sleep_until(until) => break,
            }
            self.flush(app, Instant::now()).await;
        }
        Ok(())
    }

    fn on_input(&mut self, input: Input, now: Instant) {
        match input {
            Input::Frame { peer, frame } => {
                let src = peer;
                match frame {
                    Ok(msg) => {
                        if self.trace || self.wire.is_some() {
                            let bytes = msg.to_bytes();
                            if self.trace {
                                trace_msg("<<< recv", &src, &bytes);
                            }
                            if let Some(tap) = &self.wire {
                                tap(false, &src, &bytes);
                            }
                        }
                        self.ua.on_message(msg, src, now);
                    }
                    Err(bad) => self.ua.on_malformed(bad, src),
                }
            }
            Input::Opened { peer, tx } => {
                for data in self.connecting.remove(&peer).unwrap_or_default() {
                    let _ = tx.send(data);
                }
                self.conns.insert(peer, tx);
            }
            Input::Closed { peer } => {
                self.conns.remove(&peer);
            }
            Input::ConnectFailed { peer } => {
                self.connecting.remove(&peer);
                self.ua.transport_error(&peer, now);
            }
        }
    }

    async fn flush<A: App>(&mut self, app: &mut A, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.ua.poll_transmit() {
                progressed = true;
                if self.trace {
                    trace_msg(">>> send", &t.dest, &t.data);
                }
                if let Some(tap) = &self.wire {
                    tap(true, &t.dest, &t.data);
                }
                self.send(t.dest, t.data).await;
            }
            while let Some(ev) = self.ua.poll_event() {
                progressed = true;
                app.on_event(ev, &mut self.ua, now);
            }
            if !progressed {
                break;
            }
        }
    }

    async fn send(&mut self, dest: Destination, data: Bytes) {
        match dest.transport {
            Transport::Udp => {
                let r = match self.udp.try_send_to(&data, dest.addr) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.udp.send_to(&data, dest.addr).await,
                    r => r,
                };
                if let Err(e) = r {
                    tracing::debug!(error = %e, to = %dest.addr, "UDP send failed");
                }
            }
            Transport::Tcp | Transport::Tls => {
                if let Some(tx) = self.conns.get(&dest) {
                    if tx.send(data.clone()).is_ok() {
                        return;
                    }
                    self.conns.remove(&dest);
                }
                if let Some(q) = self.connecting.get_mut(&dest) {
                    q.push(data);
                    return;
                }
                let tls = match (dest.transport, &self.tls) {
                    (Transport::Tls, Some(c)) => Some(c.for_peer(dest.addr)),
                    (Transport::Tls, None) => {
                        tracing::warn!(to = %dest.addr, "no TLS client configured");
                        let _ = self.in_tx.send(Input::ConnectFailed { peer: dest });
                        return;
                    }
                    _ => None,
                };
                self.connecting.insert(dest, vec![data]);
                let in_tx = self.in_tx.clone();
                tokio::spawn(async move {
                    let limit = std::time::Duration::from_secs(10);
                    let stream = match tokio::time::timeout(limit, TcpStream::connect(dest.addr)).await {
                        Ok(Ok(stream)) => stream,
                        _ => {
                            let _ = in_tx.send(Input::ConnectFailed { peer: dest });
                            return;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let Some((connector, name)) = tls else { return connection(stream, dest, in_tx, true).await };
                    match tokio::time::timeout(limit, connector.connect(name.clone(), stream)).await {
                        Ok(Ok(tls)) => connection(tls, dest, in_tx, true).await,
                        Ok(Err(e)) => {
                            tracing::warn!(to = %dest.addr, name = ?name, error = %e, "TLS connection refused");
                            let _ = in_tx.send(Input::ConnectFailed { peer: dest });
                        }
                        Err(_) => {
                            tracing::warn!(to = %dest.addr, "TLS handshake timed out");
                            let _ = in_tx.send(Input::ConnectFailed { peer: dest });
                        }
                    }
                });
            }
            _ => tracing::warn!(transport = %dest.transport, "transport not supported"),
        }
    }
}

/// Runs one TCP or TLS connection: frames what it reads, writes what the driver queues;
/// one we opened (`keepalive`) sends a CRLFCRLF every [`KEEPALIVE`].
async fn connection<S>(stream: S, peer: Destination, in_tx: mpsc::UnboundedSender<Input>, keepalive: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    if in_tx.send(Input::Opened { peer, tx: tx.clone() }).is_err() {
        return;
    }
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            let data = tokio::select! {
                d = rx.recv() => match d {
                    Some(d) => d,
                    None => break,
                },
                _ = tick.tick(), if keepalive => Bytes::from_static(b"\r\n\r\n"),
            };
            if wr.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let mut parser = StreamParser::new();
    let mut buf = vec![0u8; 1 << 16];
    'read: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        parser.push(&buf[..n]);
        loop {
            let pings = parser.pings;
            let next = parser.next_message();
            for _ in pings..parser.pings {
                // RFC 5626 §3.5.1: answer a CRLFCRLF keep-alive with CRLF.
                let _ = tx.send(Bytes::from_static(b"\r\n"));
            }
            match next {
                Ok(Some(msg)) => {
                    if in_tx.send(Input::Frame { peer, frame: Ok(msg) }).is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(bad) => {
                    // The stream cannot be framed any more: answer if we can, then close.
                    let _ = in_tx.send(Input::Frame { peer, frame: Err(bad) });
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    break 'read;
                }
            }
        }
    }
    drop(tx);
    let _ = in_tx.send(Input::Closed { peer });
    writer.abort();
}

/// Which stop signal came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Ctrl-C (SIGINT): end the calls cleanly (BYE, RTCP BYE, recordings finalized), exit.
    Interrupt,
    /// SIGTERM (what `kill`, service managers and orchestrators send): the app may drain
    /// first ([`App::on_terminate`]).
    Terminate,
}

async fn stop_signal(term: &mut Option<tokio::signal::unix::Signal>) -> Stop {
    match term {
        Some(t) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Stop::Interrupt,
                _ = t.recv() => Stop::Terminate,
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
            Stop::Interrupt
        }
    }
}
