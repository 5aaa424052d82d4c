//! The call store's tests (both backends).

use super::*;
use crate::store::db::MIGRATIONS;
use crate::store::Op;

pub(crate) fn new_call<'a>(id: &'a str, contact: &'a str, at: i64) -> NewCall<'a> {
    NewCall::new(id, contact, "+15551230000", crate::model::DEFAULT_ORG, at)
}

#[test]
fn a_call_lives_initiating_to_completed_with_its_events_and_duration() {
    for mut s in Store::test_backends().unwrap() {
        assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
        let c = s.insert_call(&new_call("call_1", "contact_1", 1_000)).unwrap();
        assert_eq!((c.status, c.duration), (CallStatus::Initiating, None));
        s.set_status("call_1", CallStatus::Ringing, Some(180), None, 2_000).unwrap();
        s.set_status("call_1", CallStatus::InProgress, Some(200), None, 3_000).unwrap();
        let c = s.set_status("call_1", CallStatus::Completed, None, Some("BYE"), 123_500).unwrap();
        assert_eq!(c.status, CallStatus::Completed);
        assert_eq!((c.answered_at, c.ended_at, c.duration), (Some(3_000), Some(123_500), Some(120.5)));
        assert_eq!(c.sip_status, Some(200));
        let ev: Vec<String> = s.events(&Scope::All, "call_1").unwrap().into_iter().map(|e| e.detail).collect();
        assert_eq!(ev, ["initiating", "ringing", "in-progress", "completed"]);
        // Never out of a final state, never backwards.
        assert!(matches!(
            s.set_status("call_1", CallStatus::InProgress, None, None, 200_000),
            Err(StoreError::BadTransition { .. })
        ));
        assert!(matches!(s.set_status("nope", CallStatus::Failed, None, None, 1), Err(StoreError::NotFound)));
    }
}

#[test]
fn list_filters_pages_and_counts() {
    for mut s in Store::test_backends().unwrap() {
        for i in 0..30 {
            let id = format!("call_{i:02}");
            let contact = if i % 3 == 0 { "c_a" } else { "c_b" };
            s.insert_call(&new_call(&id, contact, 1_000 + i)).unwrap();
            if i % 2 == 0 {
                s.set_status(&id, CallStatus::Failed, Some(503), None, 5_000).unwrap();
            }
        }
        let (page, total) = s.list_calls(&Scope::All, &CallFilter { limit: 5, ..CallFilter::default() }).unwrap();
        assert_eq!((page.len(), total), (5, 30));
        assert_eq!(page[0].id, "call_29", "newest first");
        let f = CallFilter {
            status: Some(CallStatus::Failed),
            contact_id: Some("c_a"),
            limit: 50,
            ..CallFilter::default()
        };
        let (rows, total) = s.list_calls(&Scope::All, &f).unwrap();
        assert_eq!(total, 5); // i in {0, 6, 12, 18, 24}
        assert!(rows.iter().all(|c| c.status == CallStatus::Failed && c.contact_id == "c_a"));
        let f = CallFilter { from: Some(1_010), to: Some(1_020), limit: 50, offset: 2, ..CallFilter::default() };
        let (rows, total) = s.list_calls(&Scope::All, &f).unwrap();
        assert_eq!((rows.len(), total), (8, 10));
    }
}

#[test]
fn what_the_engine_writes_is_read_back_whole() {
    for mut s in Store::test_backends().unwrap() {
        let headers = vec![("X-Campaign".to_string(), "spring".to_string())];
        let c = NewCall {
            from_number: Some("+15550001"),
            record: true,
            sip_headers: &headers,
            ring_timeout: Some(25),
            max_duration: Some(3_600),
            from_display_name: Some("Acme"),
            early_media: true,
            machine_detection: Some("detect"),
            ..new_call("call_out", "contact_9", 1_000)
        };
        s.insert_call(&c).unwrap();
        let inbound = InboundCall {
            id: "call_in".into(),
            caller: "+4420_7946%0000".into(),
            called: Some("+15550100".into()),
            at: 2_000,
            organization_id: crate::model::DEFAULT_ORG.into(),
            referred_by: None,
            sip_headers: headers.clone(),
            asserted_identity: Some("sip:+4420@carrier".into()),
            number_id: Some("num_1".into()),
        };
        let referred = InboundCall {
            id: "call_ref".into(),
            caller: "ignored".into(),
            called: Some("+15550199".into()),
            at: 3_000,
            referred_by: Some("call_out".into()),
            sip_headers: Vec::new(),
            asserted_identity: None,
            number_id: None,
            ..inbound.clone()
        };
        let turns = serde_json::json!({"summary": {"turns": 2}});
        let sip = serde_json::json!({"messages": ["INVITE"], "truncated": false});
        let ops = [
            Op::Inbound(inbound),
            Op::Inbound(referred),
            Op::Status {
                id: "call_out".into(),
                to: CallStatus::InProgress,
                sip_status: Some(200),
                reason: None,
                at: 4_000,
            },
            Op::AnsweredBy { id: "call_out".into(), answered_by: "human".into(), after_ms: 1_250, at: 5_000 },
            Op::ActionFailed { id: "call_out".into(), action: "hold".into(), detail: "488 Not Here".into(), at: 5_500 },
            Op::Turns { id: "call_out".into(), turns: turns.clone() },
            Op::Event { id: "call_out".into(), kind: "ended_by".into(), detail: "remote".into(), at: 6_000 },
            Op::Event { id: "nope".into(), kind: "failover".into(), detail: "x".into(), at: 6_000 },
            Op::Status {
                id: "call_out".into(),
                to: CallStatus::Completed,
                sip_status: None,
                reason: Some("BYE".into()),
                at: 6_000,
            },
            Op::Detail { id: "call_out".into(), sip: Some(sip.clone()), quality: None },
        ];
        assert!(s.apply(&ops).unwrap().is_empty(), "all applied");
        s.set_recording("call_out", RecordingState::Recording, Some("/rec/call_out.wav"), 4_100).unwrap();
        s.dtmf_received("call_out", '#', 4_200).unwrap();
        s.add_event("call_out", "note", "by hand", 4_300).unwrap();

        let out = s.get_call(&Scope::All, "call_out").unwrap();
        assert_eq!(
            (out.status, out.sip_status, out.reason.as_deref()),
            (CallStatus::Completed, Some(200), Some("BYE"))
        );
        assert_eq!((out.answered_at, out.ended_at, out.duration), (Some(4_000), Some(6_000), Some(2.0)));
        assert!(out.record && out.early_media && !out.inbound);
        assert_eq!(out.sip_headers, headers);
        assert_eq!((out.ring_timeout, out.max_duration), (Some(25), Some(3_600)));
        assert_eq!((out.from_number.as_deref(), out.from_display_name.as_deref()), (Some("+15550001"), Some("Acme")));
        assert_eq!(out.machine_detection.as_deref(), Some("detect"));
        assert_eq!((out.answered_by.as_deref(), out.answered_by_ms), (Some("human"), Some(1_250)));
        assert_eq!(out.turns, Some(turns));
        assert_eq!(out.ended_by.as_deref(), Some("remote"));
        assert_eq!(out.recording, Some(RecordingState::Recording));
        assert_eq!(
            s.recording(&Scope::All, "call_out").unwrap(),
            Some((RecordingState::Recording, "/rec/call_out.wav".into()))
        );
        assert_eq!(s.call_detail(&Scope::All, "call_out", true).unwrap(), Some(sip));
        assert_eq!(s.call_detail(&Scope::All, "call_out", false).unwrap(), None);
        let other = Scope::Org("org_other".into());
        assert!(matches!(s.call_detail(&other, "call_out", true), Err(StoreError::NotFound)));
        assert!(matches!(s.recording(&other, "call_out"), Err(StoreError::NotFound)));
        let kinds: Vec<(String, String)> =
            s.events(&Scope::All, "call_out").unwrap().into_iter().map(|e| (e.kind, e.detail)).collect();
        let kinds: Vec<(&str, &str)> = kinds.iter().map(|(k, d)| (k.as_str(), d.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("status", "initiating"),
                ("status", "in-progress"),
                ("answered_by", "human"),
                ("action_failed", "hold: 488 Not Here"),
                ("ended_by", "remote"),
                ("status", "completed"),
                ("recording", "recording"),
                ("dtmf", "#"),
                ("note", "by hand"),
            ]
        );

        let inb = s.get_call(&Scope::All, "call_in").unwrap();
        assert!(inb.inbound);
        assert_eq!((inb.phone_number.as_str(), inb.from_number.as_deref()), ("+4420_7946%0000", Some("+15550100")));
        assert_eq!(
            (inb.asserted_identity.as_deref(), inb.number_id.as_deref()),
            (Some("sip:+4420@carrier"), Some("num_1"))
        );
        let rf = s.get_call(&Scope::All, "call_ref").unwrap();
        assert_eq!(
            (rf.contact_id.as_str(), rf.phone_number.as_str()),
            ("contact_9", "+15550199"),
            "the referring call's contact"
        );
        assert_eq!((rf.referred_by.as_deref(), rf.inbound), (Some("call_out"), false));

        // The number filter: a substring of either number, `%` and `_` taken literally.
        let numbers = |n| {
            let f = CallFilter { number: Some(n), limit: 10, ..CallFilter::default() };
            let mut ids: Vec<String> = s.list_calls(&Scope::All, &f).unwrap().0.into_iter().map(|c| c.id).collect();
            ids.sort();
            ids
        };
        assert_eq!(numbers("0_7946%"), ["call_in"]);
        assert_eq!(numbers("4_2"), Vec::<String>::new(), "_ is not a wildcard (+442…)");
        assert_eq!(numbers("%"), ["call_in"], "nor %");
        assert_eq!(numbers("5550001"), ["call_out"], "the from number too");
        assert_eq!(numbers("55501"), ["call_in", "call_ref"]);
        let f = CallFilter { inbound: Some(true), limit: 10, ..CallFilter::default() };
        assert_eq!(s.list_calls(&Scope::All, &f).unwrap().1, 1);

        let live: Vec<String> = s.live_calls(&Scope::All).unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(live, ["call_ref", "call_in"], "newest first");
        assert!(s.live_calls(&other).unwrap().is_empty());
        let mut counts = s.count_by_status().unwrap();
        counts.sort_by_key(|(st, _)| st.as_str());
        assert_eq!(counts, [(CallStatus::Completed, 1), (CallStatus::Initiating, 2)]);
    }
}

#[test]
fn a_restart_finds_every_call_and_closes_the_unfinished() {
    let dir = std::env::temp_dir().join(format!("dialtone-store-{}-{}", std::process::id(), line!()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dialtone.db");
    restart(&|| Store::open(&path).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(url) = Store::test_url().unwrap() {
        restart(&|| Store::open_url(&url).unwrap());
    }
}

/// The restart test on the database `open` opens (again).
fn restart(open: &dyn Fn() -> Store) {
    {
        let mut s = open();
        s.insert_call(&new_call("call_done", "c", 1)).unwrap();
        s.set_status("call_done", CallStatus::Busy, Some(486), Some("Busy Here"), 2).unwrap();
        s.insert_call(&new_call("call_live", "c", 3)).unwrap();
        s.set_status("call_live", CallStatus::InProgress, Some(200), None, 4).unwrap();
        s.insert_call(&new_call("call_new", "c", 5)).unwrap();
        // Dropped without closing: as after a crash.
    }
    let mut s = open();
    assert_eq!(s.close_unfinished(10).unwrap(), 2);
    let (all, total) = s.list_calls(&Scope::All, &CallFilter { limit: 10, ..CallFilter::default() }).unwrap();
    assert_eq!(total, 3);
    for c in &all {
        match c.id.as_str() {
            "call_done" => assert_eq!(c.status, CallStatus::Busy),
            _ => {
                assert_eq!((c.status, c.reason.as_deref(), c.ended_at), (CallStatus::Failed, Some("restart"), Some(10)))
            }
        }
    }
    assert_eq!(s.events(&Scope::All, "call_live").unwrap().last().unwrap().detail, "failed");
    // Reopening is idempotent: the schema is not applied twice.
    drop(s);
    let s = open();
    assert_eq!(s.version().unwrap(), MIGRATIONS.len() as i64);
}
