//! The RTP side of a call: the socket on the port the SDP answer gave, and the task that
//! serves it. For now the echo (`DIALTONE_INBOUND=echo`); the full media path (jitter
//! buffer, decode, recorder, player) is issue 3.

use dialtone_media::echo::Reflector;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// A running media task; dropping it stops the task and closes the socket.
#[derive(Debug)]
pub struct MediaTask(JoinHandle<()>);

impl Drop for MediaTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds the RTP socket for a call (on `ip`, the SIP listen address, at `port`).
pub fn bind_rtp(ip: IpAddr, port: u16) -> std::io::Result<StdUdpSocket> {
    let s = StdUdpSocket::bind(SocketAddr::new(ip, port))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Echoes every valid RTP packet back to where it came from (symmetric RTP, RFC 4961),
/// re-stamped as our own stream.
pub fn spawn_echo(sock: StdUdpSocket, seed: u64) -> std::io::Result<MediaTask> {
    let sock = UdpSocket::from_std(sock)?;
    let mut reflector = Reflector::new(seed as u32, (seed >> 32) as u16, (seed >> 16) as u32);
    Ok(MediaTask(tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let mut out = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else { continue };
            if let Some(len) = reflector.reflect(&buf[..n], &mut out) {
                let _ = sock.send_to(&out[..len], from).await;
            }
        }
    })))
}
