//! Trunks and numbers (issue 15) through the router, as an organization's admin: create,
//! list, get, change and delete; each bad field a 400 naming it; passwords never shown;
//! another organization's rows as missing (404) and absent from its lists; a number
//! only once across organizations (409); the engine handed every row after each change;
//! the engine's trunk status in the trunk JSON, and the settings' trunks listed.

mod common;

use axum::http::StatusCode;
use common::*;
use dialtone_api::http::TrunkStatus;
use serde_json::{json, Value};

const PASSWORD: &str = "carrier-digest-s3cret";

/// An organization made by the internal key, and its admin's `Authorization` header.
async fn org_admin(app: &App, name: &str) -> (String, String) {
    let internal = [("x-internal-key", INTERNAL)];
    let (s, org) = app.send("POST", "/api/organizations", &internal, &json!({"name": name}).to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{org}");
    let id = org["data"]["id"].as_str().unwrap().to_string();
    let email = format!("admin@{name}.example");
    let admin = json!({"email": email, "password": "pw-123456789", "role": "admin", "organization_id": id});
    let (s, v) = app.send("POST", "/api/users", &internal, &admin.to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let login = json!({"email": email, "password": "pw-123456789"}).to_string();
    let (s, v) = app.send("POST", "/api/v1/auth/user-login", &[], &login).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (id, format!("Bearer {}", v["token"].as_str().unwrap()))
}

/// The error envelope with this status and code; returns the message.
#[track_caller]
fn refused(got: (StatusCode, Value), status: StatusCode, code: &str) -> String {
    let (s, v) = got;
    assert_eq!(s, status, "{v}");
    assert_eq!((&v["success"], &v["data"], &v["error"]["code"]), (&json!(false), &Value::Null, &json!(code)), "{v}");
    v["error"]["message"].as_str().unwrap().to_string()
}

/// Sends, checks the status, and returns `data` (and remembers the text, to look for the
/// password in every answer).
struct Client<'a> {
    app: &'a App,
    auth: String,
    seen: std::cell::RefCell<String>,
}

impl<'a> Client<'a> {
    fn new(app: &'a App, auth: &str) -> Client<'a> {
        Client { app, auth: auth.to_string(), seen: Default::default() }
    }

    async fn send(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let body = if body.is_null() { String::new() } else { body.to_string() };
        let got = self.app.send(method, uri, &[("authorization", &self.auth)], &body).await;
        self.seen.borrow_mut().push_str(&got.1.to_string());
        got
    }

    async fn data(&self, method: &str, uri: &str, body: Value, want: StatusCode) -> Value {
        let (s, v) = self.send(method, uri, body).await;
        assert_eq!(s, want, "{method} {uri}: {v}");
        assert_eq!(v["success"], true, "{v}");
        v["data"].clone()
    }
}

#[tokio::test]
async fn a_trunk_is_created_listed_read_changed_and_deleted() {
    for app in App::each() {
        let (org, admin) = org_admin(&app, "acme").await;
        let c = Client::new(&app, &admin);
        let body = json!({
            "name": "carrier-eu", "uri": "sip:sip.carrier.example:5061;transport=tls", "username": "acct-1",
            "password": PASSWORD, "allowed_cidrs": ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"],
            "prefixes": ["+44", "+33"], "priority": 10, "max_concurrent_calls": 30, "max_calls_per_second": 2.5,
            "codecs": ["opus", "PCMA"], "srtp": "mandatory", "asserted_identity": true, "options_interval": 30
        });
        let t = c.data("POST", "/api/trunks", body, StatusCode::CREATED).await;
        let id = t["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("trk_"), "{t}");
        assert_eq!(
            (&t["organization_id"], &t["source"], &t["has_password"]),
            (&json!(org), &json!("api"), &json!(true))
        );
        assert!(t.get("password").is_none(), "{t}");
        assert_eq!(t["prefixes"], json!(["+44", "+33"]));
        assert_eq!((t["priority"].as_u64(), t["max_calls_per_second"].as_f64()), (Some(10), Some(2.5)));
        assert_eq!((&t["srtp"], &t["privacy"], &t["status"]), (&json!("mandatory"), &json!(false), &Value::Null));
        assert!(t["created_at"].as_str().unwrap().ends_with('Z'), "{t}");
        // The engine has every trunk, password and all (a digest client needs it).
        {
            let told = app.engine.trunks.lock().unwrap();
            assert_eq!(told.len(), 1);
            assert_eq!((told[0][0].id.as_str(), told[0][0].password.as_deref()), (id.as_str(), Some(PASSWORD)));
        }
        // Defaults.
        let t2 = c.data("POST", "/api/trunks", json!({"name": "b", "uri": "sip:b.example"}), StatusCode::CREATED).await;
        assert_eq!(
            (t2["priority"].as_u64(), &t2["codecs"], &t2["has_password"]),
            (Some(100), &json!([]), &json!(false))
        );
        assert_eq!((&t2["asserted_identity"], &t2["options_interval"]), (&json!(false), &Value::Null));

        // The engine's view: this trunk's status, and a platform trunk from the settings.
        *app.engine.trunk_status.lock().unwrap() = vec![
            TrunkStatus {
                id: id.clone(),
                name: "carrier-eu".into(),
                organization_id: Some(org.clone()),
                uri: "sip:sip.carrier.example:5061;transport=tls".into(),
                up: true,
                registered: Some(true),
                options_rtt_ms: Some(12),
                last_options_at: Some(std::time::Instant::now()),
                last_options_status: Some(200),
                calls: 3,
            },
            TrunkStatus {
                id: "default".into(),
                name: "default".into(),
                organization_id: None,
                uri: "sip:platform.example".into(),
                up: false,
                registered: None,
                options_rtt_ms: None,
                calls: 0,
                ..Default::default()
            },
            TrunkStatus { id: "trk_someone_elses".into(), organization_id: Some("org_x".into()), ..Default::default() },
        ];
        let list = c.data("GET", "/api/trunks", Value::Null, StatusCode::OK).await;
        let list = list["trunks"].as_array().unwrap();
        assert_eq!(list.len(), 3, "two of ours, then the settings' one: {list:?}");
        assert_eq!((&list[0]["id"], &list[1]["id"]), (&json!(id), &t2["id"]), "oldest first");
        let probed = dialtone_api::http::parse_time(list[0]["status"]["last_options_at"].as_str().unwrap());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!(probed.is_some_and(|t| (now - t).abs() < 60_000), "{list:?}");
        let mut status = list[0]["status"].clone();
        status["last_options_at"] = Value::Null;
        assert_eq!(
            status,
            json!({"up": true, "registered": true, "options_rtt_ms": 12, "calls": 3,
               "last_options_at": null, "last_options_status": 200})
        );
        assert_eq!(list[1]["status"], Value::Null);
        assert_eq!(
            list[2],
            json!({"id": "default", "name": "default", "uri": "sip:platform.example", "source": "settings",
               "organization_id": null,
               "status": {"up": false, "registered": null, "options_rtt_ms": null, "calls": 0,
                          "last_options_at": null, "last_options_status": null}})
        );
        let got = c.data("GET", &format!("/api/trunks/{id}"), Value::Null, StatusCode::OK).await;
        assert_eq!(got["status"]["calls"], 3);
        assert_eq!(got["uri"], "sip:sip.carrier.example:5061;transport=tls");

        // PATCH: the fields given replace; null clears an optional one; absent stays.
        let patch = json!({"name": "carrier-eu-2", "password": null, "srtp": null, "prefixes": null, "priority": 0,
                       "max_concurrent_calls": null, "privacy": true});
        let t = c.data("PATCH", &format!("/api/trunks/{id}"), patch, StatusCode::OK).await;
        assert_eq!((&t["name"], &t["has_password"], &t["srtp"]), (&json!("carrier-eu-2"), &json!(false), &Value::Null));
        assert_eq!((&t["prefixes"], t["priority"].as_u64(), &t["privacy"]), (&json!([]), Some(0), &json!(true)));
        assert_eq!((&t["username"], &t["max_concurrent_calls"]), (&json!("acct-1"), &Value::Null));
        assert_eq!(t["codecs"], json!(["opus", "PCMA"]), "absent: unchanged");
        let got = c.data("GET", &format!("/api/trunks/{id}"), Value::Null, StatusCode::OK).await;
        assert_eq!(got["name"], "carrier-eu-2", "stored");
        {
            let told = app.engine.trunks.lock().unwrap();
            assert_eq!(told.len(), 3, "created, created, changed");
            let mine = told[2].iter().find(|t| t.id == id).unwrap();
            assert_eq!((mine.name.as_str(), mine.password.as_deref()), ("carrier-eu-2", None));
            assert_eq!(told[2].len(), 2);
        }
        // A name taken in the organization.
        let taken = c.send("PATCH", &format!("/api/trunks/{id}"), json!({"name": "b"})).await;
        assert!(refused(taken, StatusCode::CONFLICT, "conflict").starts_with("name"));
        let taken = c.send("POST", "/api/trunks", json!({"name": "b", "uri": "sip:x.example"})).await;
        refused(taken, StatusCode::CONFLICT, "conflict");

        // DELETE.
        let gone = c.data("DELETE", &format!("/api/trunks/{id}"), Value::Null, StatusCode::OK).await;
        assert_eq!(gone, json!({"id": id, "deleted": true}));
        refused(c.send("GET", &format!("/api/trunks/{id}"), Value::Null).await, StatusCode::NOT_FOUND, "not_found");
        refused(c.send("DELETE", &format!("/api/trunks/{id}"), Value::Null).await, StatusCode::NOT_FOUND, "not_found");
        let told = app.engine.trunks.lock().unwrap().clone();
        assert_eq!(told.len(), 4, "and deleted; the refusals told it nothing");
        assert_eq!(told[3].iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), [t2["id"].as_str().unwrap()]);
        assert!(!c.seen.borrow().contains(PASSWORD), "the password is never shown");
    }
}

#[tokio::test]
async fn a_bad_trunk_field_is_400_naming_it() {
    for app in App::each() {
        let (_, admin) = org_admin(&app, "acme").await;
        let c = Client::new(&app, &admin);
        let ok = json!({"name": "main", "uri": "sip:carrier.example"});
        let with = |k: &str, v: Value| {
            let mut b = ok.clone();
            b[k] = v;
            b
        };
        for (body, field) in [
            (json!({"uri": "sip:carrier.example"}), "name"),
            (with("name", json!("has space")), "name"),
            (json!({"name": "main"}), "uri"),
            (with("uri", json!("http://carrier.example")), "uri"),
            (with("uri", json!("sip:carrier.example;transport=sctp")), "uri"),
            (with("username", json!("")), "username"),
            (with("password", json!("x".repeat(129))), "password"),
            (with("allowed_cidrs", json!(["10.0.0.0/33"])), "allowed_cidrs"),
            (with("allowed_cidrs", json!(["carrier.example"])), "allowed_cidrs"),
            (with("allowed_cidrs", json!(vec!["10.0.0.1"; 51])), "allowed_cidrs"),
            (with("prefixes", json!(["44"])), "prefixes"),
            (with("prefixes", json!(["+1234567890123456"])), "prefixes"),
            (with("priority", json!(1001)), "priority"),
            (with("max_concurrent_calls", json!(0)), "max_concurrent_calls"),
            (with("max_calls_per_second", json!(-1)), "max_calls_per_second"),
            (with("codecs", json!(["G729"])), "codecs"),
            (with("codecs", json!(["PCMU", "PCMU"])), "codecs"),
            (with("srtp", json!("sometimes")), "srtp"),
            (with("asserted_identity", json!("yes")), "asserted_identity"),
            (with("options_interval", json!(3601)), "options_interval"),
        ] {
            let m =
                refused(c.send("POST", "/api/trunks", body.clone()).await, StatusCode::BAD_REQUEST, "invalid_request");
            assert!(m.starts_with(&format!("{field}: ")), "{body}: {m}");
        }
        let t = c.data("POST", "/api/trunks", ok, StatusCode::CREATED).await;
        let uri = format!("/api/trunks/{}", t["id"].as_str().unwrap());
        for (body, field) in [(json!({"uri": null}), "uri"), (json!({"prefixes": "+44"}), "prefixes")] {
            let m = refused(c.send("PATCH", &uri, body.clone()).await, StatusCode::BAD_REQUEST, "invalid_request");
            assert!(m.starts_with(&format!("{field}: ")), "{body}: {m}");
        }
        assert_eq!(app.engine.trunks.lock().unwrap().len(), 1, "only the one created");
    }
}

#[tokio::test]
async fn a_number_is_created_listed_read_changed_and_deleted() {
    for app in App::each() {
        let (org, admin) = org_admin(&app, "acme").await;
        let c = Client::new(&app, &admin);
        let body = json!({"number": "+14155550100", "action": {"type": "webhook", "url": "https://app.example/in"},
                      "fallback": {"type": "agent", "url": "wss://agent.example/media", "format": "l16-16k"},
                      "webhook_timeout_ms": 2000, "max_duration": 600});
        let n = c.data("POST", "/api/numbers", body, StatusCode::CREATED).await;
        let id = n["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("num_"), "{n}");
        assert_eq!((&n["organization_id"], &n["number"]), (&json!(org), &json!("+14155550100")));
        assert_eq!(n["action"], json!({"type": "webhook", "url": "https://app.example/in"}));
        assert_eq!(n["fallback"], json!({"type": "agent", "url": "wss://agent.example/media", "format": "l16-16k"}));
        let secret = n["webhook_secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_") && secret.len() == 38, "{secret}");
        assert_eq!(
            (n["webhook_timeout_ms"].as_u64(), &n["record"], n["max_duration"].as_u64()),
            (Some(2000), &json!(false), Some(600))
        );
        assert!(n["created_at"].as_str().unwrap().ends_with('Z'));
        let echo = json!({"number": "+44*", "action": {"type": "echo"}});
        let n2 = c.data("POST", "/api/numbers", echo, StatusCode::CREATED).await;
        assert_eq!((&n2["webhook_secret"], n2["webhook_timeout_ms"].as_u64()), (&Value::Null, Some(3000)), "{n2}");
        assert_eq!((&n2["fallback"], &n2["max_duration"]), (&Value::Null, &Value::Null));

        let list = c.data("GET", "/api/numbers", Value::Null, StatusCode::OK).await;
        let ids: Vec<&str> = list["numbers"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [id.as_str(), n2["id"].as_str().unwrap()]);
        let got = c.data("GET", &format!("/api/numbers/{id}"), Value::Null, StatusCode::OK).await;
        assert_eq!(got, n, "read back as created");

        // PATCH: the secret stays while the action is a webhook; goes with it.
        let patch = json!({"record": true, "fallback": null});
        let n = c.data("PATCH", &format!("/api/numbers/{id}"), patch, StatusCode::OK).await;
        assert_eq!(
            (&n["record"], &n["fallback"], n["webhook_secret"].as_str()),
            (&json!(true), &Value::Null, Some(secret.as_str()))
        );
        let patch =
            json!({"action": {"type": "reject", "status": 486}, "number": "+14155550101", "max_duration": null});
        let n = c.data("PATCH", &format!("/api/numbers/{id}"), patch, StatusCode::OK).await;
        assert_eq!((&n["action"], &n["webhook_secret"]), (&json!({"type": "reject", "status": 486}), &Value::Null));
        assert_eq!((&n["number"], &n["max_duration"]), (&json!("+14155550101"), &Value::Null));
        let taken = c.send("PATCH", &format!("/api/numbers/{id}"), json!({"number": "+44*"})).await;
        assert!(refused(taken, StatusCode::CONFLICT, "conflict").starts_with("number"));
        {
            let told = app.engine.numbers.lock().unwrap();
            assert_eq!(told.len(), 4, "created twice, changed twice");
            assert_eq!(told[3].len(), 2);
            assert_eq!(told[3][0].number, "+14155550101");
            assert_eq!(told[0][0].webhook_secret.as_deref(), Some(secret.as_str()));
        }
        let gone = c.data("DELETE", &format!("/api/numbers/{id}"), Value::Null, StatusCode::OK).await;
        assert_eq!(gone, json!({"id": id, "deleted": true}));
        refused(c.send("GET", &format!("/api/numbers/{id}"), Value::Null).await, StatusCode::NOT_FOUND, "not_found");
        let told = app.engine.numbers.lock().unwrap().clone();
        assert_eq!(told.len(), 5);
        assert_eq!(told[4].iter().map(|n| n.number.as_str()).collect::<Vec<_>>(), ["+44*"]);
    }
}

#[tokio::test]
async fn a_bad_number_field_is_400_naming_it() {
    for app in App::each() {
        let (_, admin) = org_admin(&app, "acme").await;
        let c = Client::new(&app, &admin);
        let echo = json!({"type": "echo"});
        for (body, field, says) in [
            (json!({"action": echo}), "number", "required"),
            (json!({"number": "14155550100", "action": echo}), "number", ""),
            (json!({"number": "+1*5", "action": echo}), "number", ""),
            (json!({"number": "+14155550100"}), "action", "required"),
            (json!({"number": "+14155550100", "action": {"type": "dance"}}), "action", "unknown type"),
            (json!({"number": "+14155550100", "action": {"type": "agent", "url": "http://x"}}), "action", "agent: url"),
            (json!({"number": "+14155550100", "action": "echo"}), "action", ""),
            (
                json!({"number": "+14155550100", "action": echo, "fallback": {"type": "webhook", "url": "https://x.example/"}}),
                "fallback",
                "webhook is not allowed here",
            ),
            (json!({"number": "+14155550100", "action": echo, "webhook_timeout_ms": 10001}), "webhook_timeout_ms", ""),
            (json!({"number": "+14155550100", "action": echo, "record": "no"}), "record", ""),
            (json!({"number": "+14155550100", "action": echo, "max_duration": 86401}), "max_duration", ""),
        ] {
            let m =
                refused(c.send("POST", "/api/numbers", body.clone()).await, StatusCode::BAD_REQUEST, "invalid_request");
            assert!(m.starts_with(&format!("{field}: {says}")), "{body}: {m}");
        }
        assert!(app.engine.numbers.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn another_organizations_trunks_and_numbers_are_missing_and_a_number_is_one_organizations() {
    for app in App::each() {
        let (org_a, a) = org_admin(&app, "acme").await;
        let (org_b, b) = org_admin(&app, "globex").await;
        let (ca, cb) = (Client::new(&app, &a), Client::new(&app, &b));
        let trunk = json!({"name": "main", "uri": "sip:a.example", "password": PASSWORD});
        let t = ca.data("POST", "/api/trunks", trunk, StatusCode::CREATED).await;
        let number = json!({"number": "+14155550100", "action": {"type": "webhook", "url": "https://a.example/in"}});
        let n = ca.data("POST", "/api/numbers", number.clone(), StatusCode::CREATED).await;
        let (tid, nid) = (t["id"].as_str().unwrap(), n["id"].as_str().unwrap());
        // The same trunk name is B's to use; the same number is not.
        let bt =
            cb.data("POST", "/api/trunks", json!({"name": "main", "uri": "sip:b.example"}), StatusCode::CREATED).await;
        let m = refused(cb.send("POST", "/api/numbers", number).await, StatusCode::CONFLICT, "conflict");
        assert!(m.starts_with("number"), "{m}");
        let bn = json!({"number": "+14155550199", "action": {"type": "echo"}});
        let bn = cb.data("POST", "/api/numbers", bn, StatusCode::CREATED).await;
        // B: A's rows are missing, by every route.
        for (path, body) in [
            (format!("/api/trunks/{tid}"), json!({"name": "mine"})),
            (format!("/api/numbers/{nid}"), json!({"record": true})),
        ] {
            for method in ["GET", "PATCH", "DELETE"] {
                let body = if method == "PATCH" { body.clone() } else { Value::Null };
                refused(cb.send(method, &path, body).await, StatusCode::NOT_FOUND, "not_found");
            }
        }
        let trunks = cb.data("GET", "/api/trunks", Value::Null, StatusCode::OK).await.to_string();
        let numbers = cb.data("GET", "/api/numbers", Value::Null, StatusCode::OK).await.to_string();
        assert!(!trunks.contains(tid) && trunks.contains(bt["id"].as_str().unwrap()), "{trunks}");
        assert!(!numbers.contains(nid) && !numbers.contains("whsec_"), "{numbers}");
        assert!(numbers.contains(bn["id"].as_str().unwrap()));
        // A's are untouched; the engine holds both organizations' rows.
        let got = ca.data("GET", &format!("/api/trunks/{tid}"), Value::Null, StatusCode::OK).await;
        assert_eq!((&got["name"], &got["has_password"]), (&json!("main"), &json!(true)));
        let got = ca.data("GET", &format!("/api/numbers/{nid}"), Value::Null, StatusCode::OK).await;
        assert_eq!(got["record"], false);
        let trunks = app.engine.trunks.lock().unwrap().last().cloned().unwrap();
        let mut orgs: Vec<&str> = trunks.iter().map(|t| t.organization_id.as_str()).collect();
        orgs.sort();
        let mut want = vec![org_a.as_str(), org_b.as_str()];
        want.sort();
        assert_eq!(orgs, want);
        assert_eq!(app.engine.numbers.lock().unwrap().last().unwrap().len(), 2);
        assert!(!ca.seen.borrow().contains(PASSWORD) && !cb.seen.borrow().contains(PASSWORD));
    }
}

#[tokio::test]
async fn the_permissions_are_checked() {
    for app in App::each() {
        let read = app.key(&["trunks:read", "numbers:read"]).await;
        let h = [("x-api-key", read.as_str())];
        let trunk = json!({"name": "main", "uri": "sip:a.example"}).to_string();
        let (s, v) = app.send("POST", "/api/trunks", &h, &trunk).await;
        assert!(refused((s, v), StatusCode::FORBIDDEN, "forbidden").contains("trunks:write"));
        let number = json!({"number": "+14155550100", "action": {"type": "echo"}}).to_string();
        let (s, v) = app.send("POST", "/api/numbers", &h, &number).await;
        assert!(refused((s, v), StatusCode::FORBIDDEN, "forbidden").contains("numbers:write"));
        let (s, v) = app.send("GET", "/api/trunks", &h, "").await;
        assert_eq!((s, &v["data"]["trunks"]), (StatusCode::OK, &json!([])), "{v}");
        let write = app.key(&["trunks:write"]).await;
        let (s, v) = app.send("POST", "/api/trunks", &[("x-api-key", &write)], &trunk).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = app.send("GET", "/api/trunks", &[("x-api-key", &write)], "").await;
        assert!(refused((s, v), StatusCode::FORBIDDEN, "forbidden").contains("trunks:read"));
        let (s, v) = app.send("GET", "/api/numbers", &[("x-api-key", &write)], "").await;
        refused((s, v), StatusCode::FORBIDDEN, "forbidden");
        assert!(app.engine.numbers.lock().unwrap().is_empty());
    }
}
