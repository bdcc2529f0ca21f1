//! The store's public vocabulary: directions, queue states, records, filters, pages.

use std::{fmt, str::FromStr, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use coar_model::Pattern;

use crate::entity::{attempt, notification};

/// Which way a notification travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received in our inbox.
    Inbound,
    /// Sent (or to be sent) by us.
    Outbound,
}

impl Direction {
    /// `inbound` or `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "inbound" => Ok(Direction::Inbound),
            "outbound" => Ok(Direction::Outbound),
            other => Err(format!("unknown direction {other:?} (inbound or outbound)")),
        }
    }
}

/// The processing (inbound) or delivery (outbound) state of a notification.
///
/// `queued → processing (lease) → processed | failed | retry_scheduled → … → dead`;
/// `quarantined` holds notifications from untrusted senders until someone trusts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Waiting for a worker.
    Queued,
    /// Claimed by a worker until its lease ends.
    Processing,
    /// Done.
    Processed,
    /// Failed permanently (the error said retrying cannot help).
    Failed,
    /// Failed; tried again at `next_attempt_at`.
    RetryScheduled,
    /// Failed the maximum number of times; waits for a person to replay it.
    Dead,
    /// From an untrusted sender: stored and listed, not processed.
    Quarantined,
}

impl State {
    /// Every state.
    pub const ALL: [State; 7] = [
        State::Queued,
        State::Processing,
        State::Processed,
        State::Failed,
        State::RetryScheduled,
        State::Dead,
        State::Quarantined,
    ];

    /// The stored name, e.g. `retry_scheduled`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Processing => "processing",
            State::Processed => "processed",
            State::Failed => "failed",
            State::RetryScheduled => "retry_scheduled",
            State::Dead => "dead",
            State::Quarantined => "quarantined",
        }
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown state {s:?}"))
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// A stored notification and its queue state. Not serializable: what is shown of it is a
/// view's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The store's key for it (also the `Location` path segment and the listing cursor).
    pub key: i64,
    /// Which way it travels.
    pub direction: Direction,
    /// The activity id.
    pub notification_id: String,
    /// The pattern, `None` for an activity that names none.
    pub pattern: Option<Pattern>,
    /// Its `type` values.
    pub types: Vec<String>,
    /// `origin.id`.
    pub origin_id: Option<String>,
    /// `origin.inbox`.
    pub origin_inbox: Option<String>,
    /// `target.id`.
    pub target_id: Option<String>,
    /// `target.inbox`.
    pub target_inbox: Option<String>,
    /// `actor.id`.
    pub actor_id: Option<String>,
    /// `object.id`.
    pub object_id: Option<String>,
    /// `context.id`.
    pub context_id: Option<String>,
    /// `ietf:cite-as` values of object and context.
    pub cite_as: Vec<String>,
    /// `inReplyTo`.
    pub in_reply_to: Option<String>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// The media type it came with.
    pub media_type: String,
    /// SHA-256 of the body, hex.
    pub sha256: String,
    /// When it was received (inbound) or created (outbound).
    pub received_at: DateTime<Utc>,
    /// The peer's address, for inbound.
    pub remote_addr: Option<String>,
    /// Inbound: the sender presented a bearer token (only its hash is kept).
    pub bearer_token: bool,
    /// Inbound: thumbprint of the key its HTTP Message Signature verified with.
    pub signature_key: Option<String>,
    /// Inbound: SHA-256 of that signature (a request carrying it again is a replay).
    pub signature_hash: Option<String>,
    /// The registered service it was attributed to.
    pub service: Option<i64>,
    /// Queue state.
    pub state: State,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (`retry_scheduled`).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last error.
    pub last_error: Option<String>,
    /// Last state change.
    pub updated_at: DateTime<Utc>,
}

fn split(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

impl From<notification::Model> for Record {
    fn from(m: notification::Model) -> Record {
        Record {
            key: m.id,
            direction: m.direction.parse().unwrap_or(Direction::Inbound),
            notification_id: m.notification_id,
            pattern: m.pattern.as_deref().and_then(Pattern::from_slug),
            types: split(&m.types),
            origin_id: m.origin_id,
            origin_inbox: m.origin_inbox,
            target_id: m.target_id,
            target_inbox: m.target_inbox,
            actor_id: m.actor_id,
            object_id: m.object_id,
            context_id: m.context_id,
            cite_as: split(&m.cite_as),
            in_reply_to: m.in_reply_to,
            body: m.body,
            media_type: m.media_type,
            sha256: m.sha256,
            received_at: from_micros(m.received_at),
            remote_addr: m.remote_addr,
            bearer_token: m.bearer_sha256.is_some(),
            signature_key: m.signature_key,
            signature_hash: m.signature_hash,
            service: m.service_id,
            state: m.state.parse().unwrap_or(State::Queued),
            attempts: u32::try_from(m.attempts).unwrap_or(0),
            next_attempt_at: m.next_attempt_at.map(from_micros),
            last_error: m.last_error,
            updated_at: from_micros(m.updated_at),
        }
    }
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first.
    pub attempt: u32,
    /// Who made it.
    pub worker: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended, if it did.
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded`, `failed`, `abandoned` (the worker's lease expired),
    /// `released` (handed back on shutdown).
    pub outcome: String,
    /// The error text of a failure.
    pub error: Option<String>,
    /// The peer's HTTP status, for deliveries.
    pub http_status: Option<u16>,
    /// The start of the peer's response, for deliveries.
    pub response_excerpt: Option<String>,
}

impl From<attempt::Model> for Attempt {
    fn from(m: attempt::Model) -> Attempt {
        Attempt {
            attempt: u32::try_from(m.attempt).unwrap_or(0),
            worker: m.worker,
            started_at: from_micros(m.started_at),
            finished_at: m.finished_at.map(from_micros),
            outcome: m.outcome,
            error: m.error,
            http_status: m.http_status.and_then(|s| u16::try_from(s).ok()),
            response_excerpt: m.response_excerpt,
        }
    }
}

/// Retry behaviour of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePolicy {
    /// Attempts before a notification is `dead`.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// The longest delay between attempts.
    pub max_delay: Duration,
    /// Outbound: how many deliveries to one inbox may be in flight at once (at least 1).
    /// Order is kept only within a delivery thread (an Offer before its Undo, a reply
    /// after what it answers), so independent notifications to one inbox go out side by
    /// side and one that keeps failing holds up only its own thread.
    pub per_inbox: u32,
}

impl Default for QueuePolicy {
    /// 8 attempts, 30 s doubling to at most 1 h (about 2 h in all); 4 deliveries at once
    /// per inbox.
    fn default() -> Self {
        QueuePolicy {
            max_attempts: 8,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(3600),
            per_inbox: 4,
        }
    }
}

impl QueuePolicy {
    /// The delay after failed attempt `attempt` (1-based): `base × 2^(attempt−1)`, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Filters for [`crate::Store::list`]; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only this pattern (`Some(None)`: only unrecognised activities).
    pub pattern: Option<Option<Pattern>>,
    /// Only this state.
    pub state: Option<State>,
    /// Only from this origin (`origin.id`).
    pub origin: Option<String>,
    /// Only to this target (`target.id`).
    pub target: Option<String>,
    /// Only with this origin or actor: the feed's `source`.
    pub source: Option<String>,
    /// Only about this resource: `object.id`, `context.id`, a `cite-as` or a relationship end.
    pub resource: Option<String>,
    /// Only received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Only received before.
    pub until: Option<DateTime<Utc>>,
    /// Only those whose body, notification id or last error contains this text
    /// (case-insensitive for ASCII letters; `%` and `_` are matched literally).
    pub text: Option<String>,
    /// Only those attributed to a registered service (what a public listing shows when
    /// unattributed senders are not published).
    pub attributed_only: bool,
}

/// One page of a keyset-paginated listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The cursor of the next (older) page, `None` on the last page.
    pub next: Option<i64>,
}

/// Counts for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// By pattern slug (`unrecognised` for none).
    pub by_pattern: Vec<(String, u64)>,
    /// By state.
    pub by_state: Vec<(String, u64)>,
    /// By direction.
    pub by_direction: Vec<(String, u64)>,
    /// By UTC day (`YYYY-MM-DD`), oldest first.
    pub by_day: Vec<(String, u64)>,
}
