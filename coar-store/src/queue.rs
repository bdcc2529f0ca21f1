//! The durable queue: claiming with leases, completing, failing with backoff, replaying.
//!
//! Claiming is atomic with many workers in many processes: `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL and MariaDB; on SQLite the claim takes the database's write lock before it
//! reads (one writer at a time). Due rows are found per state in index order, so a claim
//! costs the same with ten or a million notifications waiting. A claim holds a lease; a worker that dies lets its lease
//! expire and the notification becomes claimable again, its attempt recorded as abandoned.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::NotSet,
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, ExprTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Alias, DynIden, Expr, Func, IntoIden, LockBehavior, LockType, Query, SimpleExpr},
};

use crate::{
    Backend, Direction, Record, State, Store, StoreError,
    entity::{attempt, notification},
    model::to_micros,
};

/// A notification claimed by a worker, until its lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The notification (state `processing`).
    pub record: Record,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    /// When the lease ends.
    pub lease_until: DateTime<Utc>,
    token: String,
}

impl Claim {
    /// The claims on just-claimed `records`, under one lease and token.
    pub(crate) fn all(records: Vec<Record>, lease_until: DateTime<Utc>, token: &str) -> Vec<Claim> {
        records
            .into_iter()
            .map(|record| Claim {
                attempt: record.attempts,
                record,
                lease_until,
                token: token.to_owned(),
            })
            .collect()
    }
}

/// A failed attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// Retrying cannot help (e.g. the peer answered 4xx): go to `failed` at once.
    pub permanent: bool,
    /// Do not retry before this time (a peer's `Retry-After`).
    pub not_before: Option<DateTime<Utc>>,
    /// For deliveries: what the peer answered.
    pub delivery: Option<Delivery>,
}

impl Failure {
    /// A transient failure: retried with backoff.
    pub fn transient(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            ..Failure::default()
        }
    }

    /// A permanent failure: no retry.
    pub fn permanent(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            permanent: true,
            ..Failure::default()
        }
    }
}

/// What a peer answered to a delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The HTTP status.
    pub status: u16,
    /// The start of the response body.
    pub excerpt: Option<String>,
}

/// The states in which a notification still waits for (or is in) its turn.
const PENDING: [State; 3] = [State::Queued, State::RetryScheduled, State::Processing];

/// The ways a notification can be due, each one an index range (`state, direction, id`):
/// queued; a retry whose time has come; processing under a lease that has run out.
/// Outbound, `in_order` also leaves out those behind an older one of their thread.
fn due_branches(direction: Direction, now: i64, in_order: bool) -> [Condition; 3] {
    use notification::Column as C;
    let branch = |state: State| {
        let mut cond = Condition::all()
            .add(C::State.eq(state.as_str()))
            .add(C::Direction.eq(direction.as_str()));
        if direction == Direction::Outbound && in_order {
            cond = cond.add(first_in_thread());
        }
        cond
    };
    [
        branch(State::Queued),
        branch(State::RetryScheduled).add(C::NextAttemptAt.lte(now)),
        branch(State::Processing).add(C::LeaseUntil.lt(now)),
    ]
}

/// Any of [`due_branches`]: what a claim re-checks as it takes the rows.
fn claimable(direction: Direction, now: i64) -> Condition {
    due_branches(direction, now, true)
        .into_iter()
        .fold(Condition::any(), Condition::add)
}

/// An outbound notification's inbox, what [`QueuePolicy::per_inbox`](crate::QueuePolicy::per_inbox)(crate::QueuePolicy)
/// counts deliveries by: its target's inbox, or the target's id when it has none.
fn inbox() -> SimpleExpr {
    use notification::Column as C;
    Func::coalesce([
        Expr::col(C::TargetInbox),
        Expr::col(C::TargetId),
        Expr::val(""),
    ])
    .into()
}

/// Outbound notifications of one delivery thread (one target inbox, one activity and its
/// replies: `thread_key`) are delivered one at a time, in order of creation: one is due only
/// when no older one of its thread is still pending (one lookup in `ix_notifications_thread`).
/// Claims take the queue lock (SQLite's write lock, the `queue_locks` row elsewhere), so a
/// claimer that runs after another sees its claims as pending and leaves their threads
/// alone. A notification that fails for good (`failed`, `dead`) no longer holds its thread
/// up, and one that keeps failing holds up only its thread.
fn first_in_thread() -> SimpleExpr {
    use notification::Column as C;
    let older = Alias::new("older");
    let outer: DynIden = notification::Entity.into_iden();
    let inner: DynIden = older.clone().into_iden();
    let blocking = Query::select()
        .expr(Expr::val(1))
        .from_as(notification::Entity, older)
        .and_where(
            Expr::col((inner.clone(), C::ThreadKey)).eq(Expr::col((outer.clone(), C::ThreadKey))),
        )
        .and_where(Expr::col((inner.clone(), C::Id)).lt(Expr::col((outer, C::Id))))
        .and_where(Expr::col((inner.clone(), C::State)).is_in(PENDING.map(State::as_str)))
        .and_where(Expr::col((inner, C::Direction)).eq(Direction::Outbound.as_str()))
        .to_owned();
    Expr::exists(blocking).not()
}

/// Records a `running` attempt for each just-claimed record (its `attempts` already
/// counts it), which its completion, failure or release then finishes.
pub(crate) async fn start_attempts(
    txn: &DatabaseTransaction,
    records: &[Record],
    worker: &str,
    now_us: i64,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let rows = records.iter().map(|r| attempt::ActiveModel {
        id: NotSet,
        notification: Set(r.key),
        attempt: Set(i32::try_from(r.attempts).unwrap_or(i32::MAX)),
        worker: Set(worker.chars().take(128).collect()),
        started_at: Set(now_us),
        finished_at: Set(None),
        outcome: Set("running".into()),
        error: Set(None),
        http_status: Set(None),
        response_excerpt: Set(None),
    });
    attempt::Entity::insert_many(rows).exec(txn).await?;
    Ok(())
}

/// How many rounds an outbound claim makes when inboxes it found are full.
const FILL_ROUNDS: usize = 4;

impl Store {
    /// Claims up to `limit` notifications of `direction` that are due, oldest first, for
    /// `worker`. Each claimed notification is `processing` under a lease and has an attempt
    /// recorded. Two workers never hold the same notification at once. Outbound, only the
    /// oldest pending notification of each delivery thread is due (an Offer before its Undo,
    /// a reply after what it answers), and at most [`QueuePolicy::per_inbox`](crate::QueuePolicy::per_inbox) are in flight
    /// to one target inbox.
    pub async fn claim(
        &self,
        direction: Direction,
        worker: &str,
        limit: u64,
    ) -> Result<Vec<Claim>, StoreError> {
        self.claim_at(direction, worker, limit, Utc::now()).await
    }

    /// [`claim`](Self::claim) as if the time were `now` (for tests of leases and backoff).
    pub async fn claim_at(
        &self,
        direction: Direction,
        worker: &str,
        limit: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>, StoreError> {
        crate::retry!(self.claim_once(direction, worker, limit, now).await)
    }

    /// On SQLite, takes the database's write lock before a transaction's first read (a
    /// write that changes nothing): a transaction that reads first and writes later fails
    /// with `SQLITE_BUSY` when another connection wrote in between. Elsewhere, row locks
    /// (`FOR UPDATE`) do that work.
    pub(crate) async fn take_write_lock(
        &self,
        txn: &DatabaseTransaction,
    ) -> Result<(), StoreError> {
        use notification::Column as C;
        if self.backend == Backend::Sqlite {
            notification::Entity::update_many()
                .col_expr(C::Id, Expr::col(C::Id))
                .filter(Expr::val(1).eq(0))
                .exec(txn)
                .await?;
        }
        Ok(())
    }

    /// The oldest `limit` due rows of `direction` with their inbox, skipping `full`
    /// inboxes: up to `limit` from each branch, each read in index order (one query with OR
    /// would sort the whole backlog each time), then merged.
    async fn due_in(
        &self,
        txn: &DatabaseTransaction,
        direction: Direction,
        now_us: i64,
        limit: u64,
        full: &[String],
    ) -> Result<Vec<(i64, String)>, StoreError> {
        use notification::Column as C;
        let mut due: Vec<(i64, String)> = Vec::new();
        for branch in due_branches(direction, now_us, true) {
            let mut select = notification::Entity::find()
                .select_only()
                .column(C::Id)
                .expr_as(inbox(), "inbox")
                .filter(branch)
                .order_by_asc(C::Id)
                .limit(limit);
            if !full.is_empty() {
                select = select.filter(inbox().is_not_in(full.iter().cloned()));
            }
            if self.backend != Backend::Sqlite {
                select = select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
            }
            due.extend(select.into_tuple::<(i64, String)>().all(txn).await?);
        }
        due.sort_unstable();
        due.dedup();
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(due)
    }

    /// The oldest due outbound rows, at most `limit`, leaving each inbox at most
    /// [`QueuePolicy::per_inbox`](crate::QueuePolicy::per_inbox)(crate::QueuePolicy) deliveries in flight: what is in
    /// flight now is counted first; an inbox that fills up is skipped in the next round.
    async fn due_outbound(
        &self,
        txn: &DatabaseTransaction,
        now_us: i64,
        limit: u64,
    ) -> Result<Vec<i64>, StoreError> {
        use notification::Column as C;
        let per_inbox = u64::from(Ord::max(self.policy.per_inbox, 1));
        // In flight: few rows (what workers hold), counted here rather than grouped by an
        // expression, which the engines compare differently.
        let in_flight: Vec<String> = notification::Entity::find()
            .select_only()
            .expr_as(inbox(), "inbox")
            .filter(C::State.eq(State::Processing.as_str()))
            .filter(C::Direction.eq(Direction::Outbound.as_str()))
            .filter(C::LeaseUntil.gte(now_us))
            .into_tuple()
            .all(txn)
            .await?;
        let mut taken: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for inbox in in_flight {
            *taken.entry(inbox).or_default() += 1;
        }
        let full = |taken: &std::collections::HashMap<String, u64>| -> Vec<String> {
            taken
                .iter()
                .filter(|(_, n)| **n >= per_inbox)
                .map(|(inbox, _)| inbox.clone())
                .collect()
        };
        let mut picked: Vec<i64> = Vec::new();
        for _ in 0..FILL_ROUNDS {
            let want = limit.saturating_sub(picked.len() as u64);
            if want == 0 {
                break;
            }
            let mut skipped = false;
            let candidates = self
                .due_in(
                    txn,
                    Direction::Outbound,
                    now_us,
                    want + picked.len() as u64,
                    &full(&taken),
                )
                .await?;
            for (id, inbox) in candidates {
                if picked.contains(&id) || picked.len() as u64 >= limit {
                    continue;
                }
                let n = taken.entry(inbox).or_default();
                if *n >= per_inbox {
                    skipped = true;
                    continue;
                }
                *n += 1;
                picked.push(id);
            }
            if !skipped {
                break;
            }
        }
        picked.sort_unstable();
        Ok(picked)
    }

    /// Whether anything of `direction` may be due: one indexed read per way of being due, on
    /// the shared pool, before a claim takes its turn to write. It errs towards yes (thread
    /// order and full inboxes are left to the claim), so it never hides work. Without it,
    /// every empty claim (each worker looks for outbound work after each inbound batch) took
    /// SQLite's one writer away from the inbox (`cargo xtask bench`: half the claims under
    /// load were empty; default settings 4 017 → 4 392 accepted and processed a second).
    async fn maybe_due(&self, direction: Direction, now_us: i64) -> Result<bool, StoreError> {
        use notification::Column as C;
        for branch in due_branches(direction, now_us, false) {
            let found: Option<i64> = notification::Entity::find()
                .select_only()
                .column(C::Id)
                .filter(branch)
                .limit(1)
                .into_tuple()
                .one(&self.db)
                .await?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn claim_once(
        &self,
        direction: Direction,
        worker: &str,
        limit: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claim>, StoreError> {
        use notification::Column as C;
        let now_us = to_micros(now);
        if !self.maybe_due(direction, now_us).await? {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::new_v4().to_string();
        let lease_until =
            now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::minutes(5));
        let lease_us = to_micros(lease_until);
        let (_turn, txn) = self.begin_write().await?;
        let set_claimed = |ids: Condition| {
            notification::Entity::update_many()
                .col_expr(C::State, Expr::value(State::Processing.as_str()))
                .col_expr(C::LeaseUntil, Expr::value(lease_us))
                .col_expr(C::LeaseOwner, Expr::value(token.clone()))
                .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
                .col_expr(C::UpdatedAt, Expr::value(now_us))
                .filter(ids)
        };
        // No other process may claim between the reads below and the update.
        self.take_write_lock(&txn).await?;
        let due = match direction {
            Direction::Inbound => (self.due_in(&txn, direction, now_us, limit, &[]).await?)
                .into_iter()
                .map(|(id, _)| id)
                .collect(),
            Direction::Outbound => {
                if self.backend != Backend::Sqlite {
                    // One outbound claimer at a time (SQLite's write lock already is).
                    let lock = Query::select()
                        .expr(Expr::col(Alias::new("name")))
                        .from(Alias::new("queue_locks"))
                        .and_where(Expr::col(Alias::new("name")).eq("outbound"))
                        .lock(LockType::Update)
                        .to_owned();
                    txn.query_one(&lock).await?;
                }
                self.due_outbound(&txn, now_us, limit).await?
            }
        };
        if due.is_empty() {
            txn.commit().await?;
            return Ok(Vec::new());
        }
        set_claimed(
            Condition::all()
                .add(C::Id.is_in(due.clone()))
                .add(claimable(direction, now_us)),
        )
        .exec(&txn)
        .await?;
        let ids: Vec<i64> = notification::Entity::find()
            .select_only()
            .column(C::Id)
            .filter(C::Id.is_in(due))
            .filter(C::LeaseOwner.eq(token.clone()))
            .order_by_asc(C::Id)
            .into_tuple()
            .all(&txn)
            .await?;
        if ids.is_empty() {
            txn.commit().await?;
            return Ok(Vec::new());
        }
        // An attempt still `running` belonged to a worker whose lease expired.
        attempt::Entity::update_many()
            .col_expr(attempt::Column::Outcome, Expr::value("abandoned"))
            .col_expr(attempt::Column::FinishedAt, Expr::value(now_us))
            .col_expr(
                attempt::Column::Error,
                Expr::value("the worker's lease expired before it finished"),
            )
            .filter(attempt::Column::Notification.is_in(ids.clone()))
            .filter(attempt::Column::Outcome.eq("running"))
            .exec(&txn)
            .await?;
        let records: Vec<Record> = notification::Entity::find()
            .filter(C::Id.is_in(ids))
            .order_by_asc(C::Id)
            .all(&txn)
            .await?
            .into_iter()
            .map(Record::from)
            .collect();
        start_attempts(&txn, &records, worker, now_us).await?;
        txn.commit().await?;
        Ok(Claim::all(records, lease_until, &token))
    }

    /// Marks a claimed notification `processed`.
    pub async fn complete(
        &self,
        claim: &Claim,
        delivery: Option<Delivery>,
    ) -> Result<(), StoreError> {
        let done = [(claim, delivery)];
        crate::retry!(self.complete_many_once(&done).await)?
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Marks several claimed notifications `processed` in one transaction (one commit, and
    /// on SQLite one turn of the writer, for a worker's whole batch). One result per claim,
    /// in order: a claim whose lease was lost is refused (`LeaseLost`) without holding up
    /// the others.
    pub async fn complete_many(
        &self,
        done: &[(&Claim, Option<Delivery>)],
    ) -> Vec<Result<(), StoreError>> {
        match crate::retry!(self.complete_many_once(done).await) {
            Ok(results) => results,
            // The transaction failed as a whole: each claim stays unfinished.
            Err(e) => done
                .iter()
                .map(|_| Err(StoreError::Unavailable(format!("completing failed: {e}"))))
                .collect(),
        }
    }

    async fn complete_many_once(
        &self,
        done: &[(&Claim, Option<Delivery>)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let (_turn, txn) = self.begin_write().await?;
        self.take_write_lock(&txn).await?;
        let results = self.complete_in(&txn, done).await?;
        txn.commit().await?;
        Ok(results)
    }

    /// [`complete_many`](Self::complete_many)'s work inside `txn`, which holds the write
    /// lock already (on SQLite: it has written, or taken [`take_write_lock`](Self::take_write_lock)).
    pub(crate) async fn complete_in(
        &self,
        txn: &DatabaseTransaction,
        done: &[(&Claim, Option<Delivery>)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        use notification::Column as C;
        let now = to_micros(Utc::now());
        // Which claims still hold their lease: one read, then one UPDATE for them all and one
        // for their attempts (a delivery's attempt, which records what the peer answered,
        // one each). Was two statements per claim, each a turn of SQLite's one writer.
        // Each claim is judged by its own token: one batch may hold two claims on one
        // notification (a claim whose lease ran out, and its successor's), since the inbox
        // writer records the completions of all of this process's workers together.
        let mut owners: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
        for chunk in done.chunks(500) {
            let mut select = notification::Entity::find()
                .select_only()
                .column(C::Id)
                .column(C::LeaseOwner)
                .filter(C::Id.is_in(chunk.iter().map(|(c, _)| c.record.key)))
                .filter(C::State.eq(State::Processing.as_str()));
            if self.backend != Backend::Sqlite {
                select = select.lock(LockType::Update);
            }
            let found: Vec<(i64, Option<String>)> = select.into_tuple().all(txn).await?;
            owners.extend(found.into_iter().filter_map(|(id, o)| Some((id, o?))));
        }
        let holds = |c: &Claim| owners.get(&c.record.key) == Some(&c.token);
        let mut finished: Vec<i64> = done
            .iter()
            .filter(|(c, _)| holds(c))
            .map(|(c, _)| c.record.key)
            .collect();
        finished.sort_unstable();
        finished.dedup();
        for chunk in finished.chunks(500) {
            notification::Entity::update_many()
                .col_expr(C::State, Expr::value(State::Processed.as_str()))
                .col_expr(C::NextAttemptAt, Expr::value(Option::<i64>::None))
                .col_expr(C::LeaseUntil, Expr::value(Option::<i64>::None))
                .col_expr(C::LeaseOwner, Expr::value(Option::<String>::None))
                .col_expr(C::LastError, Expr::value(Option::<String>::None))
                .col_expr(C::UpdatedAt, Expr::value(now))
                .filter(C::Id.is_in(chunk.iter().copied()))
                .exec(txn)
                .await?;
        }
        let plain: Vec<i64> = done
            .iter()
            .filter(|(c, d)| d.is_none() && holds(c))
            .map(|(c, _)| c.record.key)
            .collect();
        for chunk in plain.chunks(500) {
            use attempt::Column as A;
            // A notification has one `running` attempt at most: the current claim's.
            attempt::Entity::update_many()
                .col_expr(A::Outcome, Expr::value("succeeded"))
                .col_expr(A::FinishedAt, Expr::value(now))
                .filter(A::Notification.is_in(chunk.iter().copied()))
                .filter(A::Outcome.eq("running"))
                .exec(txn)
                .await?;
        }
        for (claim, delivery) in done {
            if delivery.is_some() && holds(claim) {
                self.finish_attempt(txn, claim, "succeeded", None, delivery.clone(), now)
                    .await?;
            }
        }
        Ok(done
            .iter()
            .map(|(c, _)| match holds(c) {
                true => Ok(()),
                false => Err(StoreError::LeaseLost(c.record.key)),
            })
            .collect())
    }

    /// Records a failed attempt. Returns the new state: `retry_scheduled` (with backoff, or
    /// the peer's `not_before` if later), `dead` once the maximum attempts are spent, or
    /// `failed` for a permanent failure.
    pub async fn fail(&self, claim: &Claim, failure: Failure) -> Result<State, StoreError> {
        self.fail_at(claim, failure, Utc::now()).await
    }

    /// [`fail`](Self::fail) as if the time were `now`.
    pub async fn fail_at(
        &self,
        claim: &Claim,
        failure: Failure,
        now: DateTime<Utc>,
    ) -> Result<State, StoreError> {
        crate::retry!(self.fail_once(claim, failure.clone(), now).await)
    }

    async fn fail_once(
        &self,
        claim: &Claim,
        failure: Failure,
        now: DateTime<Utc>,
    ) -> Result<State, StoreError> {
        let (state, next) = if failure.permanent {
            (State::Failed, None)
        } else if claim.attempt >= self.policy.max_attempts {
            (State::Dead, None)
        } else {
            let backoff = now
                + chrono::Duration::from_std(self.policy.delay(claim.attempt)).unwrap_or_default();
            let next = failure
                .not_before
                .map_or(backoff, |nb| Ord::max(nb, backoff));
            (State::RetryScheduled, Some(to_micros(next)))
        };
        let now_us = to_micros(now);
        let (_turn, txn) = self.begin_write().await?;
        self.finish(&txn, claim, state, next, Some(&failure.message), now_us)
            .await?;
        self.finish_attempt(
            &txn,
            claim,
            "failed",
            Some(&failure.message),
            failure.delivery,
            now_us,
        )
        .await?;
        txn.commit().await?;
        Ok(state)
    }

    /// Hands a claimed notification back unprocessed (graceful shutdown): `queued` again,
    /// the attempt not counted.
    pub async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        crate::retry!(self.release_once(claim).await)
    }

    async fn release_once(&self, claim: &Claim) -> Result<(), StoreError> {
        use notification::Column as C;
        let now = to_micros(Utc::now());
        let (_turn, txn) = self.begin_write().await?;
        let result = notification::Entity::update_many()
            .col_expr(C::State, Expr::value(State::Queued.as_str()))
            .col_expr(C::Attempts, Expr::col(C::Attempts).sub(1))
            .col_expr(C::LeaseUntil, Expr::value(Option::<i64>::None))
            .col_expr(C::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::Id.eq(claim.record.key))
            .filter(C::LeaseOwner.eq(claim.token.clone()))
            .filter(C::State.eq(State::Processing.as_str()))
            .exec(&txn)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::LeaseLost(claim.record.key));
        }
        self.finish_attempt(&txn, claim, "released", None, None, now)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn finish(
        &self,
        txn: &DatabaseTransaction,
        claim: &Claim,
        state: State,
        next: Option<i64>,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        use notification::Column as C;
        let result = notification::Entity::update_many()
            .col_expr(C::State, Expr::value(state.as_str()))
            .col_expr(C::NextAttemptAt, Expr::value(next))
            .col_expr(C::LeaseUntil, Expr::value(Option::<i64>::None))
            .col_expr(C::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(C::LastError, Expr::value(error.map(str::to_owned)))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::Id.eq(claim.record.key))
            .filter(C::LeaseOwner.eq(claim.token.clone()))
            .filter(C::State.eq(State::Processing.as_str()))
            .exec(txn)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::LeaseLost(claim.record.key));
        }
        Ok(())
    }

    async fn finish_attempt(
        &self,
        txn: &impl ConnectionTrait,
        claim: &Claim,
        outcome: &str,
        error: Option<&str>,
        delivery: Option<Delivery>,
        now: i64,
    ) -> Result<(), StoreError> {
        use attempt::Column as A;
        attempt::Entity::update_many()
            .col_expr(A::Outcome, Expr::value(outcome))
            .col_expr(A::FinishedAt, Expr::value(now))
            .col_expr(A::Error, Expr::value(error.map(str::to_owned)))
            .col_expr(
                A::HttpStatus,
                Expr::value(delivery.as_ref().map(|d| i32::from(d.status))),
            )
            .col_expr(
                A::ResponseExcerpt,
                Expr::value(
                    delivery
                        .and_then(|d| d.excerpt)
                        .map(|e| e.chars().take(2000).collect::<String>()),
                ),
            )
            .filter(A::Notification.eq(claim.record.key))
            .filter(A::Attempt.eq(i32::try_from(claim.attempt).unwrap_or(i32::MAX)))
            .filter(A::Outcome.eq("running"))
            .exec(txn)
            .await?;
        Ok(())
    }

    /// Queues a `dead`, `failed` or `processed` notification again, with a fresh attempt
    /// budget (its attempt history is kept). Returns false when it is in another state.
    pub async fn replay(&self, key: i64) -> Result<bool, StoreError> {
        self.requeue(key, &[State::Dead, State::Failed, State::Processed], true)
            .await
    }

    async fn requeue(&self, key: i64, from: &[State], reset: bool) -> Result<bool, StoreError> {
        use notification::Column as C;
        let mut update = notification::Entity::update_many()
            .col_expr(C::State, Expr::value(State::Queued.as_str()))
            .col_expr(C::NextAttemptAt, Expr::value(Option::<i64>::None))
            .col_expr(C::UpdatedAt, Expr::value(to_micros(Utc::now())));
        if reset {
            update = update.col_expr(C::Attempts, Expr::value(0));
        }
        let result = update
            .filter(C::Id.eq(key))
            .filter(C::State.is_in(from.iter().map(|s| s.as_str())))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 && self.get(key).await?.is_none() {
            return Err(StoreError::NotFound(key));
        }
        Ok(result.rows_affected == 1)
    }

    /// For each queue state of `direction` that holds notifications: how many, and when the
    /// one longest in that state entered it (its last change). What an operator alerts on:
    /// a queue that grows, or a notification that waits too long.
    pub async fn queue_ages(
        &self,
        direction: Direction,
    ) -> Result<Vec<(State, u64, DateTime<Utc>)>, StoreError> {
        use sea_orm::{QueryOrder, QuerySelect};
        let rows: Vec<(String, i64, Option<i64>)> = notification::Entity::find()
            .select_only()
            .column(notification::Column::State)
            .column_as(notification::Column::Id.count(), "n")
            .column_as(notification::Column::UpdatedAt.min(), "oldest")
            .filter(notification::Column::Direction.eq(direction.as_str()))
            .group_by(notification::Column::State)
            .order_by_asc(notification::Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(state, n, oldest)| {
                Some((
                    state.parse().ok()?,
                    u64::try_from(n).unwrap_or(0),
                    DateTime::from_timestamp_micros(oldest?)?,
                ))
            })
            .collect())
    }

    /// How many notifications of `direction` are in each state.
    pub async fn queue_depth(&self, direction: Direction) -> Result<Vec<(State, u64)>, StoreError> {
        let filter = crate::Filter {
            direction: Some(direction),
            ..Default::default()
        };
        let counts = self
            .counts_by(notification::Column::State, &filter, "")
            .await?;
        Ok(counts
            .into_iter()
            .filter_map(|(s, n)| Some((s.parse().ok()?, n)))
            .collect())
    }
}
