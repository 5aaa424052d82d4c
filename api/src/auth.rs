//! Who is asking and what it may do: the [`Principal`] behind an API key, a user's JWT or
//! `X-Internal-Key`; the credentials middleware ([`require_auth`]) with the per-key and
//! per-address limits; password and key hashing; JWTs.

use crate::errors::ApiError;
use crate::limits::{client_addr, too_many};
use crate::model::{Scope, PLATFORM_PERMISSION};
use crate::state::ApiState;
use crate::wire::now_ms;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How long a user's JWT lives.
pub const JWT_LIFETIME_S: i64 = 24 * 3600;

/// The claims of our JWTs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, s since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// The user's permissions.
    pub perms: Vec<String>,
}

/// An argon2id PHC string for `password` (a random salt).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let Ok(salt) = SaltString::encode_b64(&rand::random::<[u8; 16]>()) else { return String::new() };
    argon2::Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
}

/// Whether `password` matches the argon2 PHC string `phc`.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A signed HS256 JWT for a user.
pub fn issue_jwt(secret: &[u8], user_id: &str, perms: &[String], now_s: i64) -> String {
    let claims = Claims { sub: user_id.into(), iat: now_s, exp: now_s + JWT_LIFETIME_S, perms: perms.to_vec() };
    let Ok(key) = jsonwebtoken::EncodingKey::from_secret(secret) else { return String::new() };
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap_or_default()
}

/// The claims of a valid token: HS256 only (`alg` pinned: `none` and others refused), not expired.
pub fn check_jwt(secret: &[u8], token: &str) -> Option<Claims> {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.leeway = 0;
    v.set_required_spec_claims(&["exp", "sub"]);
    let key = jsonwebtoken::DecodingKey::from_secret(secret).ok()?;
    jsonwebtoken::decode::<Claims>(token, &key, &v).ok().map(|d| d.claims)
}

/// Who is asking.
#[derive(Clone, Debug)]
pub enum Principal {
    /// `X-Internal-Key`: everything, in every organization, or inside the one
    /// `X-Organization-Id` names.
    Internal {
        /// The organization `X-Organization-Id` named.
        org: Option<String>,
        /// Without one, where what it creates goes: the only organization, while there is
        /// only one (a single-tenant dialtone never needs the header).
        sole: Option<String>,
    },
    /// A user with a JWT.
    User {
        /// The user id.
        id: String,
        /// Its organization.
        org: String,
        /// Its permissions.
        permissions: Vec<String>,
        /// Its role is `admin`.
        admin: bool,
    },
    /// An API key and what it may do: it acts as its creator, within its own permissions.
    Key {
        /// Its id.
        id: String,
        /// Its organization (its creator's).
        org: String,
        /// Its permissions (normalized).
        permissions: Vec<String>,
        /// Its creator (a user id, or `internal`).
        owner: String,
        /// Its creator is an admin (or the internal key).
        admin: bool,
    },
}

impl Principal {
    /// Whether it holds `perm`.
    pub fn may(&self, perm: &str) -> bool {
        match self {
            Principal::Internal { .. } => true,
            Principal::Key { permissions, .. } | Principal::User { permissions, .. } => {
                permissions.iter().any(|p| p == perm)
            }
        }
    }

    /// `Ok` if it holds `perm`, else 403 `forbidden` naming it.
    pub fn require(&self, perm: &str) -> Result<(), ApiError> {
        if self.may(perm) {
            return Ok(());
        }
        Err(ApiError { status: StatusCode::FORBIDDEN, code: "forbidden", message: format!("this key lacks {perm}") })
    }

    /// Whom it acts for: the user (a key acts as its creator), or `internal`. Keys belong
    /// to this.
    pub fn owner(&self) -> String {
        match self {
            Principal::Internal { .. } => "internal".into(),
            Principal::User { id, .. } => id.clone(),
            Principal::Key { owner, .. } => owner.clone(),
        }
    }

    /// An admin of its organization: the internal key, an admin user, or a key an admin
    /// created.
    pub fn is_admin(&self) -> bool {
        match self {
            Principal::Internal { .. } => true,
            Principal::User { admin, .. } | Principal::Key { admin, .. } => *admin,
        }
    }

    /// Its id (`internal`, or `internal@<org>` inside one, for the internal key): whom
    /// idempotency records and request limits are kept for.
    pub fn name(&self) -> String {
        match self {
            Principal::Internal { org: None, .. } => "internal".into(),
            Principal::Internal { org: Some(o), .. } => format!("internal@{o}"),
            Principal::Key { id, .. } | Principal::User { id, .. } => id.clone(),
        }
    }

    /// Whose rows it reaches: its organization's; every one for the internal key without
    /// `X-Organization-Id`.
    pub fn scope(&self) -> Scope {
        match self {
            Principal::Internal { org: None, .. } => Scope::All,
            Principal::Internal { org: Some(o), .. }
            | Principal::User { org: o, .. }
            | Principal::Key { org: o, .. } => Scope::Org(o.clone()),
        }
    }

    /// The organization a row it creates belongs to: its own; for the internal key, the
    /// one `X-Organization-Id` names, or the only one there is (400 naming the header
    /// when there are several and none is named).
    pub fn org(&self) -> Result<String, ApiError> {
        match (self.scope(), self) {
            (Scope::Org(o), _) => Ok(o),
            (Scope::All, Principal::Internal { sole: Some(o), .. }) => Ok(o.clone()),
            (Scope::All, _) => Err(ApiError::field(
                "X-Organization-Id",
                "required: the internal key acts across organizations; name the one to create in",
            )),
        }
    }

    /// The platform's owner (the internal key, or the first admin): it holds
    /// [`PLATFORM_PERMISSION`], creates organizations and reads every one.
    pub fn is_platform(&self) -> bool {
        self.may(PLATFORM_PERMISSION)
    }
}

/// The permission a route needs, from the route table ([`crate::routes`]): the router
/// puts it on each protected route as a request extension, for [`Allowed`] to check.
#[derive(Clone, Copy, Debug)]
pub struct Required(pub &'static str);

/// The caller of a protected route, once it holds the route's [`Required`] permission
/// (403 `forbidden` naming it otherwise). A handler takes it after its path and query
/// and before its body, where it used to check the permission itself.
#[derive(Clone, Debug)]
pub struct Allowed(pub Principal);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Allowed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Allowed, ApiError> {
        let internal =
            |m: &str| ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "internal", message: m.into() };
        let who =
            parts.extensions.get::<Principal>().cloned().ok_or_else(|| internal("no credentials were checked"))?;
        let Required(perm) =
            *parts.extensions.get::<Required>().ok_or_else(|| internal("the route names no permission"))?;
        who.require(perm)?;
        Ok(Allowed(who))
    }
}

/// The SHA-256 of a key, hex: what the store keeps.
pub fn key_hash(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal in constant time for equal lengths (the length itself is not secret here).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credentials middleware of the protected routes: finds the [`Principal`] (401 without
/// one), applies its limits (429), and hands it on as a request extension.
pub async fn require_auth(State(st): State<ApiState>, headers: HeaderMap, mut req: Request, next: Next) -> Response {
    let unauthorized = |m: &str| {
        ApiError { status: StatusCode::UNAUTHORIZED, code: "unauthorized", message: m.into() }.into_response()
    };
    let principal = if let Some(g) = headers.get("x-internal-key") {
        match st.internal_key.as_deref() {
            Some(k) if same(g.as_bytes(), k.as_bytes()) => match acting_in(&st, &headers) {
                Ok((org, sole)) => Principal::Internal { org, sole },
                Err(e) => return e.into_response(),
            },
            _ => return unauthorized("invalid credentials"),
        }
    } else {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        // HTTP Basic: an API key's id as the user, the key as the password (Twilio's API
        // key SID and secret).
        let basic = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
            .and_then(|b| {
                use base64::Engine;
                let text = base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()?;
                let text = String::from_utf8(text).ok()?;
                let (user, pass) = text.split_once(':')?;
                Some((user.to_string(), pass.to_string()))
            });
        let key = bearer
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .or(basic.as_ref().map(|(_, pass)| pass.as_str()));
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return unauthorized("missing credentials (Authorization: Bearer or Basic, X-API-Key or X-Internal-Key)");
        };
        if key.matches('.').count() == 2 {
            // A JWT (header.payload.signature); API keys have no dots.
            return match check_jwt(&st.jwt_secret, key) {
                Some(c) => {
                    // A deleted user's tokens stop working at once.
                    let access = match st.store.lock().map(|s| s.user_access(&c.sub)) {
                        Ok(Ok(Some(a))) => a,
                        _ => return unauthorized("invalid or expired token"),
                    };
                    let who = Principal::User {
                        id: c.sub,
                        org: access.organization_id,
                        permissions: c.perms,
                        admin: access.role == "admin",
                    };
                    if let Some(r) = limit(&st, &who, &req) {
                        return r;
                    }
                    req.extensions_mut().insert(who);
                    next.run(req).await
                }
                None => unauthorized("invalid or expired token"),
            };
        }
        let Ok(mut store) = st.store.lock() else { return unauthorized("the store is unavailable") };
        match store.key_by_hash(&key_hash(key)) {
            // Basic credentials name the key they carry.
            Ok(Some(k)) if basic.as_ref().is_some_and(|(user, _)| *user != k.id) => {
                return unauthorized("invalid credentials (the user name is not the key's id)");
            }
            Ok(Some(k)) => {
                // A key acts as its creator: it stops when the creator is deleted. (Keys
                // made by a key before keys belonged to users name that key: follow it.)
                let mut owner = k.created_by.clone();
                for _ in 0..4 {
                    match owner.starts_with("key_").then(|| store.key(&Scope::Org(k.organization_id.clone()), &owner)) {
                        Some(Ok(Some(parent))) => owner = parent.created_by,
                        _ => break,
                    }
                }
                let admin = match owner.as_str() {
                    "internal" => true,
                    user => match store.user_access(user) {
                        Ok(Some(a)) if a.organization_id == k.organization_id => a.role == "admin",
                        _ => return unauthorized("invalid credentials (the key's creator is gone)"),
                    },
                };
                let _ = store.touch_key(&k.id, now_ms());
                Principal::Key { id: k.id, org: k.organization_id, permissions: k.permissions, owner, admin }
            }
            _ => return unauthorized("invalid credentials"),
        }
    };
    if let Some(r) = limit(&st, &principal, &req) {
        return r;
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// The organization `X-Organization-Id` names for the internal key (`None`: none named),
/// and without one the only organization, if there is one only; 400 naming the header if
/// it names no organization.
fn acting_in(st: &ApiState, headers: &HeaderMap) -> Result<(Option<String>, Option<String>), ApiError> {
    // The store not answering is said as such (not as a header missing).
    let store = || {
        st.store.lock().map_err(|_| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "the store is unavailable".into(),
        })
    };
    let Some(v) = headers.get("x-organization-id") else {
        return Ok((None, store()?.sole_org()?));
    };
    let id = v.to_str().map(str::trim).unwrap_or_default();
    match store()?.org(&Scope::All, id)? {
        Some(o) => Ok((Some(o.id), None)),
        None => Err(ApiError::field("X-Organization-Id", &format!("no organization {id:?}"))),
    }
}

/// The per-key, per-organization and per-address limits (the internal key has none): the
/// 429 to answer. On several nodes the buckets are rows of the shared store, and a request
/// another node forwarded (its node token proves it) was counted where it came in.
fn limit(st: &ApiState, who: &Principal, req: &Request) -> Option<Response> {
    if matches!(who, Principal::Internal { .. }) {
        return None;
    }
    let l = st.limits.limits;
    let mut buckets = vec![(format!("key:{}", who.name()), l.per_key, "for this key")];
    if let Scope::Org(org) = who.scope() {
        buckets.push((format!("org:{org}"), l.per_org, "for this organization"));
    }
    if let Some(ip) = client_addr(req) {
        buckets.push((format!("addr:{ip}"), l.per_addr, "from this address"));
    }
    let mut shared = match &st.cluster {
        None => None,
        Some(cluster) => {
            let token = req.headers().get(crate::cluster::NODE_TOKEN);
            if token.is_some_and(|t| same(t.as_bytes(), cluster.token.as_bytes())) {
                return None;
            }
            Some(st.store.lock().ok()?)
        }
    };
    for (key, rate, what) in buckets {
        let answer = match shared.as_deref_mut() {
            None => st.limits.take(&key, rate, std::time::Instant::now()),
            Some(store) => match st.limits.take_shared(store, &key, rate, crate::wire::now_ms()) {
                Ok(answer) => answer,
                // The store is down: the request fails on its own; no limit to apply.
                Err(e) => {
                    tracing::warn!(error = %e, "request limits: the shared buckets are unavailable");
                    return None;
                }
            },
        };
        if let Err(wait) = answer {
            return Some(too_many(wait, what));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(same(b"key", b"key"));
        assert!(!same(b"key", b"kez") && !same(b"key", b"keys") && !same(b"", b"k"));
    }
}
