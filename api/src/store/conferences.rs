//! Conferences and their participants, each conference in one organization. A participant
//! row is one seat: made when a call joins, closed (`left_at`) when it is taken out or the
//! conference ends; a call that ended while seated reads as having left when it ended.

use super::db::Store;
use super::error::StoreError;
use super::sql::params;
use crate::model::{ConferenceRow, ParticipantRow, Scope};

impl Store {
    /// Adds a conference (with nobody in it).
    pub fn insert_conference(&mut self, c: &ConferenceRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO conferences (id, organization_id, name, created_at, ended_at, node_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![c.id, c.organization_id, c.name, c.created_at, c.ended_at, self.node.clone()],
        )?;
        Ok(())
    }

    /// Several nodes: conference `id` (if in `scope`) moves its room to `node` (where the
    /// call about to be seated is) if nobody is seated in it now and it has not ended.
    /// Whether it moved.
    pub fn move_conference(&mut self, scope: &Scope, id: &str, node: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE conferences SET node_id = ?2 WHERE id = ?1 AND ended_at IS NULL
             AND (organization_id = ?3 OR ?3 IS NULL)
             AND NOT EXISTS (SELECT 1 FROM conference_participants WHERE conference_id = ?1 AND left_at IS NULL)
             AND NOT EXISTS (SELECT 1 FROM conference_agents WHERE conference_id = ?1 AND left_at IS NULL)",
            params![id, node, scope.org()],
        )?;
        Ok(n > 0)
    }

    /// Conference `id` with its participants, if it is in `scope`.
    pub fn conference(&self, scope: &Scope, id: &str) -> Result<ConferenceRow, StoreError> {
        let r = self.conn.query_one(
            "SELECT id, organization_id, name, created_at, ended_at FROM conferences
             WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)",
            params![id, scope.org()],
        )?;
        let c = ConferenceRow {
            id: r.get(0)?,
            organization_id: r.get(1)?,
            name: r.get(2)?,
            created_at: r.get(3)?,
            ended_at: r.get(4)?,
            participants: Vec::new(),
        };
        let participants = self.participants(&c.id)?;
        Ok(ConferenceRow { participants, ..c })
    }

    fn participants(&self, conference: &str) -> Result<Vec<ParticipantRow>, StoreError> {
        self.conn.query_map(
            "SELECT p.call_id, NULL, p.muted, p.joined_at, COALESCE(p.left_at, c.ended_at), p.id
             FROM conference_participants p LEFT JOIN calls c ON c.id = p.call_id WHERE p.conference_id = ?1
             UNION ALL
             SELECT id, url, muted, joined_at, left_at, 0 FROM conference_agents WHERE conference_id = ?1
             ORDER BY 4, 6",
            params![conference],
            |r| {
                Ok(ParticipantRow {
                    member: r.get(0)?,
                    agent_url: r.get(1)?,
                    muted: r.get(2)?,
                    joined_at: r.get(3)?,
                    left_at: r.get(4)?,
                })
            },
        )
    }

    /// The conferences in `scope`, newest first, with their participants.
    pub fn conferences(&self, scope: &Scope, limit: u32) -> Result<Vec<ConferenceRow>, StoreError> {
        let ids: Vec<String> = self.conn.query_map(
            "SELECT id FROM conferences WHERE (organization_id = ?1 OR ?1 IS NULL)
             ORDER BY created_at DESC, rowid DESC LIMIT ?2",
            params![scope.org(), limit],
            |r| r.get(0),
        )?;
        ids.iter().map(|id| self.conference(scope, id)).collect()
    }

    /// Seats call `call` in conference `conference` at `at`: any seat it still holds (here
    /// or in another conference) is closed first.
    pub fn join_conference(&mut self, conference: &str, call: &str, muted: bool, at: i64) -> Result<(), StoreError> {
        self.conn.transaction(|tx| {
            tx.execute(
                "UPDATE conference_participants SET left_at = ?2 WHERE call_id = ?1 AND left_at IS NULL",
                params![call, at],
            )?;
            tx.execute(
                "INSERT INTO conference_participants (conference_id, call_id, muted, joined_at) VALUES (?1, ?2, ?3, ?4)",
                params![conference, call, muted, at],
            )?;
            Ok(())
        })
    }

    /// Whether call `call`'s open seat in `conference` is muted; `NotFound` if it has none.
    pub fn mute_participant(&mut self, conference: &str, call: &str, muted: bool) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE conference_participants SET muted = ?3
             WHERE conference_id = ?1 AND call_id = ?2 AND left_at IS NULL",
            params![conference, call, muted],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Closes call `call`'s seats (in `conference`, or in any with `None`) at `at`; how many
    /// were open.
    pub fn leave_conference(&mut self, conference: Option<&str>, call: &str, at: i64) -> Result<usize, StoreError> {
        self.conn.execute(
            "UPDATE conference_participants SET left_at = ?3
             WHERE (conference_id = ?1 OR ?1 IS NULL) AND call_id = ?2 AND left_at IS NULL",
            params![conference, call, at],
        )
    }

    /// Seats voice agent `id` (`agt_…`, at `url`, speaking `format`) in `conference` at `at`.
    pub fn join_agent(
        &mut self,
        conference: &str,
        id: &str,
        url: &str,
        format: Option<&str>,
        muted: bool,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO conference_agents (id, conference_id, url, format, muted, joined_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, conference, url, format, muted, at],
        )?;
        Ok(())
    }

    /// Whether agent `id`, seated in `conference`, is muted; `NotFound` if it is not there.
    pub fn mute_agent(&mut self, conference: &str, id: &str, muted: bool) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE conference_agents SET muted = ?3 WHERE conference_id = ?1 AND id = ?2 AND left_at IS NULL",
            params![conference, id, muted],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Agent `id` leaves `conference` at `at`; whether it was there.
    pub fn leave_agent(&mut self, conference: &str, id: &str, at: i64) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE conference_agents SET left_at = ?3 WHERE conference_id = ?1 AND id = ?2 AND left_at IS NULL",
            params![conference, id, at],
        )? > 0)
    }

    /// Ends conference `id` at `at` (every open seat closes); `NotFound` outside `scope`.
    pub fn end_conference(&mut self, scope: &Scope, id: &str, at: i64) -> Result<(), StoreError> {
        self.conn.transaction(|tx| {
            let n = tx.execute(
                "UPDATE conferences SET ended_at = COALESCE(ended_at, ?3)
                 WHERE id = ?1 AND (organization_id = ?2 OR ?2 IS NULL)",
                params![id, scope.org(), at],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            for table in ["conference_participants", "conference_agents"] {
                tx.execute(
                    &format!("UPDATE {table} SET left_at = ?2 WHERE conference_id = ?1 AND left_at IS NULL"),
                    params![id, at],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conference(id: &str, org: &str) -> ConferenceRow {
        ConferenceRow {
            id: id.into(),
            organization_id: org.into(),
            name: Some("standup".into()),
            created_at: 1,
            ended_at: None,
            participants: Vec::new(),
        }
    }

    #[test]
    fn conferences_are_scoped_and_seats_open_and_close() {
        for mut s in Store::test_backends().unwrap() {
            s.insert_conference(&conference("conf_a", "org_a")).unwrap();
            s.insert_conference(&conference("conf_b", "org_b")).unwrap();
            let a = Scope::Org("org_a".into());
            assert!(matches!(s.conference(&a, "conf_b"), Err(StoreError::NotFound)), "another's");
            assert!(matches!(s.end_conference(&a, "conf_b", 5), Err(StoreError::NotFound)), "another's");
            assert_eq!(s.conferences(&a, 10).unwrap().len(), 1);
            assert_eq!(s.conferences(&Scope::All, 10).unwrap().len(), 2);

            for id in ["call_1", "call_2"] {
                s.insert_call(&crate::store::calls::tests::new_call(id, "c", 1)).unwrap();
            }
            s.join_conference("conf_a", "call_1", false, 2).unwrap();
            s.join_conference("conf_a", "call_2", true, 3).unwrap();
            s.mute_participant("conf_a", "call_1", true).unwrap();
            assert!(matches!(s.mute_participant("conf_b", "call_1", true), Err(StoreError::NotFound)));
            // call_2 moves to the other room: its first seat closes.
            s.join_conference("conf_b", "call_2", false, 4).unwrap();
            // A voice agent sits in conf_a too, after the calls.
            s.join_agent("conf_a", "agt_1", "ws://127.0.0.1:9/agent", None, false, 5).unwrap();
            assert!(matches!(s.mute_agent("conf_b", "agt_1", true), Err(StoreError::NotFound)));
            s.mute_agent("conf_a", "agt_1", true).unwrap();
            let c = s.conference(&a, "conf_a").unwrap();
            assert_eq!(c.participants.len(), 3);
            assert_eq!((c.participants[2].member.as_str(), c.participants[2].muted), ("agt_1", true));
            assert_eq!(c.participants[2].agent_url.as_deref(), Some("ws://127.0.0.1:9/agent"));
            assert_eq!(c.participants[0].agent_url, None);
            assert!(c.participants[0].muted && c.participants[0].active());
            assert_eq!(c.participants[1].left_at, Some(4));
            s.end_conference(&a, "conf_a", 9).unwrap();
            let c = s.conference(&a, "conf_a").unwrap();
            assert_eq!(c.ended_at, Some(9));
            assert!(c.participants.iter().all(|p| !p.active()));
            assert_eq!(s.leave_conference(None, "call_2", 10).unwrap(), 1);
        }
    }

    #[test]
    fn a_call_that_ended_seated_has_left_when_it_ended() {
        for mut s in Store::test_backends().unwrap() {
            s.insert_conference(&conference("conf_a", "org_a")).unwrap();
            s.insert_call(&crate::store::calls::tests::new_call("call_x", "c", 1)).unwrap();
            s.join_conference("conf_a", "call_x", false, 2).unwrap();
            s.conn.execute("UPDATE calls SET ended_at = 7 WHERE id = 'call_x'", &[]).unwrap();
            let c = s.conference(&Scope::All, "conf_a").unwrap();
            assert_eq!(c.participants[0].left_at, Some(7));
        }
    }
}
