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

    fn can_originate(&self) -> bool {
        self.trunk
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
