//! Background workers: they claim queued notifications and run the inbound pipeline, or
//! deliver outbound ones through `coar-client`. At-least-once: a handler may see a
//! notification again after a crash, so handlers must be idempotent.

use std::{future::Future, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures_util::FutureExt;

use coar_model::Notification;
use coar_store::{Claim, Delivery, Direction, Failure, Record, State};
use tokio::{sync::watch, task::JoinSet};

use crate::{
    Core,
    pipeline::{HandlerError, Refusal},
};

/// How often an idle worker looks for work.
const POLL: Duration = Duration::from_millis(200);

/// How many inbound notifications a worker claims at once. Their successes are recorded
/// together, in one transaction, after the batch; each is started only while
/// [`START_WITHIN`] of the lease remains. Each claim and each completion is a commit that
/// also holds SQLite's one write lock away from the inbox, so fewer, larger ones win: 8 → 32
/// took processing from 1 700/s to 2 900/s end to end; 32 → 128 let the workers keep up with
/// a sustained load (`cargo xtask bench`: processed 0.66 → 1.00 of accepted).
const INBOUND_BATCH: u64 = 128;

/// A claimed notification is started only while at least this part of the lease remains
/// (here an eighth); the rest of the batch is handed back unprocessed, to be claimed again
/// at once, rather than run where the lease may end mid-way and another worker take it.
const START_WITHIN: u32 = 8;

/// How many outbound notifications a worker claims at once, and delivers side by side (at
/// most [`QueuePolicy::per_inbox`](coar_store::QueuePolicy) of them to one inbox, and one
/// at a time within a delivery thread: the claim sees to both). They run concurrently, so
/// the batch takes as long as its slowest delivery, which [`time_cap`] bounds.
const OUTBOUND_BATCH: u64 = 16;

/// Past this, a batch's successes so far are recorded at once rather than at its end, so
/// slow handlers do not leave finished work unrecorded for long.
const FLUSH_AFTER: Duration = Duration::from_secs(2);

/// Records a batch's successes (a failure is recorded as it happens, with its backoff):
/// inbound ones in the inbox writer's next transaction (on SQLite that spares the one writer
/// a turn), deliveries at once (a slow inbox's next deliveries wait for them, and the inbox
/// writer's batches would delay them: `cargo xtask bench` measured 69 → 59 deliveries a
/// second to one inbox through the writer).
async fn complete(core: &Arc<Core>, done: &[(&Claim, Option<Delivery>)]) {
    if done.is_empty() {
        return;
    }
    let outbound = done
        .iter()
        .any(|(c, _)| c.record.direction == Direction::Outbound);
    let through_writer = match outbound {
        true => None,
        false => {
            let owned = done
                .iter()
                .map(|(c, d)| ((*c).clone(), d.clone()))
                .collect();
            core.inserter.complete(owned).await
        }
    };
    // Deliveries, or the inbox writer has stopped: recorded here.
    let results = match through_writer {
        Some(results) => results,
        None => core.store().complete_many(done).await,
    };
    for ((claim, delivery), result) in done.iter().zip(results) {
        match result {
            Err(e) => {
                tracing::warn!(key = claim.record.key, error = %e, "done, but could not mark it")
            }
            Ok(_) if delivery.is_some() => {
                ended(core, &claim.record, "delivered");
                crate::pipeline::builtin::outbound_event(core, "delivered", &claim.record)
            }
            Ok(_) => ended(core, &claim.record, "processed"),
        }
    }
}

/// Measures the time from a notification's receipt (or creation) to its end.
fn ended(core: &Core, record: &Record, outcome: &'static str) {
    let age = (chrono::Utc::now() - record.received_at)
        .to_std()
        .unwrap_or_default();
    core.metrics()
        .ended(record.direction.as_str(), outcome, age);
}

/// The metrics' name of the state a failure left a notification in.
fn failed_as(state: State) -> Option<&'static str> {
    match state {
        State::Failed => Some("failed"),
        State::Dead => Some("dead"),
        _ => None,
    }
}

/// Handles a worker's claimed batch: processes inbound notifications one after the other,
/// their successes recorded together at the end, or as soon as [`FLUSH_AFTER`] has passed;
/// what is left when the lease runs short ([`START_WITHIN`]) or the worker is asked to stop
/// is handed back. Outbound ones are delivered side by side ([`deliver_batch`]).
async fn handle_batch(
    core: &Arc<Core>,
    direction: Direction,
    claims: &[Claim],
    stop: &watch::Receiver<bool>,
) {
    let margin = chrono::Duration::from_std(core.config().lease / START_WITHIN)
        .unwrap_or(chrono::Duration::MAX);
    if direction == Direction::Outbound {
        return deliver_batch(core, claims, stop, margin).await;
    }
    let (mut done, mut since) = (Vec::new(), std::time::Instant::now());
    for (i, claim) in claims.iter().enumerate() {
        if *stop.borrow() || claim.lease_until - chrono::Utc::now() < margin {
            for rest in &claims[i..] {
                if let Err(e) = core.store().release(rest).await {
                    tracing::warn!(key = rest.record.key, error = %e, "could not hand back a claim; its lease will expire");
                }
            }
            tracing::debug!(count = claims.len() - i, "handed back unstarted claims");
            break;
        }
        match guarded(core, claim, process(core, claim)).await {
            Ok(true) => done.push((claim, None)),
            Ok(false) => {}
            Err(message) => record_caught(core, claim, message).await,
        }
        if since.elapsed() > FLUSH_AFTER {
            complete(core, &std::mem::take(&mut done)).await;
            since = std::time::Instant::now();
        }
    }
    complete(core, &done).await;
}

/// Delivers a claimed outbound batch side by side, each delivery within [`time_cap`], then
/// records the successes together. Nothing is started when the worker is asked to stop or
/// the lease is already short: the batch is handed back.
async fn deliver_batch(
    core: &Arc<Core>,
    claims: &[Claim],
    stop: &watch::Receiver<bool>,
    margin: chrono::Duration,
) {
    let short = claims
        .iter()
        .any(|c| c.lease_until - chrono::Utc::now() < margin);
    if *stop.borrow() || short {
        for claim in claims {
            if let Err(e) = core.store().release(claim).await {
                tracing::warn!(key = claim.record.key, error = %e, "could not hand back a claim; its lease will expire");
            }
        }
        return;
    }
    let outcomes = futures_util::future::join_all(
        claims
            .iter()
            .map(|claim| guarded(core, claim, deliver(core, claim))),
    )
    .await;
    let mut done = Vec::new();
    for (claim, outcome) in claims.iter().zip(outcomes) {
        match outcome {
            Ok(Some(delivery)) => done.push((claim, Some(delivery))),
            Ok(None) => {}
            Err(message) => record_caught(core, claim, message).await,
        }
    }
    complete(core, &done).await;
}

/// Starts `count` workers; they stop when `stop` turns true, after finishing the notification
/// in hand and handing back the rest of their claim. Each runs under a supervisor: a loop
/// that ends while it should still run (a panic outside any one notification) is counted in
/// `/metrics` and started again after a second; `/healthz` answers 503 while any is down.
pub fn spawn(core: Arc<Core>, count: usize, stop: watch::Receiver<bool>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let host = std::process::id();
    core.metrics().workers.expect(count);
    for n in 0..count {
        let (core, stop) = (core.clone(), stop.clone());
        set.spawn(supervise(core, format!("worker-{host}-{n}"), stop));
    }
    set
}

/// Running workers, from [`Workers::start`] until [`Workers::stop`]: what `serve`, `work` and
/// an embedding application need of [`spawn`].
pub struct Workers {
    core: Arc<Core>,
    count: usize,
    stop: watch::Sender<bool>,
    running: JoinSet<()>,
    /// Whether the hand-off room they opened is closed again.
    closed: bool,
}

impl Drop for Workers {
    /// Dropped without [`Workers::stop`] (a cancelled `serve`, an embedding application):
    /// the loops are aborted with the `JoinSet`, and the inbox writers claim no more for
    /// them. What was handed over and not finished waits out its lease.
    fn drop(&mut self) {
        if !self.closed {
            self.closed = true;
            drop(
                self.core
                    .inserter
                    .hand_off()
                    .close(hand_off_capacity(self.count)),
            );
        }
    }
}

impl Workers {
    /// Starts `count` supervised workers on `core`.
    pub fn start(core: Arc<Core>, count: usize) -> Workers {
        core.inserter.hand_off().open(hand_off_capacity(count));
        let (stop, stopped) = watch::channel(false);
        let running = spawn(core.clone(), count, stopped);
        Workers {
            core,
            count,
            stop,
            running,
            closed: false,
        }
    }

    /// Asks them to stop and waits: each finishes the notification in hand and hands the
    /// rest of its claim back to the queue.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.running.join_next().await.is_some() {}
        self.closed = true;
        let hand_off = self.core.inserter.hand_off();
        for claim in hand_off.close(hand_off_capacity(self.count)) {
            if let Err(e) = self.core.store().release(&claim).await {
                tracing::warn!(key = claim.record.key, error = %e, "could not hand back a claim; its lease will expire");
            }
        }
        self.core.metrics().workers.retire(self.count);
    }
}

/// Runs one worker's loop until `stop`, restarting it when it ends otherwise.
async fn supervise(core: Arc<Core>, name: String, stop: watch::Receiver<bool>) {
    let mut first = true;
    loop {
        let running = match std::mem::take(&mut first) {
            true => core.metrics().workers.adopt(),
            false => core.metrics().workers.started(),
        };
        let result = AssertUnwindSafe(run(core.clone(), name.clone(), stop.clone()))
            .catch_unwind()
            .await;
        drop(running);
        if *stop.borrow() {
            return;
        }
        core.metrics().workers.restarted();
        let reason = match &result {
            Err(payload) => panic_message(payload.as_ref()),
            Ok(()) => "the loop returned".to_owned(),
        };
        tracing::error!(worker = %name, %reason, "a worker loop stopped; restarting it");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Claims taken from the [`HandOff`](crate::batch::HandOff), counted as finished when
/// dropped (a panic included).
struct Taken<'a> {
    core: &'a Core,
    claims: Vec<Claim>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.core.inserter.hand_off().finished(self.claims.len());
    }
}

/// How many claims the inbox writers may hold for `count` workers.
fn hand_off_capacity(count: usize) -> usize {
    count.saturating_mul(usize::try_from(INBOUND_BATCH).unwrap_or(usize::MAX))
}

/// One worker's loop: what the inbox writers claimed for this process first, then what
/// the queue has due (a backlog, retries, expired leases, outbound).
pub async fn run(core: Arc<Core>, name: String, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let mut busy = false;
        let handed = Taken {
            core: &core,
            claims: core
                .inserter
                .hand_off()
                .take(usize::try_from(INBOUND_BATCH).unwrap_or(usize::MAX)),
        };
        if !handed.claims.is_empty() {
            busy = true;
            handle_batch(&core, Direction::Inbound, &handed.claims, &stop).await;
        }
        drop(handed);
        for (direction, limit) in [
            (Direction::Inbound, INBOUND_BATCH),
            (Direction::Outbound, OUTBOUND_BATCH),
        ] {
            match core.store().claim(direction, &name, limit).await {
                Ok(claims) => {
                    busy |= !claims.is_empty();
                    handle_batch(&core, direction, &claims, &stop).await;
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "claiming {} notifications failed",
                    direction.as_str()
                ),
            }
        }
        if !busy {
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = core.inserter.hand_off().arrival() => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// The longest one notification's processing or delivery may take: what remains of a lease
/// when it may still be started (an eighth of it), so that it always ends within its lease
/// and no other worker takes it over while it runs (which would send it twice).
pub fn time_cap(lease: Duration) -> Duration {
    lease / START_WITHIN
}

/// Runs `work` (processing or delivering `claim`) within [`time_cap`], catching a panic.
/// `Err` is the failure to record: the panic's message, or the cap; `Ok` is the work's own
/// result, which records itself.
async fn guarded<T>(
    core: &Core,
    claim: &Claim,
    work: impl Future<Output = T>,
) -> Result<T, String> {
    let cap = time_cap(core.config().lease);
    match tokio::time::timeout(cap, AssertUnwindSafe(work).catch_unwind()).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(payload)) => {
            core.metrics().workers.panicked();
            let message = panic_message(payload.as_ref());
            tracing::error!(key = claim.record.key, panic = %message, "a notification's handling panicked");
            Err(format!("the handling panicked: {message}"))
        }
        Err(_) => Err(format!(
            "the handling took longer than {} s, the most a notification may take within its lease",
            cap.as_secs()
        )),
    }
}

/// Records a failure that `guarded` caught; it is retried with backoff like any other.
async fn record_caught(core: &Core, claim: &Claim, message: String) {
    if let Err(e) = core.store().fail(claim, Failure::transient(message)).await {
        tracing::warn!(key = claim.record.key, error = %e, "could not record the failure");
    }
}

/// Runs the pipeline on a claimed notification; true when it succeeded (the caller marks
/// it processed), false when the failure has been recorded.
async fn process(core: &Arc<Core>, claim: &Claim) -> bool {
    let key = claim.record.key;
    let direct = Notification::from_slice_with(
        &claim.record.body,
        coar_model::Limits {
            max_bytes: usize::MAX,
        },
    )
    .ok();
    // Not JSON (Turtle): read as the inbox read it, on the parsing pool.
    let parsed = match direct {
        Some(n) => Some(n),
        None => core
            .receive_body(&claim.record.media_type, claim.record.body.clone(), None)
            .await
            .ok()
            .and_then(|r| Notification::from_value(r.json).ok()),
    };
    let result = match parsed {
        None => Err(HandlerError::permanent(
            "the stored body can no longer be read as a notification",
        )),
        Some(n) => run_pipeline(core, &claim.record, &n).await.map(|()| n),
    };
    match result {
        Ok(_) => true,
        Err(err) => {
            let failure = if err.permanent {
                Failure::permanent(&err.message)
            } else {
                Failure::transient(&err.message)
            };
            match core.store().fail(claim, failure).await {
                Ok(state @ (State::Failed | State::Dead)) => {
                    if let Some(outcome) = failed_as(state) {
                        ended(core, &claim.record, outcome);
                    }
                    tracing::warn!(key, error = %err.message, "processing failed for good");
                    if let Some(refusal) = err.refusal {
                        tell_sender(core, &claim.record, refusal).await;
                    }
                }
                Ok(_) => {
                    tracing::info!(key, error = %err.message, "processing failed; retry scheduled")
                }
                Err(e) => tracing::warn!(key, error = %e, "could not record the failure"),
            }
            false
        }
    }
}

async fn run_pipeline(core: &Core, record: &Record, n: &Notification) -> Result<(), HandlerError> {
    for handler in core.pipeline().for_pattern(n.pattern()) {
        handler
            .handle(core, record, n)
            .await
            .map_err(|e| HandlerError {
                message: format!("{}: {}", handler.name(), e.message),
                ..e
            })?;
    }
    Ok(())
}

/// As the specification recommends, a notification refused for its own fault is answered
/// with an Unprocessable Notification, when the sender gave an inbox. Its summary is the
/// refusal's fixed sentence: nothing of ours (URLs, messages, responses) goes out.
async fn tell_sender(core: &Core, record: &Record, refusal: Refusal) {
    let Ok(received) = Notification::from_slice_with(
        &record.body,
        coar_model::Limits {
            max_bytes: usize::MAX,
        },
    ) else {
        return;
    };
    let flag = match received.flag_as_unprocessable(refusal.summary()) {
        None => return, // never answer a flag with a flag
        Some(Ok(flag)) => flag,
        Some(Err(e)) => {
            tracing::info!(key = record.key, error = %e, "no Unprocessable Notification sent: the sender gave no way back");
            return;
        }
    };
    if let Err(e) = core.queue_outbound(&flag).await {
        tracing::warn!(key = record.key, error = %e, "could not queue the Unprocessable Notification");
    }
}

/// Delivers a claimed notification: what the peer answered when it accepted it (the
/// caller marks it processed), `None` when the failure has been recorded.
async fn deliver(core: &Arc<Core>, claim: &Claim) -> Option<Delivery> {
    let key = claim.record.key;
    let n = match Notification::from_slice_with(
        &claim.record.body,
        coar_model::Limits {
            max_bytes: usize::MAX,
        },
    ) {
        Ok(n) => n,
        Err(e) => {
            let _ = core
                .store()
                .fail(
                    claim,
                    Failure::permanent(format!("stored body unreadable: {e}")),
                )
                .await;
            return None;
        }
    };
    let started = std::time::Instant::now();
    let result = core.client().deliver(&n).await;
    let took = started.elapsed();
    match result {
        Ok(receipt) => {
            core.metrics().delivery("delivered", took);
            Some(Delivery {
                status: receipt.status,
                excerpt: Some(receipt.location.unwrap_or(receipt.body)),
            })
        }
        Err(err) => {
            let delivery = match &err {
                coar_client::ClientError::Status(s) => Some(Delivery {
                    status: s.status,
                    excerpt: Some(s.excerpt.clone()),
                }),
                _ => None,
            };
            let failure = Failure {
                message: err.to_string(),
                permanent: !err.is_retryable(),
                not_before: jittered(core, claim.attempt, err.retry_after()),
                delivery,
            };
            match core.store().fail(claim, failure).await {
                Ok(state) => {
                    tracing::info!(key, %state, error = %err, "delivery failed");
                    let outcome = failed_as(state);
                    core.metrics().delivery(outcome.unwrap_or("retry"), took);
                    if let Some(outcome) = outcome {
                        ended(core, &claim.record, outcome);
                        crate::pipeline::builtin::outbound_event(core, "dead", &claim.record);
                    }
                }
                Err(e) => tracing::warn!(key, error = %e, "could not record the failed delivery"),
            }
            None
        }
    }
}

/// Now plus `d`, or `None` if that cannot be represented (no panic on a huge `d`).
fn chrono_after(d: Duration) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| chrono::Utc::now().checked_add_signed(d))
}

/// When to try a delivery again: the queue's exponential backoff plus up to half of it
/// again at random (so that many deliveries that failed together do not retry together),
/// and never before the peer's `Retry-After`, which is cut to
/// [`ClientConfig::max_retry_after`](coar_client::ClientConfig::max_retry_after) first.
fn jittered(
    core: &Core,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let backoff = core.store().policy().delay(attempt);
    let jitter = core.client().config().retry_jitter(backoff / 2);
    let peer = retry_after
        .unwrap_or_default()
        .min(core.client().config().max_retry_after);
    chrono_after(backoff.saturating_add(jitter).max(peer))
}
