//! Trunks as data (issue 15): the settings' trunks (the platform's, every organization's
//! calls may use them) and the organizations' own, the choice of one for a number
//! (longest matching prefix, then priority), and each one's standing (calls up, its token
//! bucket, whether it answers its OPTIONS).

use super::org::Bucket;
use dialtone_api::http::TrunkStatus;
use dialtone_sip::auth::Credentials;
use dialtone_sip::sdp::sdes::SrtpMode;
use dialtone_sip::Destination;
use std::time::{Duration, Instant};

/// A trunk, its URI resolved.
#[derive(Clone, Debug)]
pub struct Trunk {
    /// `default` (the `DIALTONE_TRUNK*` one), a `[[trunk]]`'s name, or `trk_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The organization whose calls alone may use it; `None`: every organization's.
    pub org: Option<String>,
    /// Its URI as configured.
    pub uri: String,
    /// host\[:port\] for Request-URIs and From.
    pub host: String,
    /// Its servers in order (RFC 3263); empty while unresolved.
    pub servers: Vec<Destination>,
    /// Its digest credentials; `None`: the UA's (the settings' trunk).
    pub credentials: Option<Credentials>,
    /// From's user when the call names no `from_number`.
    pub from_user: Option<String>,
    /// E.164 prefixes it serves; empty: every number.
    pub prefixes: Vec<String>,
    /// Lower first among trunks matching as long a prefix.
    pub priority: u32,
    /// Calls at once.
    pub max_concurrent_calls: Option<u32>,
    /// New calls a second.
    pub max_calls_per_second: Option<f64>,
    /// Codecs offered, in order; empty: ours.
    pub codecs: Vec<String>,
    /// `None`: `DIALTONE_SRTP`; `Some(None)`: plain RTP; `Some(Some(mode))`.
    pub srtp: Option<Option<SrtpMode>>,
    /// `P-Asserted-Identity` with the caller's number (RFC 3325).
    pub asserted_identity: bool,
    /// `Privacy: id` and an anonymous From (RFC 3323, 3325).
    pub privacy: bool,
    /// OPTIONS keep-alive interval.
    pub options_interval: Option<Duration>,
    /// Keep a registration with it (needs its credentials).
    pub register: bool,
}

impl Trunk {
    /// A trunk with nothing but its identity and where it is.
    pub fn new(id: &str, uri: &str, host: &str, servers: Vec<Destination>) -> Trunk {
        Trunk {
            id: id.into(),
            name: id.into(),
            org: None,
            uri: uri.into(),
            host: host.into(),
            servers,
            credentials: None,
            from_user: None,
            prefixes: Vec::new(),
            priority: 100,
            max_concurrent_calls: None,
            max_calls_per_second: None,
            codecs: Vec::new(),
            srtp: None,
            asserted_identity: false,
            privacy: false,
            options_interval: None,
            register: false,
        }
    }

    /// How long a prefix of `number` it serves (0: it serves every number); `None`: not this one.
    fn serves(&self, number: &str) -> Option<usize> {
        if self.prefixes.is_empty() {
            return Some(0);
        }
        let n = digits(number);
        self.prefixes.iter().map(|p| digits(p)).filter(|p| n.starts_with(p.as_str())).map(|p| p.len()).max()
    }

    /// Whether `org`'s calls may use it.
    fn open_to(&self, org: Option<&str>) -> bool {
        self.org.is_none() || self.org.as_deref() == org
    }
}

fn digits(n: &str) -> String {
    n.chars().filter(char::is_ascii_digit).collect()
}

/// A trunk and its standing.
#[derive(Debug)]
struct Standing {
    trunk: Trunk,
    /// Calls on it, and places held for calls about to go out.
    live: u32,
    bucket: Bucket,
    /// It answers (its OPTIONS, when it is probed).
    up: bool,
    rtt: Option<Duration>,
    /// When the last probe ended and its answer.
    last_probe: Option<(Instant, Option<u16>)>,
    /// An OPTIONS of ours is out since then.
    probing: Option<Instant>,
    next_probe: Option<Instant>,
    registered: Option<bool>,
}

/// Every trunk.
#[derive(Debug, Default)]
pub struct Trunks {
    list: Vec<Standing>,
    /// Something in the status changed since [`Trunks::take_changed`].
    changed: bool,
}

/// Why no trunk takes a call.
#[derive(Debug, PartialEq, Eq)]
pub enum NoTrunk {
    /// None serves the number (for this organization).
    None,
    /// Those that do are at their limits; one has room in about this long.
    Full(Duration),
    /// Those that do are all down (their OPTIONS go unanswered).
    Down,
}

impl Trunks {
    /// Sets the trunks from `source` (the settings' have `org: None`, the API's an
    /// organization): those of the other kind stay; a trunk that stays keeps its standing.
    pub fn replace(&mut self, stored: bool, trunks: Vec<Trunk>) {
        let mut old: Vec<Standing> = Vec::new();
        self.list.retain_mut(|s| {
            if s.trunk.org.is_some() == stored {
                old.push(Standing {
                    trunk: s.trunk.clone(),
                    live: s.live,
                    bucket: s.bucket.clone(),
                    ..fresh_standing()
                });
                false
            } else {
                true
            }
        });
        for t in trunks {
            let prior = old.iter().find(|s| s.trunk.id == t.id);
            let (live, bucket) = prior.map_or((0, Bucket::default()), |s| (s.live, s.bucket.clone()));
            self.list.push(Standing { trunk: t, live, bucket, ..fresh_standing() });
        }
        self.changed = true;
    }

    /// The trunk `id`.
    pub fn get(&self, id: &str) -> Option<&Trunk> {
        self.list.iter().find(|s| s.trunk.id == id).map(|s| &s.trunk)
    }

    /// The settings' `default` trunk's servers changed (its DNS records did).
    pub fn set_servers(&mut self, id: &str, servers: Vec<Destination>) {
        if let Some(s) = self.list.iter_mut().find(|s| s.trunk.id == id) {
            s.trunk.servers = servers;
        }
    }

    /// The id of the trunk one of whose servers is `ip`, if any.
    pub fn by_source(&self, ip: std::net::IpAddr) -> Option<String> {
        self.list.iter().find(|s| s.trunk.servers.iter().any(|d| d.addr.ip() == ip)).map(|s| s.trunk.id.clone())
    }

    /// The trunks that may carry `org`'s call to `number`, best first: the longest
    /// matching prefix, then the lowest priority, then the order they were given in.
    pub fn candidates(&self, org: Option<&str>, number: &str) -> Vec<String> {
        let mut c: Vec<(usize, u32, usize, &str)> = self
            .list
            .iter()
            .enumerate()
            .filter(|(_, s)| s.trunk.open_to(org) && !s.trunk.servers.is_empty())
            .filter_map(|(i, s)| s.trunk.serves(number).map(|len| (len, s.trunk.priority, i, s.trunk.id.as_str())))
            .collect();
        c.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        c.into_iter().map(|(.., id)| id.to_string()).collect()
    }

    /// Takes a place on the first of `ids` that is up and has room (a call slot and a
    /// token), skipping those in `skip`.
    pub fn reserve(&mut self, ids: &[String], skip: &[String], now: Instant) -> Result<String, NoTrunk> {
        let mut wait: Option<Duration> = None;
        let (mut any, mut up) = (false, false);
        for id in ids.iter().filter(|i| !skip.contains(i)) {
            let Some(s) = self.list.iter_mut().find(|s| &s.trunk.id == id) else { continue };
            any = true;
            if !s.up {
                continue;
            }
            up = true;
            if s.trunk.max_concurrent_calls.is_some_and(|m| s.live >= m) {
                wait = Some(wait.map_or(Duration::from_secs(1), |w| w.min(Duration::from_secs(1))));
                continue;
            }
            match s.bucket.take(s.trunk.max_calls_per_second, now) {
                Ok(()) => {
                    s.live += 1;
                    self.changed = true;
                    return Ok(id.clone());
                }
                Err(w) => wait = Some(wait.map_or(w, |x| x.min(w))),
            }
        }
        Err(match (any, up) {
            (false, _) => NoTrunk::None,
            (true, false) => NoTrunk::Down,
            (true, true) => NoTrunk::Full(wait.unwrap_or(Duration::from_secs(1))),
        })
    }

    /// A call (or a place held for one) on `id` is over.
    pub fn give_back(&mut self, id: &str) {
        if let Some(s) = self.list.iter_mut().find(|s| s.trunk.id == id) {
            s.live = s.live.saturating_sub(1);
            self.changed = true;
        }
    }

    /// The trunks to be registered with: id, registration, credentials.
    pub fn registrations(&self) -> Vec<(String, dialtone_sip::ua::Registration, Credentials)> {
        self.list
            .iter()
            .filter(|s| s.trunk.register)
            .filter_map(|s| {
                let t = &s.trunk;
                let (creds, dest) = (t.credentials.clone()?, *t.servers.first()?);
                // RFC 3261 §10.2: the Request-URI is the domain, the AOR the user there.
                let domain = t.host.split(':').next().unwrap_or(&t.host).to_string();
                let registrar = match dest.transport {
                    dialtone_sip::Transport::Udp => format!("sip:{}", t.host),
                    other => format!("sip:{};transport={}", t.host, other.as_str().to_lowercase()),
                };
                let aor = format!("sip:{}@{domain}", creds.username());
                let reg = dialtone_sip::ua::Registration { registrar, aor, dest, expires: 3600 };
                Some((t.id.clone(), reg, creds))
            })
            .collect()
    }

    /// The trunks due an OPTIONS now: their id and first server. Each is marked as
    /// being probed.
    pub fn due_probes(&mut self, now: Instant) -> Vec<(String, Destination, String)> {
        let mut due = Vec::new();
        for s in &mut self.list {
            let (Some(every), Some(dest)) = (s.trunk.options_interval, s.trunk.servers.first()) else { continue };
            if s.next_probe.is_some_and(|t| t > now) {
                continue;
            }
            if s.probing.is_some() {
                // The last one was not answered (the UA's Timer F would say so first).
                if s.up {
                    s.up = false;
                    self.changed = true;
                    tracing::warn!(trunk = %s.trunk.name, "trunk down: its OPTIONS went unanswered");
                }
            }
            s.probing = Some(now);
            s.next_probe = Some(now + every);
            due.push((s.trunk.id.clone(), *dest, s.trunk.host.clone()));
        }
        due
    }

    /// When the next OPTIONS is due.
    pub fn next_probe(&self) -> Option<Instant> {
        self.list.iter().filter(|s| s.trunk.options_interval.is_some()).filter_map(|s| s.next_probe).min()
    }

    /// The OPTIONS to `id` was answered (`Some(status)`) or not (`None`).
    pub fn probed(&mut self, id: &str, answer: Option<u16>, now: Instant) {
        let Some(s) = self.list.iter_mut().find(|s| s.trunk.id == id) else { return };
        let Some(sent) = s.probing.take() else { return };
        // Any final response means it is alive and talking SIP (RFC 3261 §11: a 4xx to
        // OPTIONS from a server that wants authentication is still an answer).
        let up = answer.is_some_and(|st| st != 408 && st != 503);
        s.rtt = answer.map(|_| now.saturating_duration_since(sent));
        s.last_probe = Some((now, answer));
        if up != s.up {
            tracing::warn!(trunk = %s.trunk.name, up, "trunk {}", if up { "up again" } else { "down" });
        }
        s.up = up;
        self.changed = true;
    }

    /// Our registration with trunk `id` stands (or not).
    pub fn set_registered(&mut self, id: &str, registered: bool) {
        if let Some(s) = self.list.iter_mut().find(|s| s.trunk.id == id) {
            s.registered = Some(registered);
            self.changed = true;
        }
    }

    /// The status of every trunk, when it changed since the last call.
    pub fn take_changed(&mut self) -> Option<Vec<TrunkStatus>> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        Some(self.status())
    }

    /// The status of every trunk.
    pub fn status(&self) -> Vec<TrunkStatus> {
        self.list
            .iter()
            .map(|s| TrunkStatus {
                id: s.trunk.id.clone(),
                name: s.trunk.name.clone(),
                organization_id: s.trunk.org.clone(),
                uri: s.trunk.uri.clone(),
                up: s.up,
                registered: s.registered,
                options_rtt_ms: s.rtt.map(|d| d.as_millis() as u64),
                last_options_at: s.last_probe.map(|(at, _)| at),
                last_options_status: s.last_probe.and_then(|(_, status)| status),
                calls: s.live,
            })
            .collect()
    }
}

fn fresh_standing() -> Standing {
    Standing {
        trunk: Trunk::new("", "", "", Vec::new()),
        live: 0,
        bucket: Bucket::default(),
        up: true,
        rtt: None,
        last_probe: None,
        probing: None,
        next_probe: None,
        registered: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_sip::Transport;

    fn trunk(id: &str, org: Option<&str>, prefixes: &[&str], priority: u32) -> Trunk {
        let dest = Destination { transport: Transport::Udp, addr: "127.0.0.1:5060".parse().unwrap() };
        let mut t = Trunk::new(id, "sip:127.0.0.1", "127.0.0.1", vec![dest]);
        t.org = org.map(String::from);
        t.prefixes = prefixes.iter().map(|p| p.to_string()).collect();
        t.priority = priority;
        t
    }

    #[test]
    fn the_longest_prefix_wins_then_priority() {
        let mut ts = Trunks::default();
        ts.replace(false, vec![trunk("default", None, &[], 100)]);
        ts.replace(
            true,
            vec![
                trunk("uk", Some("org_a"), &["+44"], 50),
                trunk("london", Some("org_a"), &["+4420"], 200),
                trunk("cheap", Some("org_a"), &["+44"], 10),
                trunk("theirs", Some("org_b"), &["+4420"], 0),
            ],
        );
        assert_eq!(ts.candidates(Some("org_a"), "+442071234567"), ["london", "cheap", "uk", "default"]);
        assert_eq!(ts.candidates(Some("org_a"), "+15550100"), ["default"]);
        assert_eq!(ts.candidates(Some("org_b"), "+442071234567"), ["theirs", "default"]);
    }

    #[test]
    fn a_full_trunk_is_skipped_and_its_place_comes_back() {
        let mut ts = Trunks::default();
        let mut a = trunk("a", None, &[], 1);
        a.max_concurrent_calls = Some(1);
        ts.replace(false, vec![a, trunk("b", None, &[], 2)]);
        let now = Instant::now();
        let ids = ts.candidates(None, "+1555");
        assert_eq!(ts.reserve(&ids, &[], now).unwrap(), "a");
        assert_eq!(ts.reserve(&ids, &[], now).unwrap(), "b");
        assert_eq!(ts.reserve(&ids[..1], &[], now), Err(NoTrunk::Full(Duration::from_secs(1))));
        ts.give_back("a");
        assert_eq!(ts.reserve(&ids, &[], now).unwrap(), "a");
        assert_eq!(ts.reserve(&ids, &ids, now), Err(NoTrunk::None), "every one tried already");
    }

    #[test]
    fn a_trunk_that_stays_keeps_its_calls() {
        let mut ts = Trunks::default();
        ts.replace(true, vec![trunk("trk_1", Some("o"), &[], 1)]);
        let ids = ts.candidates(Some("o"), "+1");
        ts.reserve(&ids, &[], Instant::now()).unwrap();
        ts.replace(true, vec![trunk("trk_1", Some("o"), &["+1"], 5), trunk("trk_2", Some("o"), &[], 1)]);
        assert_eq!(ts.status().iter().find(|s| s.id == "trk_1").unwrap().calls, 1);
    }

    #[test]
    fn an_unanswered_options_marks_it_down_and_an_answer_up() {
        let mut ts = Trunks::default();
        let mut a = trunk("a", None, &[], 1);
        a.options_interval = Some(Duration::from_secs(5));
        ts.replace(false, vec![a]);
        let t0 = Instant::now();
        assert_eq!(ts.due_probes(t0).len(), 1);
        ts.probed("a", None, t0 + Duration::from_secs(1));
        assert!(!ts.status()[0].up);
        assert_eq!(ts.reserve(&["a".into()], &[], t0), Err(NoTrunk::Down), "a trunk that is down takes no calls");
        assert_eq!(ts.due_probes(t0 + Duration::from_secs(5)).len(), 1);
        ts.probed("a", Some(200), t0 + Duration::from_millis(5020));
        let st = &ts.status()[0];
        assert!(st.up && st.options_rtt_ms == Some(20));
    }
}
