//! The RTP side of a call: the socket on the port the SDP answer gave, and the task that
//! serves it. For now the echo (`DIALTONE_INBOUND=echo`); the full media path (jitter
//! buffer, decode, recorder, player) is issue 3.

use bytes::Bytes;
use dialtone_media::echo::Reflector;
use dialtone_media::g711;
use dialtone_media::jitter::{JitterBuffer, JitterConfig, Playout};
use dialtone_media::recorder::Recorder;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// What to record, and how to decode what arrives.
#[derive(Debug, Clone)]
pub struct RecordTo {
    /// The WAV file.
    pub path: PathBuf,
    /// The negotiated payload type (0 PCMU or 8 PCMA are decoded; others record silence).
    pub payload_type: u8,
}

/// The paced (20 ms) receive path of a recorded call: jitter buffer, G.711 decode, and
/// the recorder ring. Left = what the caller sent, right = what we sent back (the echo).
struct RecordPath {
    jitter: JitterBuffer,
    recorder: Recorder,
    pt: u8,
    pcm: [i16; 160],
}

impl RecordPath {
    fn push(&mut self, packet: &[u8], now: Instant) {
        let Ok(r) = rtp_rs::RtpReader::new(packet) else { return };
        if r.payload_type() != self.pt {
            return;
        }
        let payload = Bytes::copy_from_slice(r.payload());
        self.jitter.push(u16::from(r.sequence_number()), r.timestamp(), payload, now);
    }

    fn tick(&mut self, now: Instant) {
        let frame = match self.jitter.pop(now) {
            Playout::Frame(p) => {
                let n = match self.pt {
                    0 => g711::decode_ulaw(&p, &mut self.pcm),
                    8 => g711::decode_alaw(&p, &mut self.pcm),
                    _ => 0,
                };
                self.pcm[n..].fill(0);
                true
            }
            // Concealment for G.711 is silence for now (PLC comes with the media engine).
            Playout::Lost => {
                self.pcm.fill(0);
                true
            }
            Playout::Empty => false,
        };
        if frame {
            self.recorder.push(&self.pcm, &self.pcm);
        }
    }
}

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
/// re-stamped as our own stream; with `record`, also records the call to WAV.
pub fn spawn_echo(sock: StdUdpSocket, seed: u64, record: Option<RecordTo>) -> std::io::Result<MediaTask> {
    let sock = UdpSocket::from_std(sock)?;
    let mut reflector = Reflector::new(seed as u32, (seed >> 32) as u16, (seed >> 16) as u32);
    let mut rec = match record {
        Some(r) => Some(RecordPath {
            jitter: JitterBuffer::new(JitterConfig::default()),
            recorder: Recorder::start(&r.path, 8000, 2000)?,
            pt: r.payload_type,
            pcm: [0; 160],
        }),
        None => None,
    };
    Ok(MediaTask(tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let mut out = vec![0u8; 2048];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        loop {
            tokio::select! {
                r = sock.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    if let Some(rec) = rec.as_mut() {
                        rec.push(&buf[..n], Instant::now());
                    }
                    if let Some(len) = reflector.reflect(&buf[..n], &mut out) {
                        let _ = sock.send_to(&out[..len], from).await;
                    }
                }
                _ = tick.tick(), if rec.is_some() => {
                    if let Some(rec) = rec.as_mut() {
                        rec.tick(Instant::now());
                    }
                }
            }
        }
    })))
}
