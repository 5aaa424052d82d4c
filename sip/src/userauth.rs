//! Our own SIP users (softphones): the server side of digest authentication (RFC 3261
//! §22, RFC 7616, RFC 8760 for SHA-256). Users are stored as HA1 = H(user:realm:password)
//! for MD5 and SHA-256, never the password. Nonces carry their own time and a keyed hash
//! (so a forged or expired one is known without a table), expire after
//! [`NONCE_LIFETIME`] (then the challenge says `stale=true`), and each `nc` is accepted
//! once per nonce: a replayed request is refused. Sans-IO: the caller passes the time.

use crate::auth::Algorithm;
use crate::header::AuthParams;
use crate::msg::Request;
use crate::name::HeaderName;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a nonce is good for.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// One SIP user as the UA needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUser {
    /// The user name (the user part of its address, `username` in its credentials).
    pub username: String,
    /// H(username:realm:password) with MD5, hex.
    pub ha1_md5: String,
    /// The same with SHA-256, hex.
    pub ha1_sha256: String,
    /// Whose it is (an organization id, for the caller; opaque here).
    pub owner: String,
}

/// HA1 = H(username:realm:password), hex, for `alg` (MD5 or SHA-256): what is stored.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// What a request's credentials came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Good: this user.
    Ok(SipUser),
    /// None were given: challenge.
    Missing,
    /// Good once, but the nonce has expired: challenge with `stale=true`.
    Stale,
    /// Wrong: unknown user, wrong password, forged nonce, a replay, another realm.
    Bad(&'static str),
}

/// Checks SIP users' credentials and makes challenges.
#[derive(Debug)]
pub struct Authenticator {
    realm: String,
    users: HashMap<String, SipUser>,
    key: [u8; 32],
    epoch: Option<Instant>,
    /// Highest `nc` accepted per nonce.
    seen: HashMap<String, u32>,
    /// Makes each nonce unique within a millisecond.
    issued: u64,
    /// The algorithms offered, most preferred first.
    algorithms: Vec<Algorithm>,
}

impl Authenticator {
    /// An authenticator for `realm`, its nonce key derived from `seed` (pass randomness).
    pub fn new(realm: &str, seed: u64) -> Authenticator {
        let mut key = [0u8; 32];
        let mut s = seed ^ 0x6e6f_6e63_655f_6b65;
        for chunk in key.chunks_mut(8) {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        Authenticator {
            realm: realm.into(),
            users: HashMap::new(),
            key,
            epoch: None,
            seen: HashMap::new(),
            issued: 0,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }

    /// Offers these algorithms (MD5 and SHA-256 only; others are dropped), most preferred
    /// first; none: both, SHA-256 first.
    pub fn offer(&mut self, algorithms: &[Algorithm]) {
        let ok: Vec<Algorithm> =
            algorithms.iter().copied().filter(|a| matches!(a, Algorithm::Md5 | Algorithm::Sha256)).collect();
        if !ok.is_empty() {
            self.algorithms = ok;
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Replaces the users.
    pub fn set_users(&mut self, users: Vec<SipUser>) {
        self.users = users.into_iter().map(|u| (u.username.clone(), u)).collect();
    }

    /// Whether there are no users (then nobody is challenged).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn ms(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch).as_millis() as u64
    }

    fn mac(&self, stamp: &str) -> String {
        let mut d = Sha256::new();
        d.update(self.key);
        d.update(stamp.as_bytes());
        d.finalize()[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A fresh nonce, never handed out before: its time, a count, and a keyed hash of both.
    fn nonce(&mut self, now: Instant) -> String {
        self.issued += 1;
        let stamp = format!("{:x}-{:x}", self.ms(now), self.issued);
        let mac = self.mac(&stamp);
        format!("{stamp}.{mac}")
    }

    /// The challenge header values (one per algorithm offered, by default SHA-256 first
    /// as RFC 8760 §2.4 asks, then MD5 for older phones), with a fresh nonce.
    pub fn challenges(&mut self, now: Instant, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        let stale = if stale { ", stale=true" } else { "" };
        self.algorithms
            .iter()
            .map(|a| format!("Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={a}, qop=\"auth\"{stale}", self.realm))
            .collect()
    }

    /// Checks `req`'s credentials (`Authorization` or `Proxy-Authorization`) at `now`.
    pub fn check(&mut self, req: &Request, now: Instant) -> Check {
        let names = [HeaderName::Authorization, HeaderName::ProxyAuthorization];
        let value = names
            .iter()
            .flat_map(|h| req.headers.get_all(h))
            .find(|v| AuthParams::parse(v).is_ok_and(|p| p.get("realm") == Some(self.realm.as_str())));
        let Some(value) = value else { return Check::Missing };
        let Ok(p) = AuthParams::parse(value) else { return Check::Bad("unreadable credentials") };
        if !p.scheme.eq_ignore_ascii_case("Digest") {
            return Check::Bad("not Digest");
        }
        let field = |n: &str| p.get(n).unwrap_or("");
        let nonce = field("nonce");
        let Some((stamp, mac)) = nonce.split_once('.') else { return Check::Bad("not our nonce") };
        if !same(mac.as_bytes(), self.mac(stamp).as_bytes()) {
            return Check::Bad("not our nonce");
        }
        let ms = stamp.split('-').next().unwrap_or("");
        let Ok(issued) = u64::from_str_radix(ms, 16) else { return Check::Bad("not our nonce") };
        let age = self.ms(now).saturating_sub(issued);
        let Some(user) = self.users.get(field("username")).cloned() else { return Check::Bad("no such user") };
        let alg = match p.get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => match Algorithm::parse(a) {
                Some(a @ (Algorithm::Md5 | Algorithm::Md5Sess | Algorithm::Sha256 | Algorithm::Sha256Sess)) => a,
                _ => return Check::Bad("algorithm not offered"),
            },
        };
        let base = match alg {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            _ => Algorithm::Sha256,
        };
        if !self.algorithms.contains(&base) {
            return Check::Bad("algorithm not offered");
        }
        if !field("qop").eq_ignore_ascii_case("auth") {
            return Check::Bad("qop=auth is required");
        }
        let Ok(nc) = u32::from_str_radix(field("nc"), 16) else { return Check::Bad("no nc") };
        let cnonce = field("cnonce");
        let mut h1 = match alg {
            Algorithm::Md5 | Algorithm::Md5Sess => user.ha1_md5.clone(),
            _ => user.ha1_sha256.clone(),
        };
        if alg.is_sess() {
            h1 = alg.hash(&[h1.as_bytes(), nonce.as_bytes(), cnonce.as_bytes()]);
        }
        let h2 = alg.hash(&[req.method.as_str().as_bytes(), field("uri").as_bytes()]);
        let expected = alg.hash(&[
            h1.as_bytes(),
            nonce.as_bytes(),
            field("nc").as_bytes(),
            cnonce.as_bytes(),
            b"auth",
            h2.as_bytes(),
        ]);
        if !same(expected.as_bytes(), field("response").to_ascii_lowercase().as_bytes()) {
            return Check::Bad("wrong password");
        }
        if age > NONCE_LIFETIME.as_millis() as u64 {
            return Check::Stale;
        }
        // Each nc once per nonce (RFC 7616 §3.3: a replay is refused).
        let last = self.seen.entry(nonce.to_string()).or_insert(0);
        if nc <= *last {
            return Check::Bad("replayed nonce count");
        }
        *last = nc;
        if self.seen.len() > 50_000 {
            let now_ms = self.ms(now);
            let ttl = NONCE_LIFETIME.as_millis() as u64;
            self.seen.retain(|n, _| {
                let ms = n.split(['-', '.']).next().unwrap_or("");
                u64::from_str_radix(ms, 16).is_ok_and(|t| now_ms.saturating_sub(t) <= ttl)
            });
        }
        Check::Ok(user)
    }
}

/// Equal in constant time for equal lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Challenge, Credentials, Target};
    use crate::method::Method;
    use crate::text::SipStr;

    fn alice(realm: &str) -> SipUser {
        SipUser {
            username: "alice".into(),
            ha1_md5: ha1(Algorithm::Md5, "alice", realm, "s3cret"),
            ha1_sha256: ha1(Algorithm::Sha256, "alice", realm, "s3cret"),
            owner: "org_a".into(),
        }
    }

    fn register(header: Option<String>) -> Request {
        let mut r = Request::new(Method::Register, SipStr::from("sip:dialtone"));
        if let Some(h) = header {
            r.headers.push(HeaderName::Authorization, SipStr::from(h));
        }
        r
    }

    /// Answers challenge `i` of `a`'s with `password`, nonce count `nc`.
    fn answer(a: &mut Authenticator, now: Instant, i: usize, password: &str, nc: u32) -> (Request, String) {
        let c = Challenge::parse(&a.challenges(now, false)[i]).unwrap();
        let creds = Credentials::new("alice", password);
        let target = Target { method: "REGISTER", uri: "sip:dialtone", body: &[] };
        let v = c.authorization(&creds, target, "0a4f113b", nc).unwrap();
        (register(Some(v.clone())), v)
    }

    #[test]
    fn ha1_matches_rfc_2617s_example() {
        // RFC 2617 §3.5: Mufasa / testrealm@host.com / Circle Of Life.
        assert_eq!(
            ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    #[test]
    fn good_credentials_pass_once_and_bad_ones_do_not() {
        let t0 = Instant::now();
        let mut a = Authenticator::new("dialtone", 7);
        a.set_users(vec![alice("dialtone")]);
        assert_eq!(a.check(&register(None), t0), Check::Missing);
        for i in [0, 1] {
            let (req, _) = answer(&mut a, t0, i, "s3cret", 1);
            assert_eq!(a.check(&req, t0), Check::Ok(alice("dialtone")), "challenge {i}");
            assert_eq!(a.check(&req, t0), Check::Bad("replayed nonce count"), "the same nc again");
        }
        let (req, _) = answer(&mut a, t0, 0, "guess", 1);
        assert_eq!(a.check(&req, t0), Check::Bad("wrong password"));
        // A nonce from another key (another dialtone, or made up) is not ours.
        let mut other = Authenticator::new("dialtone", 8);
        other.set_users(vec![alice("dialtone")]);
        let (req, _) = answer(&mut other, t0, 0, "s3cret", 1);
        assert_eq!(a.check(&req, t0), Check::Bad("not our nonce"));
        // Good but old: stale.
        let (req, _) = answer(&mut a, t0, 0, "s3cret", 1);
        assert_eq!(a.check(&req, t0 + NONCE_LIFETIME + Duration::from_secs(1)), Check::Stale);
        let stale = a.challenges(t0, true);
        assert!(stale.iter().all(|c| c.contains("stale=true")) && stale[0].contains("SHA-256"), "{stale:?}");
    }
}
