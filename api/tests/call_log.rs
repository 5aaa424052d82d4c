//! The call log's filters and CSV export (issue 17's call log): a number substring, the
//! direction, paging with the total, and `format=csv`.

mod common;

use axum::http::StatusCode;
use common::*;
use dialtone_api::store::{InboundCall, NewCall, Op, DEFAULT_ORG};

fn outbound<'a>(id: &'a str, number: &'a str, at: i64) -> NewCall<'a> {
    NewCall { from_number: Some("+15559990000"), ..NewCall::new(id, "c", number, DEFAULT_ORG, at) }
}

async fn ids(app: &App, auth: &str, query: &str) -> (Vec<String>, u64) {
    let (s, v) = app.send("GET", &format!("/api/calls/list?{query}"), &[("authorization", auth)], "").await;
    assert_eq!(s, StatusCode::OK, "{query}: {v}");
    let ids = v["data"]["calls"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    (ids, v["data"]["total"].as_u64().unwrap())
}

#[tokio::test]
async fn filters_paging_and_csv() {
    for app in App::each() {
        let auth = format!("Bearer {}", app.key(&["calls:read"]).await);
        {
            let mut s = app.store.lock().unwrap();
            s.insert_call(&outbound("call_a", "+15550001111", 1_000)).unwrap();
            s.insert_call(&outbound("call_b", "+15550002222", 2_000)).unwrap();
            s.insert_call(&outbound("call_c", "=HYPERLINK(\"x\")", 3_000)).unwrap();
            let inbound = InboundCall {
                id: "call_in".into(),
                caller: "+4930123456".into(),
                called: Some("+15550001111".into()),
                at: 4_000,
                organization_id: DEFAULT_ORG.into(),
                referred_by: None,
                sip_headers: Vec::new(),
                asserted_identity: None,
                number_id: None,
            };
            s.apply(&[Op::Inbound(inbound)]).unwrap();
        }
        assert_eq!(ids(&app, &auth, "number=0001111").await, (vec!["call_in".into(), "call_a".into()], 2));
        assert_eq!(ids(&app, &auth, "number=4930").await.1, 1, "the calling number matches too");
        assert_eq!(ids(&app, &auth, "number=%25").await.1, 0, "% is literal");
        assert_eq!(ids(&app, &auth, "direction=inbound").await, (vec!["call_in".into()], 1));
        assert_eq!(ids(&app, &auth, "direction=outbound&limit=2").await, (vec!["call_c".into(), "call_b".into()], 3));
        assert_eq!(ids(&app, &auth, "direction=outbound&limit=2&offset=2").await, (vec!["call_a".into()], 3));
        for (q, field) in [("direction=sideways", "direction"), ("format=xml", "format"), ("number=", "number")] {
            let (s, v) = app.send("GET", &format!("/api/calls/list?{q}"), &[("authorization", &auth)], "").await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
            assert!(v["error"]["message"].as_str().unwrap().contains(field), "{q}: {v}");
        }

        let r = app.raw("GET", "/api/calls/list?direction=outbound&format=csv", &[("authorization", &auth)], "").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
        assert_eq!(r.headers()["x-total-count"], "3");
        assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "id,direction,status,phone_number,from_number,contact_id,created_at,answered_at,ended_at,duration,sip_status,reason");
        assert_eq!(lines.len(), 5, "a header, three calls and the last CRLF: {text:?}");
        assert!(
            lines[1].starts_with("call_c,outbound,initiating,\"'=HYPERLINK(\"\"x\"\")\",+15559990000,c,"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("call_a,outbound,initiating,+15550001111,+15559990000,c,1970-01-01T00:00:01Z,"),
            "{text}"
        );
    }
}
