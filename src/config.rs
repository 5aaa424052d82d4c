//! Settings: command-line flags, then `DIALTONE_*` environment variables, then an
//! optional TOML file (`--config` / `DIALTONE_CONFIG`), then defaults.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use dialtone_sip::perimeter::{Cidr, Deny, PerimeterConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// dialtone: a SIP user agent and media engine with a control API.
#[derive(Parser, Debug)]
#[command(name = "dialtone", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the SIP endpoint (and, later, the HTTP API).
    Serve(Box<ServeArgs>),
    /// Place one call and exit: 0 if it was answered and ended cleanly.
    Call(Box<CallArgs>),
    /// Call a voice bot with a scripted caller and check its replies (README: "Testing a
    /// voice bot"). Exit 0 when every expectation held on every call, 1 when one did not,
    /// 2 when the test could not run (a bad script, target or setting).
    Test(Box<TestArgs>),
}

/// Settings shared by `serve` and `call`.
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// TOML settings file (keys are the variable names without `DIALTONE_`, lower-case).
    #[arg(long, env = "DIALTONE_CONFIG")]
    pub config: Option<PathBuf>,
    /// SIP listen address, UDP and TCP (host:port).
    #[arg(long, env = "DIALTONE_SIP_LISTEN")]
    pub sip_listen: Option<SocketAddr>,
    /// Address to advertise in Via/Contact (and SDP, unless DIALTONE_MEDIA_ADVERTISE says
    /// otherwise): a fixed public IP behind 1:1 NAT, or the address to name when listening
    /// on 0.0.0.0.
    #[arg(long, env = "DIALTONE_SIP_ADVERTISE")]
    pub sip_advertise: Option<std::net::IpAddr>,
    /// Address to advertise for media (SDP `c=`/`o=`), when it is not the SIP one.
    #[arg(long, env = "DIALTONE_MEDIA_ADVERTISE")]
    pub media_advertise: Option<std::net::IpAddr>,
    /// The nameserver for RFC 3263 lookups (NAPTR, SRV, A/AAAA), e.g. 127.0.0.1:5353; the
    /// system's otherwise.
    #[arg(long, env = "DIALTONE_DNS")]
    pub dns: Option<SocketAddr>,
    /// SIP over TLS listen address (e.g. 0.0.0.0:5061); needs DIALTONE_TLS_CERT and
    /// DIALTONE_TLS_KEY.
    #[arg(long, env = "DIALTONE_SIP_TLS_LISTEN")]
    pub sip_tls_listen: Option<SocketAddr>,
    /// Our TLS certificate chain (PEM), reloaded on SIGHUP.
    #[arg(long, env = "DIALTONE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, env = "DIALTONE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// More certificates to trust (PEM) besides Mozilla's roots, for TLS peers with a
    /// private CA.
    #[arg(long, env = "DIALTONE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// SRTP (SDES, RFC 4568): `off` (default), `optional` (offer keys in RTP/AVP, take
    /// either), `mandatory` (RTP/SAVP only). Keys go only over TLS unless
    /// DIALTONE_SRTP_ANY_TRANSPORT=true.
    #[arg(long, env = "DIALTONE_SRTP")]
    pub srtp: Option<String>,
    /// Send SDES keys over plain (not TLS) signalling too.
    #[arg(long, env = "DIALTONE_SRTP_ANY_TRANSPORT")]
    pub srtp_any_transport: Option<bool>,
    /// Data directory (recordings, database).
    #[arg(long, env = "DIALTONE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// RTP port range, e.g. 20000-20999.
    #[arg(long, env = "DIALTONE_RTP_PORTS")]
    pub rtp_ports: Option<String>,
    /// SIP URI of the outbound trunk/proxy.
    #[arg(long, env = "DIALTONE_TRUNK")]
    pub trunk: Option<String>,
    /// Trunk user name (digest auth).
    #[arg(long, env = "DIALTONE_TRUNK_USER")]
    pub trunk_user: Option<String>,
    /// Trunk password.
    #[arg(long, env = "DIALTONE_TRUNK_PASSWORD", hide_env_values = true)]
    pub trunk_password: Option<String>,
    /// Register with the trunk (`true`/`false`).
    #[arg(long, env = "DIALTONE_REGISTER")]
    pub register: Option<bool>,
    /// Record every call (`true`/`false`) under DATA_DIR/recordings.
    #[arg(id = "record_all", long = "record-all", env = "DIALTONE_RECORD")]
    pub record: Option<bool>,
    /// Print every SIP message sent and received.
    #[arg(long, env = "DIALTONE_SIP_TRACE")]
    pub sip_trace: bool,
    /// SIP timer T1 in milliseconds (T2 and T4 follow RFC 3261 unless set).
    #[arg(long, env = "DIALTONE_SIP_T1_MS")]
    pub t1_ms: Option<u64>,
    /// Session interval our INVITEs ask for (RFC 4028 Session-Expires), seconds; 0 asks
    /// for none. Default 1800.
    #[arg(long, env = "DIALTONE_SESSION_EXPIRES")]
    pub session_expires: Option<u32>,
    /// Smallest session interval accepted (Min-SE), seconds. RFC 4028 sets 90 between
    /// conforming peers (the default); lower it only for tests.
    #[arg(long, env = "DIALTONE_MIN_SE")]
    pub min_se: Option<u32>,
}

/// `dialtone serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Shared settings.
    #[command(flatten)]
    pub common: Common,
    /// HTTP API listen address.
    #[arg(long, env = "DIALTONE_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// What happens to inbound calls: echo, reject, play:<wav>, agent:<ws-url>.
    #[arg(long, env = "DIALTONE_INBOUND")]
    pub inbound: Option<String>,
    /// Ring this many milliseconds (180 Ringing) before answering inbound calls.
    #[arg(long, env = "DIALTONE_ANSWER_AFTER_MS")]
    pub answer_after_ms: Option<u64>,
    /// First admin user's e-mail.
    #[arg(long, env = "DIALTONE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// First admin user's password.
    #[arg(long, env = "DIALTONE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Server-to-server key with full access.
    #[arg(long, env = "DIALTONE_INTERNAL_KEY", hide_env_values = true)]
    pub internal_key: Option<String>,
    /// API requests a second per key or user (bursts of twice that). Default 50.
    #[arg(long, env = "DIALTONE_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// API requests a second per organization, all its keys and users together (bursts of
    /// twice that). Default 200.
    #[arg(long, env = "DIALTONE_RATE_LIMIT_ORG")]
    pub rate_limit_org: Option<f64>,
    /// API requests a second per client address (bursts of twice that). Default 200.
    #[arg(long, env = "DIALTONE_RATE_LIMIT_ADDR")]
    pub rate_limit_addr: Option<f64>,
    /// Login attempts a minute per client address. Default 10.
    #[arg(long, env = "DIALTONE_LOGIN_LIMIT")]
    pub login_limit: Option<f64>,
    /// First webhook retry after this many ms (doubling up to an hour). Default 1000.
    #[arg(long, env = "DIALTONE_WEBHOOK_RETRY_MS")]
    pub webhook_retry_ms: Option<u64>,
    /// Hang up a call after this many seconds without RTP or RTCP from the peer (not while
    /// it is on hold); 0 never. Default 60.
    #[arg(long, env = "DIALTONE_RTP_TIMEOUT")]
    pub rtp_timeout: Option<u64>,
    /// On SIGTERM, take no new calls (INVITE and OPTIONS answered 503 with Retry-After,
    /// `/healthz` 503 `draining`) and let the live calls finish for at most this many
    /// seconds before hanging them up; 0 hangs up at once. A second SIGTERM or Ctrl-C
    /// hangs up at once too. Default 20.
    #[arg(long, env = "DIALTONE_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<u64>,
    /// The store: a `postgres://` URL shared by several nodes; default the SQLite file
    /// under DIALTONE_DATA_DIR (one node).
    #[arg(long, env = "DIALTONE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// This node's name among several (unique; keep it across restarts). Default
    /// `<hostname>:<SIP port>`.
    #[arg(long, env = "DIALTONE_NODE_ID")]
    pub node_id: Option<String>,
    /// Where the other nodes reach this node's HTTP API (`http://host:port`). Default
    /// `http://<DIALTONE_HTTP_LISTEN>`.
    #[arg(long, env = "DIALTONE_NODE_URL")]
    pub node_url: Option<String>,
    /// A node is lost (its calls closed as failed, `node lost`) when it has not beaten for
    /// this many seconds; it beats every fifth of it. Default 10.
    #[arg(long, env = "DIALTONE_NODE_LEASE")]
    pub node_lease: Option<u64>,
    /// What an inbound REFER may make us call: reject (default: 403), uri (the targets
    /// DIALTONE_REFER_ALLOW names), trunk (those, and numbers through the trunk).
    #[arg(long, env = "DIALTONE_REFER")]
    pub refer: Option<String>,
    /// Comma-separated SIP URI patterns a REFER may name (`*` matches any run of
    /// characters), e.g. `sip:queue@10.0.0.5,sip:agent-*@pbx.example.com`.
    #[arg(long, env = "DIALTONE_REFER_ALLOW")]
    pub refer_allow: Option<String>,
    /// Calls of every kind (inbound, API, transfers) up at once; past it inbound calls get
    /// 503 and the API 429. Unset: as many as the RTP ports allow.
    #[arg(long, env = "DIALTONE_MAX_CALLS")]
    pub max_calls: Option<u32>,
    /// Calls the API (and REFERs) may have up at once; unset: no limit.
    #[arg(long, env = "DIALTONE_MAX_CONCURRENT_CALLS")]
    pub max_concurrent_calls: Option<u32>,
    /// Calls the API (and REFERs) may start a second; unset: no limit.
    #[arg(long, env = "DIALTONE_MAX_CALLS_PER_SECOND")]
    pub max_calls_per_second: Option<f64>,
    /// Comma-separated E.164 prefixes calls may go to (e.g. `+1,+44`); unset: anywhere.
    #[arg(long, env = "DIALTONE_ALLOWED_DESTINATIONS")]
    pub allowed_destinations: Option<String>,
    /// Who may send SIP requests besides the trunk's own addresses: comma-separated
    /// addresses and CIDR ranges (a carrier's published ones), or `any`. Default: loopback.
    #[arg(long, env = "DIALTONE_TRUNK_ALLOW")]
    pub trunk_allow: Option<String>,
    /// The realm of SIP users' digest credentials. Default `dialtone`; changing it
    /// invalidates every SIP user's stored credentials.
    #[arg(long, env = "DIALTONE_SIP_REALM")]
    pub sip_realm: Option<String>,
    /// The digest algorithms SIP users are challenged with, most preferred first:
    /// `sha-256,md5` (default), `md5,sha-256`, `sha-256` or `md5`.
    #[arg(long, env = "DIALTONE_SIP_DIGEST")]
    pub sip_digest: Option<String>,
    /// What a request from anyone else gets: `403` (default) or `drop` (no answer).
    #[arg(long, env = "DIALTONE_SIP_DENY")]
    pub sip_deny: Option<String>,
    /// Refused requests from one address after which it is not answered at all. Default 10.
    #[arg(long, env = "DIALTONE_SIP_BLOCK_AFTER")]
    pub sip_block_after: Option<u32>,
    /// How long such an address is not answered, seconds. Default 600.
    #[arg(long, env = "DIALTONE_SIP_BLOCK_SECONDS")]
    pub sip_block_seconds: Option<u64>,
}

/// `dialtone call`.
#[derive(Args, Debug, Clone)]
pub struct CallArgs {
    /// Who to call: a SIP URI (`sip:user@host:port;transport=tcp`) or an E.164 number
    /// (`+15551234567`, sent through DIALTONE_TRUNK).
    pub target: String,
    /// Shared settings.
    #[command(flatten)]
    pub common: Common,
    /// Hang up after this many seconds of talk.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Give up (CANCEL) if not answered within this many seconds.
    #[arg(long, default_value_t = 60.0)]
    pub ring_timeout: f64,
    /// Our From URI.
    #[arg(long)]
    pub from: Option<String>,
    /// WAV file to play into the call.
    #[arg(long)]
    pub play: Option<PathBuf>,
    /// WAV file to record the call to.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// DTMF digits to send once answered.
    #[arg(long)]
    pub dtmf: Option<String>,
    /// Bridge the call to a voice agent at this WebSocket URL.
    #[arg(long)]
    pub agent: Option<String>,
    /// Use the sound card (microphone and speaker).
    #[arg(long)]
    pub device: bool,
    /// When --duration ends, transfer the far end to this SIP URI (a blind REFER, RFC 3515)
    /// instead of hanging up; the call ends once the far end reports the transfer
    /// answered (exit 0) or failed (exit with its status).
    #[arg(long, value_name = "SIP-URI")]
    pub transfer: Option<String>,
}

/// `dialtone test`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "The script is TOML: settings, then one [[turn]] per caller turn.\n\n\
  name = \"booking\"               # shown in the reports\n\
  hangup_after_ms = 60000        # the longest a call lasts (default 120000)\n\
  reply_timeout_ms = 5000        # how long a turn waits for the bot's reply (default 5000)\n\
  voice = \"en-us\"                # espeak-ng voice for `say`\n\
  record = \"recordings\"          # keep a two-channel WAV per call (like --record)\n\n\
  [[turn]]\n\
  say = \"Hello, a table for two\" # or wav = \"hello.wav\" (relative to the script), or dtmf = \"12#\"\n\
  wait_ms = 500                  # silence first\n\
  expect_answer_within_ms = 1500 # the bot's reply starts within 1.5 s of the caller's last sample\n\
  expect_tone_hz = 1000          # a 1 kHz tone comes in the reply\n\
  expect_dtmf = \"1#\"             # these DTMF keys come in the reply\n\n\
  [[turn]]\n\
  barge_in_ms = 400              # speak 400 ms into the bot's reply (instead of wait_ms)\n\
  say = \"Sorry, three people\"\n\
  expect_stop_within_ms = 800    # the bot's audio stops within 800 ms of the barge-in\n\n\
Output: a progress line on stderr; a table per turn (response latency p50/p95/max, expectations \
passed/failed) and a FAIL line per failed expectation (call, turn, measured vs expected) on stdout.")]
pub struct TestArgs {
    /// Who to call: a voice agent's ws:// or wss:// URL (the caller goes straight into the
    /// agent bridge, no SIP; DIALTONE_AGENT_FORMAT applies), a SIP URI, or an E.164 number
    /// (through DIALTONE_TRUNK).
    pub target: String,
    /// Shared settings (SIP targets).
    #[command(flatten)]
    pub common: Common,
    /// The script (TOML; see below).
    #[arg(long)]
    pub script: PathBuf,
    /// How many calls to place.
    #[arg(long, default_value_t = 1)]
    pub calls: usize,
    /// Calls started a second.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Write every call's report and the summary to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report (one testcase per call and turn expectation).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Keep a two-channel WAV per call in this directory (left: the bot, right: the caller).
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Our From URI (SIP targets).
    #[arg(long)]
    pub from: Option<String>,
    /// Give up on a SIP call not answered within this many seconds.
    #[arg(long, default_value_t = 30.0)]
    pub ring_timeout: f64,
}

/// Inbound call handling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// Answer and echo the caller's audio.
    Echo,
    /// Refuse every call (603 Decline).
    Reject,
    /// Answer and play a WAV file.
    Play(PathBuf),
    /// Answer and bridge to a voice agent.
    Agent(String),
}

impl std::str::FromStr for Inbound {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "echo" => Inbound::Echo,
            "reject" => Inbound::Reject,
            _ if s.starts_with("play:") => Inbound::Play(PathBuf::from(&s[5..])),
            _ if s.starts_with("agent:") => Inbound::Agent(s[6..].to_string()),
            _ => bail!("DIALTONE_INBOUND must be echo, reject, play:<wav> or agent:<ws-url>, not {s:?}"),
        })
    }
}

/// `trunk` in the TOML file: the `default` trunk's URI, or `[[trunk]]` tables (the
/// platform's trunks, every organization's calls may use them).
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum TrunkEntry {
    Uri(String),
    Tables(Vec<TrunkTable>),
}

/// One `[[trunk]]` of the TOML file: the fields of `POST /api/trunks`.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct TrunkTable {
    /// Its name (unique).
    pub name: String,
    /// Its URI.
    pub uri: String,
    /// Digest user.
    pub username: Option<String>,
    /// Digest password.
    pub password: Option<String>,
    /// Ranges it may send requests from.
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
    /// Prefixes it serves.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Lower first.
    pub priority: Option<u32>,
    /// Calls at once.
    pub max_concurrent_calls: Option<u32>,
    /// Calls a second.
    pub max_calls_per_second: Option<f64>,
    /// Codec order.
    #[serde(default)]
    pub codecs: Vec<String>,
    /// `off`, `optional`, `mandatory`.
    pub srtp: Option<String>,
    /// Send P-Asserted-Identity.
    #[serde(default)]
    pub asserted_identity: bool,
    /// Send Privacy: id.
    #[serde(default)]
    pub privacy: bool,
    /// OPTIONS keep-alive, seconds.
    pub options_interval: Option<u32>,
    /// Register with it.
    #[serde(default)]
    pub register: bool,
}

/// The TOML file's keys.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    sip_listen: Option<SocketAddr>,
    sip_advertise: Option<std::net::IpAddr>,
    media_advertise: Option<std::net::IpAddr>,
    dns: Option<SocketAddr>,
    sip_tls_listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    srtp: Option<String>,
    srtp_any_transport: Option<bool>,
    http_listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    rtp_ports: Option<String>,
    trunk: Option<TrunkEntry>,
    trunk_user: Option<String>,
    trunk_password: Option<String>,
    register: Option<bool>,
    inbound: Option<String>,
    answer_after_ms: Option<u64>,
    record: Option<bool>,
    admin_email: Option<String>,
    admin_password: Option<String>,
    internal_key: Option<String>,
    rate_limit: Option<f64>,
    rate_limit_org: Option<f64>,
    rate_limit_addr: Option<f64>,
    login_limit: Option<f64>,
    webhook_retry_ms: Option<u64>,
    rtp_timeout: Option<u64>,
    drain_timeout: Option<u64>,
    database_url: Option<String>,
    node_id: Option<String>,
    node_url: Option<String>,
    node_lease: Option<u64>,
    refer: Option<String>,
    refer_allow: Option<String>,
    max_calls: Option<u32>,
    max_concurrent_calls: Option<u32>,
    max_calls_per_second: Option<f64>,
    allowed_destinations: Option<String>,
    trunk_allow: Option<String>,
    sip_realm: Option<String>,
    sip_digest: Option<String>,
    sip_deny: Option<String>,
    sip_block_after: Option<u32>,
    sip_block_seconds: Option<u64>,
    sip_trace: Option<bool>,
    t1_ms: Option<u64>,
    session_expires: Option<u32>,
    min_se: Option<u32>,
}

/// Resolved settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// SIP listen address.
    pub sip_listen: SocketAddr,
    /// The IP to advertise for SIP (and media, by default).
    pub sip_advertise: Option<std::net::IpAddr>,
    /// The IP to advertise for media.
    pub media_advertise: Option<std::net::IpAddr>,
    /// The RFC 3263 nameserver.
    pub dns: Option<SocketAddr>,
    /// SIP over TLS listen address.
    pub sip_tls_listen: Option<SocketAddr>,
    /// Our certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// Its key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Extra trusted certificates (PEM).
    pub tls_ca: Option<PathBuf>,
    /// SRTP: `None` off, or optional / mandatory.
    pub srtp: Option<dialtone_sip::sdp::sdes::SrtpMode>,
    /// SDES keys over plain signalling too.
    pub srtp_any_transport: bool,
    /// HTTP listen address.
    pub http_listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// RTP ports, inclusive.
    pub rtp_ports: (u16, u16),
    /// Trunk URI.
    pub trunk: Option<String>,
    /// The TOML file's `[[trunk]]` tables.
    pub trunks: Vec<TrunkTable>,
    /// Trunk user.
    pub trunk_user: Option<String>,
    /// Trunk password.
    pub trunk_password: Option<String>,
    /// Register with the trunk.
    pub register: bool,
    /// Inbound handling.
    pub inbound: Inbound,
    /// `DIALTONE_INBOUND` was given (then calls to unknown numbers get it, not 404).
    pub inbound_explicit: bool,
    /// Ring this long before answering inbound calls.
    pub answer_after: std::time::Duration,
    /// Record every call.
    pub record: bool,
    /// First admin e-mail.
    pub admin_email: Option<String>,
    /// First admin password.
    pub admin_password: Option<String>,
    /// Internal key.
    pub internal_key: Option<String>,
    /// API requests a second per key.
    pub rate_limit: f64,
    /// API requests a second per organization.
    pub rate_limit_org: f64,
    /// API requests a second per address.
    pub rate_limit_addr: f64,
    /// Login attempts a minute per address.
    pub login_limit: f64,
    /// First webhook retry, ms.
    pub webhook_retry_ms: u64,
    /// Seconds without media before a call is hung up (0: never).
    pub rtp_timeout_s: u64,
    /// Seconds a SIGTERM's drain waits for the live calls.
    pub drain_timeout_s: u64,
    /// `DIALTONE_DATABASE_URL`: PostgreSQL shared by several nodes.
    pub database_url: Option<String>,
    /// This node's name.
    pub node_id: String,
    /// This node's API, for the other nodes.
    pub node_url: String,
    /// Seconds without a heartbeat before a node is lost.
    pub node_lease_s: u64,
    /// What an inbound REFER may make us call.
    pub refer: ReferPolicy,
    /// Calls of every kind at once.
    pub max_calls: Option<u32>,
    /// The limits and allowed destinations of the calls we place (the default organization's).
    pub max_concurrent_calls: Option<u32>,
    /// Calls a second.
    pub max_calls_per_second: Option<f64>,
    /// E.164 prefixes.
    pub allowed_destinations: Vec<String>,
    /// The inbound perimeter (without the trunk's addresses, which `serve` adds).
    pub perimeter: PerimeterConfig,
    /// The SIP users' realm.
    pub sip_realm: String,
    /// Their digest algorithms, most preferred first.
    pub sip_digest: Vec<dialtone_sip::auth::Algorithm>,
    /// Print SIP messages.
    pub sip_trace: bool,
    /// T1.
    pub t1_ms: u64,
    /// Session-Expires our INVITEs ask for (0: none).
    pub session_expires: u32,
    /// Min-SE.
    pub min_se: u32,
}

/// Parses `20000-20999` into an inclusive range of at least two ports.
pub fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let (a, b) = s.split_once('-').context("RTP port range must look like 20000-20999")?;
    let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
    if a == 0 || b <= a {
        bail!("RTP port range {s:?} is empty or reversed");
    }
    Ok((a, b))
}

/// `DIALTONE_SRTP`: off, optional or mandatory.
fn srtp_mode(v: Option<&str>) -> Result<Option<dialtone_sip::sdp::sdes::SrtpMode>> {
    use dialtone_sip::sdp::sdes::SrtpMode;
    match v.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("off") | Some("") => Ok(None),
        Some("optional") => Ok(Some(SrtpMode::Optional)),
        Some("mandatory") => Ok(Some(SrtpMode::Mandatory)),
        Some(other) => bail!("DIALTONE_SRTP must be off, optional or mandatory, not {other:?}"),
    }
}

/// `DIALTONE_SIP_DIGEST`: MD5 and SHA-256 in the order given.
fn digest(v: Option<&str>) -> Result<Vec<dialtone_sip::auth::Algorithm>> {
    use dialtone_sip::auth::Algorithm;
    let Some(v) = v else { return Ok(vec![Algorithm::Sha256, Algorithm::Md5]) };
    v.split(',')
        .map(|a| match Algorithm::parse(a.trim()) {
            Some(a @ (Algorithm::Md5 | Algorithm::Sha256)) => Ok(a),
            _ => bail!("DIALTONE_SIP_DIGEST: {a:?} is not sha-256 or md5"),
        })
        .collect()
}

/// The perimeter from `DIALTONE_TRUNK_ALLOW` (default loopback; `any` opens it),
/// `DIALTONE_SIP_DENY`, `DIALTONE_SIP_BLOCK_AFTER` and `DIALTONE_SIP_BLOCK_SECONDS`.
fn perimeter(
    allow: Option<&str>,
    deny: Option<&str>,
    block_after: Option<u32>,
    block_seconds: Option<u64>,
) -> Result<PerimeterConfig> {
    let allow = match allow.map(str::trim) {
        None => vec![
            Cidr::parse("127.0.0.0/8").map_err(anyhow::Error::msg)?,
            Cidr::parse("::1").map_err(anyhow::Error::msg)?,
        ],
        Some(a) if a.eq_ignore_ascii_case("any") => {
            vec![
                Cidr::parse("0.0.0.0/0").map_err(anyhow::Error::msg)?,
                Cidr::parse("::/0").map_err(anyhow::Error::msg)?,
            ]
        }
        Some(list) => list
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| Cidr::parse(p).map_err(|e| anyhow::anyhow!("DIALTONE_TRUNK_ALLOW: {e}")))
            .collect::<Result<_>>()?,
    };
    let deny = match deny.map(|d| d.trim().to_ascii_lowercase()).as_deref() {
        None | Some("403") | Some("reject") => Deny::Forbidden,
        Some("drop") => Deny::Drop,
        Some(d) => bail!("DIALTONE_SIP_DENY must be 403 or drop, not {d:?}"),
    };
    Ok(PerimeterConfig {
        allow,
        deny,
        block_after: block_after.unwrap_or(10),
        block_for: std::time::Duration::from_secs(block_seconds.unwrap_or(600)),
    })
}

/// `v` or `default`; a limit must be a positive number.
fn positive(v: Option<f64>, default: f64, name: &str) -> Result<f64> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x > 0.0 => Ok(x),
        Some(x) => bail!("{name} must be a positive number, not {x}"),
    }
}

impl Settings {
    /// Merges flags/environment (in `common` and the serve-only fields) over the file
    /// and the defaults. `default_sip` differs between `serve` (5060) and `call` (any).
    pub fn resolve(common: &Common, serve: Option<&ServeArgs>, default_sip: SocketAddr) -> Result<Settings> {
        let file: FileSettings = match &common.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => FileSettings::default(),
        };
        let inbound_given = serve.and_then(|s| s.inbound.clone()).or(file.inbound);
        let inbound_explicit = inbound_given.is_some();
        let inbound = inbound_given.unwrap_or_else(|| "echo".into());
        let rtp = common.rtp_ports.clone().or(file.rtp_ports).unwrap_or_else(|| "20000-20999".into());
        Ok(Settings {
            sip_listen: common.sip_listen.or(file.sip_listen).unwrap_or(default_sip),
            sip_advertise: common.sip_advertise.or(file.sip_advertise),
            media_advertise: common.media_advertise.or(file.media_advertise),
            dns: common.dns.or(file.dns),
            sip_tls_listen: common.sip_tls_listen.or(file.sip_tls_listen),
            tls_cert: common.tls_cert.clone().or(file.tls_cert),
            tls_key: common.tls_key.clone().or(file.tls_key),
            tls_ca: common.tls_ca.clone().or(file.tls_ca),
            srtp: srtp_mode(common.srtp.clone().or(file.srtp).as_deref())?,
            srtp_any_transport: common.srtp_any_transport.or(file.srtp_any_transport).unwrap_or(false),
            http_listen: serve
                .and_then(|s| s.http_listen)
                .or(file.http_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: common.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("data")),
            rtp_ports: parse_port_range(&rtp).context("DIALTONE_RTP_PORTS")?,
            trunk: common.trunk.clone().or(match &file.trunk {
                Some(TrunkEntry::Uri(u)) => Some(u.clone()),
                _ => None,
            }),
            trunks: match file.trunk {
                Some(TrunkEntry::Tables(t)) => t,
                _ => Vec::new(),
            },
            trunk_user: common.trunk_user.clone().or(file.trunk_user),
            trunk_password: common.trunk_password.clone().or(file.trunk_password),
            register: common.register.or(file.register).unwrap_or(false),
            inbound: inbound.parse().context("DIALTONE_INBOUND")?,
            inbound_explicit,
            answer_after: std::time::Duration::from_millis(
                serve.and_then(|s| s.answer_after_ms).or(file.answer_after_ms).unwrap_or(0),
            ),
            record: common.record.or(file.record).unwrap_or(false),
            admin_email: serve.and_then(|s| s.admin_email.clone()).or(file.admin_email),
            admin_password: serve.and_then(|s| s.admin_password.clone()).or(file.admin_password),
            internal_key: serve.and_then(|s| s.internal_key.clone()).or(file.internal_key),
            rate_limit: positive(serve.and_then(|s| s.rate_limit).or(file.rate_limit), 50.0, "DIALTONE_RATE_LIMIT")?,
            rate_limit_org: positive(
                serve.and_then(|s| s.rate_limit_org).or(file.rate_limit_org),
                200.0,
                "DIALTONE_RATE_LIMIT_ORG",
            )?,
            rate_limit_addr: positive(
                serve.and_then(|s| s.rate_limit_addr).or(file.rate_limit_addr),
                200.0,
                "DIALTONE_RATE_LIMIT_ADDR",
            )?,
            login_limit: positive(
                serve.and_then(|s| s.login_limit).or(file.login_limit),
                10.0,
                "DIALTONE_LOGIN_LIMIT",
            )?,
            webhook_retry_ms: serve.and_then(|s| s.webhook_retry_ms).or(file.webhook_retry_ms).unwrap_or(1000).max(1),
            rtp_timeout_s: serve.and_then(|s| s.rtp_timeout).or(file.rtp_timeout).unwrap_or(60),
            drain_timeout_s: serve.and_then(|s| s.drain_timeout).or(file.drain_timeout).unwrap_or(20),
            database_url: serve.and_then(|s| s.database_url.clone()).or(file.database_url).filter(|u| !u.is_empty()),
            node_id: serve.and_then(|s| s.node_id.clone()).or(file.node_id).unwrap_or_default(),
            node_url: serve.and_then(|s| s.node_url.clone()).or(file.node_url).unwrap_or_default(),
            node_lease_s: serve.and_then(|s| s.node_lease).or(file.node_lease).unwrap_or(10).max(1),
            max_calls: serve.and_then(|s| s.max_calls).or(file.max_calls),
            max_concurrent_calls: serve.and_then(|s| s.max_concurrent_calls).or(file.max_concurrent_calls),
            max_calls_per_second: serve.and_then(|s| s.max_calls_per_second).or(file.max_calls_per_second),
            allowed_destinations: destinations(
                serve.and_then(|s| s.allowed_destinations.clone()).or(file.allowed_destinations).as_deref(),
            )?,
            sip_realm: serve
                .and_then(|s| s.sip_realm.clone())
                .or(file.sip_realm)
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| "dialtone".into()),
            sip_digest: digest(serve.and_then(|s| s.sip_digest.clone()).or(file.sip_digest).as_deref())?,
            perimeter: perimeter(
                serve.and_then(|s| s.trunk_allow.clone()).or(file.trunk_allow).as_deref(),
                serve.and_then(|s| s.sip_deny.clone()).or(file.sip_deny).as_deref(),
                serve.and_then(|s| s.sip_block_after).or(file.sip_block_after),
                serve.and_then(|s| s.sip_block_seconds).or(file.sip_block_seconds),
            )?,
            refer: ReferPolicy::parse(
                serve.and_then(|s| s.refer.clone()).or(file.refer).as_deref(),
                serve.and_then(|s| s.refer_allow.clone()).or(file.refer_allow).as_deref(),
            )?,
            sip_trace: common.sip_trace || file.sip_trace.unwrap_or(false),
            t1_ms: common.t1_ms.or(file.t1_ms).unwrap_or(500),
            session_expires: common.session_expires.or(file.session_expires).unwrap_or(1800),
            min_se: common.min_se.or(file.min_se).unwrap_or(90).max(1),
        })
    }
}

/// `DIALTONE_ALLOWED_DESTINATIONS`: `+` and digits, comma-separated.
fn destinations(v: Option<&str>) -> Result<Vec<String>> {
    let list: Vec<String> =
        v.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect();
    if let Some(bad) = list
        .iter()
        .find(|p| !p.strip_prefix('+').is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())))
    {
        bail!("DIALTONE_ALLOWED_DESTINATIONS: {bad:?} is not an E.164 prefix such as +1 or +4420");
    }
    Ok(list)
}

/// What an inbound REFER (RFC 3515) may make us call (`DIALTONE_REFER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReferMode {
    /// Nothing: every REFER gets 403 and the call goes on.
    #[default]
    Reject,
    /// Only the targets `DIALTONE_REFER_ALLOW` names.
    Uri,
    /// Those, and numbers, through the trunk.
    Trunk,
}

/// `DIALTONE_REFER` and `DIALTONE_REFER_ALLOW`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferPolicy {
    /// The mode.
    pub mode: ReferMode,
    /// SIP URI patterns (`*` matches any run of characters), without parameters.
    pub allow: Vec<String>,
}

impl ReferPolicy {
    /// From the settings' text; an unknown mode or a pattern that is not a SIP URI is an error.
    pub fn parse(mode: Option<&str>, allow: Option<&str>) -> Result<ReferPolicy> {
        let mode = match mode.map(str::trim).unwrap_or("reject") {
            "" | "reject" => ReferMode::Reject,
            "uri" => ReferMode::Uri,
            "trunk" => ReferMode::Trunk,
            other => bail!("DIALTONE_REFER must be reject, uri or trunk, not {other:?}"),
        };
        let allow: Vec<String> =
            allow.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect();
        if let Some(bad) = allow.iter().find(|p| !(p.starts_with("sip:") || p.starts_with("sips:"))) {
            bail!("DIALTONE_REFER_ALLOW: {bad:?} is not a sip: URI pattern");
        }
        if mode == ReferMode::Uri && allow.is_empty() {
            bail!("DIALTONE_REFER=uri needs DIALTONE_REFER_ALLOW (the SIP URIs a REFER may name)");
        }
        Ok(ReferPolicy { mode, allow })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_modes_and_ports() {
        assert_eq!("echo".parse::<Inbound>().unwrap(), Inbound::Echo);
        assert_eq!("play:/a.wav".parse::<Inbound>().unwrap(), Inbound::Play("/a.wav".into()));
        assert_eq!("agent:ws://x".parse::<Inbound>().unwrap(), Inbound::Agent("ws://x".into()));
        assert!("bogus".parse::<Inbound>().is_err());
        assert_eq!(parse_port_range("20000-20999").unwrap(), (20000, 20999));
        assert!(parse_port_range("5-5").is_err());
        assert!(parse_port_range("x").is_err());
    }

    #[test]
    fn file_fills_what_flags_leave() {
        let dir = std::env::temp_dir().join(format!("dialtone-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("d.toml");
        std::fs::write(&p, "sip_listen = \"127.0.0.1:5999\"\nrecord = true\ninbound = \"reject\"\n").unwrap();
        let common = Common { config: Some(p), ..Default::default() };
        let s = Settings::resolve(&common, None, "0.0.0.0:5060".parse().unwrap()).unwrap();
        assert_eq!(s.sip_listen, "127.0.0.1:5999".parse().unwrap());
        assert!(s.record);
        assert_eq!(s.inbound, Inbound::Reject);
        let common2 = Common { sip_listen: Some("127.0.0.1:7000".parse().unwrap()), ..common };
        let s = Settings::resolve(&common2, None, "0.0.0.0:5060".parse().unwrap()).unwrap();
        assert_eq!(s.sip_listen, "127.0.0.1:7000".parse().unwrap());
    }
}
