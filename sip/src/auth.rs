//! Digest authentication, client side (RFC 3261 §22, RFC 7616, RFC 8760, RFC 2617).
//!
//! A 401 carries `WWW-Authenticate` challenges and a 407 `Proxy-Authenticate` ones; the
//! request is sent again with `Authorization` / `Proxy-Authorization` credentials.
//!
//! Two layers:
//!
//! - [`Challenge`]: one parsed digest challenge, and [`Challenge::authorization`], which
//!   computes a credentials header value from an explicit cnonce and nonce count. Pure.
//! - [`DigestClient`]: the sans-IO state of one account. It remembers the last challenge
//!   per realm and kind (401 vs 407), counts nonce uses, draws cnonces from a caller-seeded
//!   generator (no clock, no global RNG), and decides when credentials were rejected so a
//!   caller never loops on 401s.
//!
//! ```
//! use dialtone_sip::auth::{Credentials, DigestClient};
//! use dialtone_sip::{HeaderName, Method, Request, Response};
//!
//! let mut client = DigestClient::new(Credentials::new("alice", "secret"), 0x5eed);
//! let mut req = Request::new(Method::Register, "sip:example.com");
//! let mut resp = Response::new(401, "Unauthorized");
//! resp.headers.push(HeaderName::WwwAuthenticate, r#"Digest realm="example.com", nonce="n1", qop="auth""#);
//!
//! // Each header replaces earlier credentials for its realm; then resend with CSeq + 1.
//! for h in client.respond(&req, &resp).unwrap() {
//!     h.apply_to(&mut req.headers);
//! }
//! assert!(req.headers.get(&HeaderName::Authorization).unwrap().contains("nc=00000001"));
//!
//! // The same credentials challenged again (not stale): rejected, not retried.
//! assert!(client.respond(&req, &resp).is_err());
//! ```

use crate::header::AuthParams;
use crate::msg::{Headers, Request, Response};
use crate::name::HeaderName;
use md5::{Digest, Md5};
use sha2::{Sha256, Sha512Trunc256};
use std::fmt;
use std::fmt::Write as _;
use thiserror::Error;

/// Why no credentials could be produced.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The response is neither 401 nor 407.
    #[error("status {0} is not an authentication challenge (expected 401 or 407)")]
    NotAChallenge(u16),
    /// A 401 without `WWW-Authenticate`, or a 407 without `Proxy-Authenticate`.
    #[error("the {status} response carries no {header} header")]
    NoChallenge {
        /// The status code.
        status: u16,
        /// The header that was expected.
        header: &'static str,
    },
    /// The header value is not `scheme param=value, …`.
    #[error("malformed challenge: {0}")]
    Malformed(#[from] crate::error::ParseError),
    /// The scheme is not `Digest` (e.g. `Basic`, `Bearer`).
    #[error("authentication scheme {0:?} is not Digest")]
    NotDigest(String),
    /// A required parameter (`realm`, `nonce`) is absent.
    #[error("digest challenge lacks the {0} parameter")]
    MissingParam(&'static str),
    /// A parameter occurs twice (RFC 7235 §2.1: each name at most once).
    #[error("digest challenge repeats the {0} parameter")]
    DuplicateParam(String),
    /// An `algorithm` this client does not implement.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// A `qop` list with neither `auth` nor `auth-int`.
    #[error("no supported qop in {0:?} (expected auth or auth-int)")]
    UnsupportedQop(String),
    /// A `-sess` algorithm without `qop`: its HA1 needs a cnonce, which only qop carries.
    #[error("algorithm {0} needs a qop (the session key uses a cnonce)")]
    SessWithoutQop(&'static str),
    /// Challenges were present but none is usable; the text says why for each.
    #[error("no usable digest challenge: {0}")]
    NoUsableChallenge(String),
    /// The request already carried our credentials for this realm and the server
    /// challenged again without `stale=true`: wrong user name or password.
    #[error("credentials for realm {realm:?} were rejected")]
    Rejected {
        /// The realm.
        realm: String,
    },
    /// `stale=true` again for the nonce we just took from a stale challenge; we retry
    /// a stale nonce once only.
    #[error("nonce for realm {realm:?} was stale again right after a stale retry")]
    StaleAgain {
        /// The realm.
        realm: String,
    },
    /// A value would not fit in a quoted string (control characters such as CR/LF).
    #[error("{0} contains a control character and cannot be sent")]
    InvalidValue(&'static str),
    /// The nonce count for one nonce would pass 0xffffffff.
    #[error("nonce count exhausted for realm {realm:?}")]
    NonceCountExhausted {
        /// The realm.
        realm: String,
    },
}

/// A digest algorithm (RFC 7616 §3.2, the IANA "HTTP Digest Hash Algorithms" registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, the default when `algorithm` is absent.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (SHA-512/256).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Parses an `algorithm` value, case-insensitively; `None` if unsupported.
    pub fn parse(s: &str) -> Option<Algorithm> {
        const ALL: [Algorithm; 6] = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ];
        ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Whether this is a `-sess` variant (HA1 = H(H(user:realm:pass):nonce:cnonce)).
    pub fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess)
    }

    /// Our preference among algorithms offered together: higher is stronger.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 0,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 1,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 2,
        }
    }

    /// H(p1 ":" p2 ":" …) as lowercase hex.
    pub(crate) fn hash(self, parts: &[&[u8]]) -> String {
        fn run<D: Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex(&d.finalize())
        }
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => run::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => run::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => run::<Sha512Trunc256>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quality of protection (RFC 7616 §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: method and URI are protected.
    Auth,
    /// `auth-int`: the body is protected too.
    AuthInt,
}

impl Qop {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// Who challenged: the UAS/registrar (401) or a proxy (407).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// 401, `WWW-Authenticate` → `Authorization`.
    Www,
    /// 407, `Proxy-Authenticate` → `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    /// The kind a status code asks for: 401 or 407, else `None`.
    pub fn from_status(status: u16) -> Option<ChallengeKind> {
        match status {
            401 => Some(ChallengeKind::Www),
            407 => Some(ChallengeKind::Proxy),
            _ => None,
        }
    }

    /// The header carrying the challenge.
    pub fn challenge_header(self) -> HeaderName {
        match self {
            ChallengeKind::Www => HeaderName::WwwAuthenticate,
            ChallengeKind::Proxy => HeaderName::ProxyAuthenticate,
        }
    }

    /// The header carrying our credentials.
    pub fn credentials_header(self) -> HeaderName {
        match self {
            ChallengeKind::Www => HeaderName::Authorization,
            ChallengeKind::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// A user name and password. `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// Credentials for `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { username: username.into(), password: password.into() }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// What the credentials cover: the request's method, Request-URI (the digest `uri`,
/// RFC 3261 §22.4) and body (hashed for `auth-int`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// The method, e.g. `REGISTER`.
    pub method: &'a str,
    /// The Request-URI as sent.
    pub uri: &'a str,
    /// The body as sent.
    pub body: &'a [u8],
}

impl<'a> From<&'a Request> for Target<'a> {
    fn from(r: &'a Request) -> Target<'a> {
        Target { method: r.method.as_str(), uri: &r.uri, body: &r.body }
    }
}

/// One parsed digest challenge (RFC 7616 §3.3; RFC 3261 §25.1 `digest-cln`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space.
    pub realm: String,
    /// The server nonce.
    pub nonce: String,
    /// Echoed back unchanged when present.
    pub opaque: Option<String>,
    /// The algorithm; `MD5` when absent.
    pub algorithm: Algorithm,
    /// The supported qops offered, in the server's order; empty when `qop` was absent
    /// (the RFC 2069 form). Unknown tokens are dropped.
    pub qop: Vec<Qop>,
    /// `stale=true`: the nonce expired but the previous credentials were good.
    pub stale: bool,
    /// The `domain` URIs, if any.
    pub domain: Vec<String>,
}

impl Challenge {
    /// Parses one `WWW-Authenticate` / `Proxy-Authenticate` value.
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        let p = AuthParams::parse(value)?;
        if !p.scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::NotDigest(p.scheme.to_owned()));
        }
        for (i, (name, _)) in p.params.iter().enumerate() {
            if p.params[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(AuthError::DuplicateParam(name.to_ascii_lowercase()));
            }
        }
        let realm = p.get("realm").ok_or(AuthError::MissingParam("realm"))?.to_owned();
        let nonce = p.get("nonce").ok_or(AuthError::MissingParam("nonce"))?.to_owned();
        let algorithm = match p.get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a).ok_or_else(|| AuthError::UnsupportedAlgorithm(a.to_owned()))?,
        };
        let qop = match p.get("qop") {
            None => Vec::new(),
            Some(list) => {
                let mut qop = Vec::new();
                for t in list.split(',').map(str::trim) {
                    let q = if t.eq_ignore_ascii_case("auth") {
                        Qop::Auth
                    } else if t.eq_ignore_ascii_case("auth-int") {
                        Qop::AuthInt
                    } else {
                        continue; // RFC 2617 §3.2.1: unrecognized options are ignored
                    };
                    if !qop.contains(&q) {
                        qop.push(q);
                    }
                }
                if qop.is_empty() {
                    return Err(AuthError::UnsupportedQop(list.to_owned()));
                }
                qop
            }
        };
        if algorithm.is_sess() && qop.is_empty() {
            return Err(AuthError::SessWithoutQop(algorithm.as_str()));
        }
        Ok(Challenge {
            realm,
            nonce,
            opaque: p.get("opaque").map(str::to_owned),
            algorithm,
            qop,
            stale: p.get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            domain: p
                .get("domain")
                .map(|d| d.split_ascii_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    }

    /// The challenge to answer among several header values (all for one realm): the
    /// strongest algorithm we support (SHA-512-256 > SHA-256 > MD5), the topmost among
    /// equals. RFC 8760 §2.4 has the UAC take the topmost supported one "unless a local
    /// policy dictates otherwise"; ours is to prefer the stronger hash, as RFC 7616 §3.7
    /// allows. Non-Digest schemes and unsupported algorithms are skipped.
    pub fn select<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Challenge, AuthError> {
        let mut best: Option<Challenge> = None;
        let mut why: Vec<String> = Vec::new();
        for v in values {
            match Challenge::parse(v) {
                Ok(c) => {
                    if best.as_ref().is_none_or(|b| c.algorithm.strength() > b.algorithm.strength()) {
                        best = Some(c);
                    }
                }
                Err(e) => why.push(e.to_string()),
            }
        }
        match best {
            Some(c) => Ok(c),
            None if why.is_empty() => Err(AuthError::NoUsableChallenge("no challenge given".into())),
            None => Err(AuthError::NoUsableChallenge(why.join("; "))),
        }
    }

    /// The qop we answer with: `auth` when offered (it does not tie the credentials to
    /// the body), else `auth-int`; `None` for the RFC 2069 form.
    pub fn chosen_qop(&self) -> Option<Qop> {
        if self.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else {
            self.qop.first().copied()
        }
    }

    /// The credentials header value answering this challenge, for `target`, with the
    /// client nonce `cnonce` and nonce count `nc` (both unused in the RFC 2069 form):
    ///
    /// `Digest username="…", realm="…", nonce="…", uri="…", response="…", algorithm=…,
    /// cnonce="…", qop=auth, nc=00000001, opaque="…"`
    ///
    /// RFC 7616 §3.4.1: HA1 = H(user:realm:pass) (for `-sess`, H(HA1:nonce:cnonce));
    /// HA2 = H(method:uri) (for `auth-int`, H(method:uri:H(body))); response =
    /// H(HA1:nonce:nc:cnonce:qop:HA2), or H(HA1:nonce:HA2) without qop (RFC 2617 §3.2.2.1).
    pub fn authorization(
        &self,
        creds: &Credentials,
        target: Target<'_>,
        cnonce: &str,
        nc: u32,
    ) -> Result<String, AuthError> {
        let alg = self.algorithm;
        let qop = self.chosen_qop();
        let nc_hex = format!("{nc:08x}");
        let mut ha1 = alg.hash(&[creds.username.as_bytes(), self.realm.as_bytes(), creds.password.as_bytes()]);
        if alg.is_sess() {
            ha1 = alg.hash(&[ha1.as_bytes(), self.nonce.as_bytes(), cnonce.as_bytes()]);
        }
        let ha2 = match qop {
            Some(Qop::AuthInt) => {
                let hbody = alg.hash(&[target.body]);
                alg.hash(&[target.method.as_bytes(), target.uri.as_bytes(), hbody.as_bytes()])
            }
            _ => alg.hash(&[target.method.as_bytes(), target.uri.as_bytes()]),
        };
        let response = match qop {
            Some(q) => alg.hash(&[
                ha1.as_bytes(),
                self.nonce.as_bytes(),
                nc_hex.as_bytes(),
                cnonce.as_bytes(),
                q.as_str().as_bytes(),
                ha2.as_bytes(),
            ]),
            None => alg.hash(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
        };

        let mut v = String::with_capacity(256);
        v.push_str("Digest ");
        quoted(&mut v, "username", &creds.username)?;
        v.push_str(", ");
        quoted(&mut v, "realm", &self.realm)?;
        v.push_str(", ");
        quoted(&mut v, "nonce", &self.nonce)?;
        v.push_str(", ");
        quoted(&mut v, "uri", target.uri)?;
        let _ = write!(v, ", response=\"{response}\", algorithm={alg}");
        if let Some(q) = qop {
            v.push_str(", ");
            quoted(&mut v, "cnonce", cnonce)?;
            let _ = write!(v, ", qop={}, nc={nc_hex}", q.as_str());
        }
        if let Some(o) = &self.opaque {
            v.push_str(", ");
            quoted(&mut v, "opaque", o)?;
        }
        Ok(v)
    }
}

/// A credentials header to add to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthHeader {
    /// `Authorization` or `Proxy-Authorization`.
    pub name: HeaderName,
    /// The realm the credentials are for.
    pub realm: String,
    /// The header value, `Digest username="…", …`.
    pub value: String,
}

impl AuthHeader {
    /// Adds this header to `headers`, first removing any `name` header with credentials
    /// for the same realm (credentials for other realms stay, RFC 3261 §22.3).
    pub fn apply_to(&self, headers: &mut Headers) {
        headers.0.retain(|h| h.name != self.name || realm_of(&h.value).as_deref() != Some(self.realm.as_str()));
        headers.push(self.name.clone(), self.value.clone());
    }
}

/// What we remember of one (kind, realm).
#[derive(Clone, Debug)]
struct Entry {
    kind: ChallengeKind,
    challenge: Challenge,
    cnonce: String,
    /// The last nonce count used with `challenge.nonce`.
    nc: u32,
    /// The nonce came from a `stale=true` challenge.
    from_stale: bool,
}

/// Where cnonces come from.
enum CnonceSource {
    /// splitmix64 state, seeded by the caller.
    Seeded(u64),
    /// A caller-supplied generator.
    Custom(Box<dyn FnMut() -> String + Send>),
}

/// The digest state of one account (sans-IO): the last challenge per realm and kind,
/// nonce counts, and the cnonce generator.
///
/// Use [`respond`](DigestClient::respond) when a request gets a 401/407, and
/// [`authorize`](DigestClient::authorize) to add credentials to a later request (a
/// REGISTER refresh, an in-dialog BYE) without waiting for a challenge. An ACK for a
/// 2xx carries the INVITE's credentials unchanged (RFC 3261 §22.1); copy them.
pub struct DigestClient {
    creds: Credentials,
    cnonce: CnonceSource,
    entries: Vec<Entry>,
}

impl fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestClient")
            .field("creds", &self.creds)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl DigestClient {
    /// A client whose cnonces come from a generator seeded with `seed`. Seed it from a
    /// real random source (the driver's RNG): the cnonce defends against chosen-plaintext
    /// attacks by the server (RFC 7616 §5.12), so it should not be predictable.
    pub fn new(creds: Credentials, seed: u64) -> DigestClient {
        DigestClient { creds, cnonce: CnonceSource::Seeded(seed), entries: Vec::new() }
    }

    /// A client that asks `cnonce` for each new client nonce (one per server nonce).
    pub fn with_cnonce_source(creds: Credentials, cnonce: impl FnMut() -> String + Send + 'static) -> DigestClient {
        DigestClient { creds, cnonce: CnonceSource::Custom(Box::new(cnonce)), entries: Vec::new() }
    }

    /// The credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// The remembered challenge for `kind` and `realm`, if any.
    pub fn challenge(&self, kind: ChallengeKind, realm: &str) -> Option<&Challenge> {
        self.entry(kind, realm).map(|e| &e.challenge)
    }

    /// Forgets every remembered challenge (e.g. after the password changed).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Credentials for `request` (resent with CSeq + 1), which got `response`, a 401 or
    /// 407. One header per challenged realm (a forking proxy may aggregate several,
    /// RFC 3261 §22.3); add each with [`AuthHeader::apply_to`]. Challenges we cannot
    /// use (other schemes, unknown algorithms) are skipped; if none is usable, an error.
    ///
    /// `request` is the request as sent: the credentials it already carried tell a
    /// rejection from a first challenge. If it carried ours for a realm and the new
    /// challenge is not `stale=true`, the password is wrong: [`AuthError::Rejected`]
    /// (the remembered challenge is dropped). One stale retry is allowed; a second stale
    /// in a row is [`AuthError::StaleAgain`]. So a caller that stops on error never loops.
    /// Credentials that reused a remembered nonce (nc > 1) and meet a new nonce get one
    /// fresh try, since the server may just have expired the nonce without saying stale.
    pub fn respond(&mut self, request: &Request, response: &Response) -> Result<Vec<AuthHeader>, AuthError> {
        let kind = ChallengeKind::from_status(response.status).ok_or(AuthError::NotAChallenge(response.status))?;
        let chal_name = kind.challenge_header();
        let values: Vec<&str> = response.headers.get_all(&chal_name).map(|v| v.as_str()).collect();
        if values.is_empty() {
            return Err(AuthError::NoChallenge {
                status: response.status,
                header: match kind {
                    ChallengeKind::Www => "WWW-Authenticate",
                    ChallengeKind::Proxy => "Proxy-Authenticate",
                },
            });
        }

        // Group the challenges by realm, keeping first-seen order.
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        let mut unusable: Vec<String> = Vec::new();
        for v in &values {
            match Challenge::parse(v) {
                Ok(c) => match groups.iter_mut().find(|(r, _)| *r == c.realm) {
                    Some((_, vs)) => vs.push(v),
                    None => groups.push((c.realm, vec![v])),
                },
                Err(e) => unusable.push(e.to_string()),
            }
        }
        if groups.is_empty() {
            return Err(match values.len() {
                1 => Challenge::parse(values[0]).err().unwrap_or(AuthError::NoUsableChallenge(String::new())),
                _ => AuthError::NoUsableChallenge(unusable.join("; ")),
            });
        }

        // Decide for every realm before changing any state.
        let sent = sent_credentials(&request.headers, &kind.credentials_header());
        let mut plans: Vec<(Challenge, Adopt)> = Vec::with_capacity(groups.len());
        for (realm, vs) in groups {
            let c = Challenge::select(vs)?;
            match self.decide(kind, &c, sent.iter().find(|s| s.realm == realm)) {
                Ok(adopt) => plans.push((c, adopt)),
                Err(e) => {
                    // Rejected or stale twice: never send these credentials again.
                    self.entries.retain(|e| !(e.kind == kind && e.challenge.realm == realm));
                    return Err(e);
                }
            }
        }

        let target = Target::from(request);
        let mut out = Vec::with_capacity(plans.len());
        for (c, adopt) in plans {
            let i = self.adopt(kind, c, adopt);
            out.push(self.credentials_for(i, target)?);
        }
        Ok(out)
    }

    /// Credentials for a new request from every remembered challenge, each with its nonce
    /// count incremented (RFC 7616 §3.4: nc counts the requests sent with one nonce).
    /// Empty when nothing has been challenged yet.
    pub fn authorize(&mut self, target: Target<'_>) -> Result<Vec<AuthHeader>, AuthError> {
        let mut out = Vec::with_capacity(self.entries.len());
        for i in 0..self.entries.len() {
            let e = &mut self.entries[i];
            e.nc =
                e.nc.checked_add(1)
                    .ok_or_else(|| AuthError::NonceCountExhausted { realm: e.challenge.realm.clone() })?;
            out.push(self.credentials_for(i, target)?);
        }
        Ok(out)
    }

    fn entry(&self, kind: ChallengeKind, realm: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.kind == kind && e.challenge.realm == realm)
    }

    /// What to do with challenge `c`, given the credentials `sent` for its realm.
    fn decide(&self, kind: ChallengeKind, c: &Challenge, sent: Option<&Sent>) -> Result<Adopt, AuthError> {
        let entry = self.entry(kind, &c.realm);
        let Some(sent) = sent else {
            // A first challenge (or a request sent without credentials): reuse a nonce we
            // already hold, counting on, else start a new one.
            return Ok(match entry {
                Some(e) if e.challenge.nonce == c.nonce && e.challenge.algorithm == c.algorithm => Adopt::Reuse,
                _ => Adopt::Fresh { from_stale: false },
            });
        };
        // The count the sent credentials used with their nonce, or what we issued last.
        let sent_nc = sent.nc.or_else(|| entry.filter(|e| e.challenge.nonce == sent.nonce).map(|e| e.nc));
        if c.stale {
            let first_use_of_stale_nonce = entry.is_some_and(|e| e.from_stale && e.challenge.nonce == sent.nonce)
                && sent_nc.is_none_or(|n| n <= 1);
            if first_use_of_stale_nonce {
                return Err(AuthError::StaleAgain { realm: c.realm.clone() });
            }
            return Ok(Adopt::Fresh { from_stale: true });
        }
        let reused = sent_nc.is_some_and(|n| n > 1);
        if reused && c.nonce != sent.nonce {
            return Ok(Adopt::Fresh { from_stale: false });
        }
        Err(AuthError::Rejected { realm: c.realm.clone() })
    }

    /// Stores `c` per `adopt`; returns its entry index with `nc` set for the next use.
    fn adopt(&mut self, kind: ChallengeKind, c: Challenge, adopt: Adopt) -> usize {
        let found = self.entries.iter().position(|e| e.kind == kind && e.challenge.realm == c.realm);
        match (adopt, found) {
            (Adopt::Reuse, Some(i)) if self.entries[i].nc < u32::MAX => {
                let e = &mut self.entries[i];
                e.nc += 1;
                e.challenge = c;
                i
            }
            (adopt, found) => {
                let from_stale = matches!(adopt, Adopt::Fresh { from_stale: true });
                let entry = Entry { kind, challenge: c, cnonce: self.next_cnonce(), nc: 1, from_stale };
                match found {
                    Some(i) => {
                        self.entries[i] = entry;
                        i
                    }
                    None => {
                        self.entries.push(entry);
                        self.entries.len() - 1
                    }
                }
            }
        }
    }

    fn credentials_for(&self, i: usize, target: Target<'_>) -> Result<AuthHeader, AuthError> {
        let e = &self.entries[i];
        let value = e.challenge.authorization(&self.creds, target, &e.cnonce, e.nc)?;
        Ok(AuthHeader { name: e.kind.credentials_header(), realm: e.challenge.realm.clone(), value })
    }

    fn next_cnonce(&mut self) -> String {
        match &mut self.cnonce {
            CnonceSource::Seeded(state) => {
                let a = splitmix64(state);
                let b = splitmix64(state);
                format!("{a:016x}{b:016x}")
            }
            CnonceSource::Custom(f) => f(),
        }
    }
}

/// How a usable challenge changes our state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Adopt {
    /// Same nonce as remembered: count on.
    Reuse,
    /// A new nonce: nc = 1, new cnonce.
    Fresh { from_stale: bool },
}

/// Digest credentials found in a request we sent.
struct Sent {
    realm: String,
    nonce: String,
    nc: Option<u32>,
}

/// The digest credentials in `headers` named `name`; unparsable ones are skipped.
fn sent_credentials(headers: &Headers, name: &HeaderName) -> Vec<Sent> {
    headers
        .get_all(name)
        .filter_map(|v| {
            let p = AuthParams::parse(v).ok()?;
            if !p.scheme.eq_ignore_ascii_case("Digest") {
                return None;
            }
            Some(Sent {
                realm: p.get("realm")?.to_owned(),
                nonce: p.get("nonce").unwrap_or_default().to_owned(),
                nc: p.get("nc").and_then(|n| u32::from_str_radix(n, 16).ok()),
            })
        })
        .collect()
}

/// The realm of a credentials header value, if it parses.
fn realm_of(value: &str) -> Option<String> {
    AuthParams::parse(value).ok()?.get("realm").map(str::to_owned)
}

/// Appends `name="value"`, escaping `"` and `\` (RFC 3261 §25.1 quoted-pair).
fn quoted(out: &mut String, name: &'static str, value: &str) -> Result<(), AuthError> {
    if value.chars().any(|c| c.is_control()) {
        return Err(AuthError::InvalidValue(name));
    }
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// splitmix64 (Steele, Lea, Flood 2014): a small, well-mixed generator for cnonces.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::Method;

    /// The value of `name` in a credentials header.
    fn param(value: &str, name: &str) -> Option<String> {
        AuthParams::parse(value).unwrap().get(name).map(str::to_owned)
    }

    fn fixed(cnonce: &'static str) -> impl FnMut() -> String + Send + 'static {
        move || cnonce.to_owned()
    }

    fn challenged(status: u16, values: &[&str]) -> Response {
        let mut r = Response::new(status, crate::msg::reason_phrase(status));
        let name = ChallengeKind::from_status(status).map_or(HeaderName::WwwAuthenticate, |k| k.challenge_header());
        for v in values {
            r.headers.push(name.clone(), v.to_string());
        }
        r
    }

    /// `req` resent with the credentials `hs`.
    fn resend(req: &Request, hs: &[AuthHeader]) -> Request {
        let mut r = req.clone();
        for h in hs {
            h.apply_to(&mut r.headers);
        }
        r
    }

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

    fn rfc7616_challenge(alg: &str) -> String {
        format!(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}""#
        )
    }

    const GET_DIR: Target<'static> = Target { method: "GET", uri: "/dir/index.html", body: b"" };

    #[test]
    fn rfc7616_md5_and_sha256_examples() {
        // RFC 7616 §3.9.1 (user "Mufasa", password "Circle of Life" with a lowercase "of",
        // errata 4495): the server offers qop "auth, auth-int", the client answers auth.
        let creds = Credentials::new("Mufasa", "Circle of Life");
        for (alg, expected) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ] {
            let c = Challenge::parse(&rfc7616_challenge(alg)).unwrap();
            let v = c.authorization(&creds, GET_DIR, RFC7616_CNONCE, 1).unwrap();
            assert_eq!(
                v,
                format!(
                    r#"Digest username="Mufasa", realm="http-auth@example.org", nonce="{RFC7616_NONCE}", uri="/dir/index.html", response="{expected}", algorithm={alg}, cnonce="{RFC7616_CNONCE}", qop=auth, nc=00000001, opaque="{RFC7616_OPAQUE}""#
                )
            );
        }
    }

    #[test]
    fn rfc2617_example() {
        // RFC 2617 §3.5: password "Circle Of Life", cnonce "0a4f113b", nc 1, qop auth.
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.qop, vec![Qop::Auth, Qop::AuthInt]);
        assert_eq!(c.chosen_qop(), Some(Qop::Auth));
        let v = c.authorization(&Credentials::new("Mufasa", "Circle Of Life"), GET_DIR, "0a4f113b", 1).unwrap();
        assert_eq!(param(&v, "response").as_deref(), Some("6629fae49393a05397450978507c4ef1"));
        assert_eq!(param(&v, "opaque").as_deref(), Some("5ccc069c403ebaf9f0171e9517f40e41"));
    }

    #[test]
    fn client_answers_rfc7616_challenge() {
        let mut client =
            DigestClient::with_cnonce_source(Credentials::new("Mufasa", "Circle of Life"), fixed(RFC7616_CNONCE));
        let req = Request::new(Method::Other("GET".into()), "/dir/index.html");
        let hs = client.respond(&req, &challenged(401, &[&rfc7616_challenge("SHA-256")])).unwrap();
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].name, HeaderName::Authorization);
        assert_eq!(hs[0].realm, "http-auth@example.org");
        assert_eq!(
            param(&hs[0].value, "response").as_deref(),
            Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        );
    }

    // Expected values for the vectors below were computed independently with Python's
    // hashlib from the formulas of RFC 7616 §3.4.1–§3.4.3.
    const REALM: &str = "sip.example.com";
    const CNONCE: &str = "0123456789abcdef";
    fn alice() -> Credentials {
        Credentials::new("alice", "secret")
    }
    const REGISTER: Target<'static> = Target { method: "REGISTER", uri: "sip:example.com", body: b"" };

    #[test]
    fn auth_int_hashes_the_body() {
        let c = Challenge::parse(r#"Digest realm="sip.example.com", nonce="abc123", qop="auth-int""#).unwrap();
        assert_eq!(c.chosen_qop(), Some(Qop::AuthInt));
        let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n";
        let t = Target { method: "INVITE", uri: "sip:bob@example.com", body };
        let v = c.authorization(&alice(), t, CNONCE, 1).unwrap();
        assert_eq!(param(&v, "response").as_deref(), Some("9a02035aebc763cdca4f95f073c26f32"));
        assert_eq!(param(&v, "qop").as_deref(), Some("auth-int"));
        assert!(v.contains("qop=auth-int, nc=00000001"), "{v}");
        // Another body, another response.
        let v2 = c.authorization(&alice(), Target { body: b"", ..t }, CNONCE, 1).unwrap();
        assert_ne!(param(&v, "response"), param(&v2, "response"));
    }

    #[test]
    fn sess_and_sha512_256_variants() {
        for (alg, expected) in [
            ("MD5-sess", "30532cec94952ef521efa441a84ee850"),
            ("sha-256-SESS", "605c3d884efbd1fa22923e80e7f7c641084bc44bf038d8cb3a3ccc7b5f2934c4"),
            ("SHA-512-256", "2c98095bd6f8432116f6d8f29153d5549619775618d311890d38f00bb6f47b5a"),
        ] {
            let c =
                Challenge::parse(&format!(r#"Digest realm="{REALM}", nonce="abc123", qop="auth", algorithm={alg}"#))
                    .unwrap();
            let v = c.authorization(&alice(), REGISTER, CNONCE, 1).unwrap();
            assert_eq!(param(&v, "response").as_deref(), Some(expected), "{alg}");
            assert_eq!(param(&v, "algorithm").as_deref(), Some(c.algorithm.as_str()));
        }
        assert_eq!(Algorithm::parse("sha-512-256-sess"), Some(Algorithm::Sha512_256Sess));
        // A -sess algorithm needs a cnonce, hence a qop.
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=MD5-sess"#),
            Err(AuthError::SessWithoutQop("MD5-sess"))
        );
    }

    #[test]
    fn rfc2069_form_without_qop() {
        let c = Challenge::parse(r#"Digest realm="sip.example.com", nonce="abc123""#).unwrap();
        assert_eq!(c.chosen_qop(), None);
        let v = c.authorization(&alice(), REGISTER, CNONCE, 1).unwrap();
        assert_eq!(param(&v, "response").as_deref(), Some("5175a69276df5ba2469ee964d43ca035"));
        assert_eq!(param(&v, "qop"), None);
        assert_eq!(param(&v, "nc"), None);
        assert_eq!(param(&v, "cnonce"), None);
        assert_eq!(param(&v, "opaque"), None);
    }

    #[test]
    fn nonce_count_increments_and_resets() {
        let mut client = DigestClient::new(alice(), 7);
        let req = Request::new(Method::Register, "sip:example.com");
        let chal = r#"Digest realm="sip.example.com", nonce="n1", qop="auth", opaque="o""#;
        let hs = client.respond(&req, &challenged(401, &[chal])).unwrap();
        assert_eq!(param(&hs[0].value, "nc").as_deref(), Some("00000001"));
        let cnonce = param(&hs[0].value, "cnonce").unwrap();
        assert_eq!(cnonce.len(), 32);

        // Pre-emptive credentials for later requests count on, with the same cnonce.
        let bye = Target { method: "BYE", uri: "sip:bob@192.0.2.9", body: b"" };
        let a = client.authorize(bye).unwrap();
        let b = client.authorize(REGISTER).unwrap();
        assert_eq!(param(&a[0].value, "nc").as_deref(), Some("00000002"));
        assert_eq!(param(&b[0].value, "nc").as_deref(), Some("00000003"));
        assert_eq!(param(&a[0].value, "uri").as_deref(), Some("sip:bob@192.0.2.9"));
        assert_eq!(param(&b[0].value, "cnonce"), Some(cnonce.clone()));
        assert_eq!(param(&b[0].value, "opaque").as_deref(), Some("o"));

        // A request sent without credentials and challenged with the same nonce: count on.
        let hs = client.respond(&req, &challenged(401, &[chal])).unwrap();
        assert_eq!(param(&hs[0].value, "nc").as_deref(), Some("00000004"));

        // A new nonce starts again at 1 with a new cnonce.
        let hs = client
            .respond(&req, &challenged(401, &[r#"Digest realm="sip.example.com", nonce="n2", qop="auth""#]))
            .unwrap();
        assert_eq!(param(&hs[0].value, "nc").as_deref(), Some("00000001"));
        assert_ne!(param(&hs[0].value, "cnonce"), Some(cnonce));
        assert_eq!(client.challenge(ChallengeKind::Www, REALM).unwrap().nonce, "n2");
    }

    #[test]
    fn stale_allows_one_retry() {
        let mut client = DigestClient::new(alice(), 1);
        let req = Request::new(Method::Register, "sip:example.com");
        let hs = client.respond(&req, &challenged(401, &[r#"Digest realm="r", nonce="n1", qop="auth""#])).unwrap();
        let req2 = resend(&req, &hs);

        // Our credentials were good but the nonce expired: retry with the new nonce.
        let hs = client
            .respond(&req2, &challenged(401, &[r#"Digest realm="r", nonce="n2", qop="auth", stale=TRUE"#]))
            .unwrap();
        assert_eq!(param(&hs[0].value, "nonce").as_deref(), Some("n2"));
        assert_eq!(param(&hs[0].value, "nc").as_deref(), Some("00000001"));
        let req3 = resend(&req2, &hs);
        assert_eq!(req3.headers.count(&HeaderName::Authorization), 1);

        // Stale again at once: give up.
        let again =
            client.respond(&req3, &challenged(401, &[r#"Digest realm="r", nonce="n3", qop="auth", stale=true"#]));
        assert_eq!(again, Err(AuthError::StaleAgain { realm: "r".into() }));
    }

    #[test]
    fn second_non_stale_challenge_is_a_rejection() {
        let mut client = DigestClient::new(alice(), 2);
        let req = Request::new(Method::Register, "sip:example.com");
        let chal = challenged(401, &[r#"Digest realm="r", nonce="n1", qop="auth""#]);
        let hs = client.respond(&req, &chal).unwrap();
        let req2 = resend(&req, &hs);
        assert_eq!(client.respond(&req2, &chal), Err(AuthError::Rejected { realm: "r".into() }));
        // Even with a new nonce, as long as it is not stale.
        let mut client = DigestClient::new(alice(), 2);
        let hs = client.respond(&req, &chal).unwrap();
        let req2 = resend(&req, &hs);
        let other = challenged(401, &[r#"Digest realm="r", nonce="n9", qop="auth", stale=false"#]);
        let err = client.respond(&req2, &other).unwrap_err();
        assert_eq!(err.to_string(), "credentials for realm \"r\" were rejected");
        // The rejected challenge is forgotten: no more pre-emptive credentials.
        assert!(client.authorize(REGISTER).unwrap().is_empty());
        assert!(client.challenge(ChallengeKind::Www, "r").is_none());
    }

    #[test]
    fn reused_nonce_gets_one_fresh_try() {
        // A refresh sent pre-emptively (nc 2) meets a new, non-stale nonce: the server may
        // have expired the nonce without saying so. One fresh try, then rejection.
        let mut client = DigestClient::new(alice(), 3);
        let req = Request::new(Method::Register, "sip:example.com");
        client.respond(&req, &challenged(401, &[r#"Digest realm="r", nonce="n1", qop="auth""#])).unwrap();
        let refresh = resend(&req, &client.authorize(Target::from(&req)).unwrap());
        assert!(refresh.headers.get(&HeaderName::Authorization).unwrap().contains("nc=00000002"));
        let chal = challenged(401, &[r#"Digest realm="r", nonce="n2", qop="auth""#]);
        let hs = client.respond(&refresh, &chal).unwrap();
        assert_eq!(param(&hs[0].value, "nc").as_deref(), Some("00000001"));
        let retry = resend(&refresh, &hs);
        assert_eq!(retry.headers.count(&HeaderName::Authorization), 1);
        assert_eq!(client.respond(&retry, &chal), Err(AuthError::Rejected { realm: "r".into() }));
    }

    #[test]
    fn prefers_sha256_over_md5() {
        let md5 = r#"Digest realm="r", nonce="n-md5", qop="auth", algorithm=MD5"#;
        let sha = r#"Digest realm="r", nonce="n-sha", qop="auth", algorithm=SHA-256"#;
        for order in [[md5, sha], [sha, md5]] {
            let mut client = DigestClient::new(alice(), 4);
            let req = Request::new(Method::Invite, "sip:bob@example.com");
            let mut values = vec![r#"Basic realm="r""#, r#"Digest realm="r", nonce="x", algorithm=SHA-1024"#];
            values.extend(order);
            let hs = client.respond(&req, &challenged(401, &values)).unwrap();
            assert_eq!(hs.len(), 1);
            assert_eq!(param(&hs[0].value, "algorithm").as_deref(), Some("SHA-256"));
            assert_eq!(param(&hs[0].value, "nonce").as_deref(), Some("n-sha"));
        }
        // Among equals the topmost wins (RFC 8760 §2.4).
        let c = Challenge::select([md5, r#"Digest realm="r", nonce="second", algorithm=md5"#]).unwrap();
        assert_eq!(c.nonce, "n-md5");
        let c = Challenge::select([md5, sha, r#"Digest realm="r", nonce="t", algorithm=SHA-512-256"#]).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha512_256);
    }

    #[test]
    fn proxy_challenge_gets_proxy_authorization() {
        let mut client = DigestClient::new(alice(), 5);
        let mut req = Request::new(Method::Invite, "sip:bob@example.com");
        req.headers.push(
            HeaderName::Authorization,
            r#"Digest username="alice", realm="uas", nonce="u", uri="x", response="y""#,
        );
        let resp = challenged(407, &[r#"Digest realm="proxy.example.com", nonce="p1", qop="auth""#]);
        assert!(resp.headers.get(&HeaderName::ProxyAuthenticate).is_some());
        let hs = client.respond(&req, &resp).unwrap();
        assert_eq!(hs[0].name, HeaderName::ProxyAuthorization);
        let req2 = resend(&req, &hs);
        // The Authorization for the other realm stays.
        assert_eq!(req2.headers.count(&HeaderName::Authorization), 1);
        assert_eq!(req2.headers.count(&HeaderName::ProxyAuthorization), 1);
        // Kinds are separate: a 401 for the same realm name is a first challenge.
        let www = challenged(401, &[r#"Digest realm="proxy.example.com", nonce="w1", qop="auth""#]);
        let hs = client.respond(&req2, &www).unwrap();
        assert_eq!(hs[0].name, HeaderName::Authorization);
        // And the 407 again, answered already: rejected.
        assert_eq!(client.respond(&req2, &resp), Err(AuthError::Rejected { realm: "proxy.example.com".into() }));
        // authorize covers what is remembered: here the 401 realm only.
        let pre = client.authorize(Target::from(&req2)).unwrap();
        assert_eq!(pre.len(), 1);
        assert_eq!(pre[0].name, HeaderName::Authorization);
    }

    #[test]
    fn several_realms_answered_each() {
        // A forking proxy aggregating two 407s (RFC 3261 §22.3).
        let mut client = DigestClient::new(alice(), 6);
        let req = Request::new(Method::Invite, "sip:bob@example.com");
        let resp = challenged(
            407,
            &[
                r#"Digest realm="a", nonce="na", qop="auth""#,
                r#"Digest realm="b", nonce="nb", algorithm=SHA-256, qop="auth""#,
            ],
        );
        let hs = client.respond(&req, &resp).unwrap();
        assert_eq!(hs.iter().map(|h| h.realm.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let req2 = resend(&req, &hs);
        assert_eq!(req2.headers.count(&HeaderName::ProxyAuthorization), 2);
        let req3 = resend(&req2, &client.authorize(Target::from(&req2)).unwrap());
        assert_eq!(req3.headers.count(&HeaderName::ProxyAuthorization), 2);
        assert!(req3.headers.get_all(&HeaderName::ProxyAuthorization).all(|v| v.contains("nc=00000002")));
    }

    #[test]
    fn parses_challenge_fields() {
        let c = Challenge::parse(
            r#"DIGEST Realm="atlanta.com", domain="sip:ss1.carrier.com sip:ss2.carrier.com", NONCE="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm="md5", qop="auth-int,auth,auth-conf""#,
        )
        .unwrap();
        assert_eq!(c.realm, "atlanta.com");
        assert_eq!(c.nonce, "f84f1cec41e6cbe5aea9c8e88d359");
        assert_eq!(c.opaque.as_deref(), Some(""));
        assert!(!c.stale);
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.qop, vec![Qop::AuthInt, Qop::Auth]);
        assert_eq!(c.chosen_qop(), Some(Qop::Auth));
        assert_eq!(c.domain, vec!["sip:ss1.carrier.com", "sip:ss2.carrier.com"]);
    }

    #[test]
    fn quoting_and_unsafe_values() {
        let c = Challenge::parse(r#"Digest realm="a \"q\" realm", nonce="n""#).unwrap();
        assert_eq!(c.realm, r#"a "q" realm"#);
        let v = c.authorization(&Credentials::new(r"al\ice", "p"), REGISTER, CNONCE, 1).unwrap();
        assert!(v.starts_with(r#"Digest username="al\\ice", realm="a \"q\" realm""#), "{v}");
        // Round trip through our own parser.
        assert_eq!(param(&v, "username").as_deref(), Some(r"al\ice"));
        assert_eq!(param(&v, "realm").as_deref(), Some(r#"a "q" realm"#));
        // Header injection is refused.
        let bad = Credentials::new("alice\r\nX-Evil: 1", "p");
        assert_eq!(c.authorization(&bad, REGISTER, CNONCE, 1), Err(AuthError::InvalidValue("username")));
        let bad_uri = Target { uri: "sip:a\nb", ..REGISTER };
        assert_eq!(c.authorization(&alice(), bad_uri, CNONCE, 1), Err(AuthError::InvalidValue("uri")));
        assert!(!format!("{:?}", alice()).contains("secret"));
    }

    #[test]
    fn malformed_challenges_are_errors() {
        use AuthError::*;
        type Check = fn(&AuthError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, Malformed(_))),
            ("Digest", |e| matches!(e, MissingParam("realm"))),
            (r#"Digest realm="r""#, |e| matches!(e, MissingParam("nonce"))),
            (r#"Digest nonce="n""#, |e| matches!(e, MissingParam("realm"))),
            (r#"Basic realm="r""#, |e| matches!(e, NotDigest(s) if s == "Basic")),
            (r#"Digest realm="r", nonce="n", algorithm=SHA-1"#, |e| matches!(e, UnsupportedAlgorithm(_))),
            (r#"Digest realm="r", nonce="n", qop="auth-conf""#, |e| matches!(e, UnsupportedQop(_))),
            (r#"Digest realm="r", nonce="n", nonce="m""#, |e| matches!(e, DuplicateParam(p) if p == "nonce")),
            (r#"Digest realm="r", nonce"#, |e| matches!(e, Malformed(_))),
            (r#"Digest realm="r", =x, nonce="n""#, |e| matches!(e, Malformed(_))),
            ("Digest realm=\"unterminated, nonce=\"n", |e| matches!(e, MissingParam(_) | Malformed(_))),
            ("Di\"gest realm=r, nonce=n", |e| matches!(e, Malformed(_))),
            (r#"Digest qop=auth,auth-int, realm="r", nonce="n""#, |e| matches!(e, Malformed(_))),
        ];
        for (s, ok) in cases {
            let e = Challenge::parse(s).unwrap_err();
            assert!(ok(&e), "{s:?} gave {e:?}");
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn response_level_errors() {
        let mut client = DigestClient::new(alice(), 8);
        let req = Request::new(Method::Register, "sip:example.com");
        assert_eq!(client.respond(&req, &Response::new(200, "OK")), Err(AuthError::NotAChallenge(200)));
        assert_eq!(
            client.respond(&req, &Response::new(407, "Proxy Authentication Required")),
            Err(AuthError::NoChallenge { status: 407, header: "Proxy-Authenticate" })
        );
        // A 401 whose challenge sits in the wrong header.
        let mut r = Response::new(401, "Unauthorized");
        r.headers.push(HeaderName::ProxyAuthenticate, r#"Digest realm="r", nonce="n""#);
        assert!(matches!(client.respond(&req, &r), Err(AuthError::NoChallenge { .. })));
        // One unusable challenge: its own error.
        let r = challenged(401, &[r#"Digest realm="r", nonce="n", algorithm=SHA-1"#]);
        assert_eq!(client.respond(&req, &r), Err(AuthError::UnsupportedAlgorithm("SHA-1".into())));
        // Several: all reasons.
        let r = challenged(401, &[r#"Basic realm="r""#, r#"Digest realm="r", nonce="n", algorithm=SHA-1"#]);
        let e = client.respond(&req, &r).unwrap_err();
        assert!(matches!(e, AuthError::NoUsableChallenge(_)));
        assert!(e.to_string().contains("Basic") && e.to_string().contains("SHA-1"), "{e}");
        // Nothing was remembered.
        assert!(client.authorize(REGISTER).unwrap().is_empty());
    }

    #[test]
    fn nonce_count_exhaustion_is_an_error() {
        let mut client = DigestClient::new(alice(), 9);
        let req = Request::new(Method::Register, "sip:example.com");
        client.respond(&req, &challenged(401, &[r#"Digest realm="r", nonce="n", qop="auth""#])).unwrap();
        client.entries[0].nc = u32::MAX - 1;
        let last = client.authorize(REGISTER).unwrap();
        assert_eq!(param(&last[0].value, "nc").as_deref(), Some("ffffffff"));
        assert_eq!(client.authorize(REGISTER), Err(AuthError::NonceCountExhausted { realm: "r".into() }));
        // Challenged again with the same nonce: start over rather than wrap.
        let hs = client.respond(&req, &challenged(401, &[r#"Digest realm="r", nonce="n", qop="auth""#])).unwrap();
        assert_eq!(param(&hs[0].value, "nc").as_deref(), Some("00000001"));
    }

    #[test]
    fn seeded_cnonces_are_deterministic_and_distinct() {
        let run = |seed| {
            let mut c = DigestClient::new(alice(), seed);
            (c.next_cnonce(), c.next_cnonce())
        };
        let (a, b) = run(42);
        assert_eq!(run(42), (a.clone(), b.clone()));
        assert_ne!(a, b);
        assert_ne!(run(43).0, a);
    }

    /// Deterministic junk and mutations of good challenges: errors, never panics.
    #[test]
    fn fuzzish_inputs_never_panic() {
        let good = [
            rfc7616_challenge("SHA-256"),
            r#"Digest realm="a \"b\", c", nonce="n", qop="auth-int", stale=true, domain="sip:x sip:y""#.to_owned(),
        ];
        let alphabet: Vec<char> = "Digest realm=nonce\"\\,; \t=auth-intqopMD5-sessSHA-256é\u{0}\r\n".chars().collect();
        let mut state = 0x1234_5678_u64;
        let mut inputs: Vec<String> = Vec::new();
        for g in &good {
            let chars: Vec<char> = g.chars().collect();
            for cut in 0..=chars.len() {
                inputs.push(chars[..cut].iter().collect());
                inputs.push(chars[cut..].iter().collect());
            }
            for _ in 0..300 {
                let mut m = chars.clone();
                for _ in 0..1 + splitmix64(&mut state) % 4 {
                    let at = (splitmix64(&mut state) % (m.len() as u64 + 1)) as usize;
                    let c = alphabet[(splitmix64(&mut state) % alphabet.len() as u64) as usize];
                    match splitmix64(&mut state) % 3 {
                        0 => m.insert(at, c),
                        1 if at < m.len() => m[at] = c,
                        _ if at < m.len() => {
                            m.remove(at);
                        }
                        _ => {}
                    }
                }
                inputs.push(m.into_iter().collect());
            }
        }
        for _ in 0..500 {
            let len = (splitmix64(&mut state) % 60) as usize;
            inputs
                .push((0..len).map(|_| alphabet[(splitmix64(&mut state) % alphabet.len() as u64) as usize]).collect());
        }
        let req = Request::new(Method::Register, "sip:example.com");
        for s in &inputs {
            if let Ok(c) = Challenge::parse(s) {
                let _ = c.authorization(&alice(), REGISTER, CNONCE, 1);
            }
            let _ = Challenge::select([s.as_str(), s.as_str()]);
            let mut client = DigestClient::new(alice(), 10);
            let resp = challenged(401, &[s]);
            if let Ok(hs) = client.respond(&req, &resp) {
                // Whatever we produce parses back, and a second round is decided too.
                for h in &hs {
                    assert!(AuthParams::parse(&h.value).is_ok(), "{s:?} → {}", h.value);
                }
                let _ = client.respond(&resend(&req, &hs), &resp);
            }
            let _ = client.respond(&req, &challenged(407, &[s, s]));
        }
    }
}
