//! The one way into `serve`'s SIP loop from other tasks: API commands (each with the
//! oneshot its reply goes to), media reports and agent hang-ups, queued on one channel
//! and woken through the driver's waker.

use crate::engine::{CallId, Command, MediaEvent};
use dialtone_api::http::{Action, CallControl, Originate, Refusal, Reply};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

/// What other tasks tell the SIP loop.
pub enum Input {
    /// An API command and where its reply goes.
    Command(Command, Option<oneshot::Sender<Result<(), Refusal>>>),
    /// A call's media reports; `api_id` is the stored call it belongs to (its media may
    /// report after the call has ended, a recording's end for one).
    Media {
        /// The call.
        call: CallId,
        /// The stored call.
        api_id: Option<String>,
        /// What happened.
        event: MediaEvent,
    },
    /// A call's agent bridge asks for the hang-up.
    AgentHangup(CallId, String),
    /// A call webhook's answer.
    Decided(CallId, Result<dialtone_api::routing::Decision, String>),
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    tx: mpsc::UnboundedSender<Input>,
    wake: Arc<Notify>,
}

impl Inbox {
    /// An inbox waking the loop through `wake`, and its receiving end.
    pub fn new(wake: Arc<Notify>) -> (Inbox, mpsc::UnboundedReceiver<Input>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Inbox { tx, wake }, rx)
    }

    /// Queues `input` and wakes the loop.
    pub fn send(&self, input: Input) {
        if self.tx.send(input).is_ok() {
            self.wake.notify_one();
        }
    }
}

/// The API's [`CallControl`]: commands go into the inbox.
pub struct Control {
    /// Where commands go.
    pub inbox: Inbox,
    /// A trunk is set: calls can be placed.
    pub trunk: bool,
    /// The realm SIP users' credentials are for.
    pub realm: String,
    /// Some organization has a trunk.
    pub stored_trunks: std::sync::atomic::AtomicBool,
    /// Every trunk's status, as the engine last reported it.
    pub trunk_status: Arc<std::sync::Mutex<Vec<dialtone_api::http::TrunkStatus>>>,
    /// Hands the stored trunks to the engine one set at a time, in order.
    pub trunk_updates: mpsc::UnboundedSender<Vec<dialtone_api::store::TrunkRow>>,
}

impl Control {
    /// A control sending into `inbox`; the resolver of stored trunks runs as a task.
    pub fn new(
        inbox: Inbox,
        trunk: bool,
        realm: String,
        tls: Option<crate::tls::Client>,
        trunk_status: Arc<std::sync::Mutex<Vec<dialtone_api::http::TrunkStatus>>>,
    ) -> Control {
        let (trunk_updates, mut rows) = mpsc::unbounded_channel::<Vec<dialtone_api::store::TrunkRow>>();
        let (to, client) = (inbox.clone(), tls);
        tokio::spawn(async move {
            while let Some(mut latest) = rows.recv().await {
                // Only the newest set matters.
                while let Ok(newer) = rows.try_recv() {
                    latest = newer;
                }
                let (trunks, ranges) = super::trunks::resolve(latest, client.as_ref()).await;
                to.send(Input::Command(Command::TrunkRanges(ranges), None));
                to.send(Input::Command(Command::Trunks(trunks), None));
            }
        });
        Control { inbox, trunk, realm, stored_trunks: false.into(), trunk_status, trunk_updates }
    }
}

impl CallControl for Control {
    fn originate(&self, call: Originate) {
        // The call's progress goes to the store; nobody waits for this reply.
        self.inbox.send(Input::Command(Command::Originate(call), None));
    }

    fn act(&self, id: &str, action: Action) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.inbox.send(Input::Command(Command::Act(id.to_string(), action), Some(tx)));
        rx
    }

    fn conference_agent(&self, member: dialtone_api::http::AgentMember) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.inbox.send(Input::Command(Command::ConferenceAgent(member), Some(tx)));
        rx
    }

    fn can_originate(&self) -> bool {
        self.trunk || self.stored_trunks.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_numbers(&self, numbers: Vec<dialtone_api::store::NumberRow>) {
        self.inbox.send(Input::Command(Command::Numbers(numbers), None));
    }

    fn set_trunks(&self, trunks: Vec<dialtone_api::store::TrunkRow>) {
        self.stored_trunks.store(!trunks.is_empty(), std::sync::atomic::Ordering::Relaxed);
        let _ = self.trunk_updates.send(trunks);
    }

    fn trunk_status(&self) -> Vec<dialtone_api::http::TrunkStatus> {
        self.trunk_status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn admit(&self, org: &str, number: &str, call_id: &str) -> Reply {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::Admit { org: org.into(), number: number.into(), call_id: call_id.into() };
        self.inbox.send(Input::Command(cmd, Some(tx)));
        rx
    }

    fn release(&self, call_id: &str) {
        self.inbox.send(Input::Command(Command::Release(call_id.into()), None));
    }

    fn set_sip_users(&self, users: Vec<dialtone_api::store::SipUserRow>) {
        // Only those made for the realm in force can answer its challenges.
        let (ok, stale): (Vec<_>, Vec<_>) = users.into_iter().partition(|u| u.realm == self.realm);
        for u in &stale {
            tracing::warn!(user = %u.username, realm = %u.realm, "a SIP user of another realm cannot log in: make it again");
        }
        let users = ok
            .into_iter()
            .map(|u| dialtone_sip::userauth::SipUser {
                username: u.username,
                ha1_md5: u.ha1_md5,
                ha1_sha256: u.ha1_sha256,
                owner: u.organization_id,
            })
            .collect();
        self.inbox.send(Input::Command(Command::SipUsers(users), None));
    }

    fn set_policy(&self, org: &dialtone_api::store::Organization) {
        let policy = crate::engine::OrgPolicy {
            max_concurrent_calls: org.max_concurrent_calls,
            max_calls_per_second: org.max_calls_per_second,
            allowed_destinations: org.allowed_destinations.clone(),
        };
        self.inbox.send(Input::Command(Command::Policy { org: org.id.clone(), policy }, None));
    }
}
