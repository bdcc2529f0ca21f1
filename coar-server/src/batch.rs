//! Group commit for the inbox: requests hand their notification to a writer, which stores
//! whatever has accumulated in one transaction (one durable commit for all) and then
//! answers each request. A 2xx still leaves only after its notification is committed.
//!
//! The same transaction records the workers' completions that have accumulated, and claims
//! for this process's workers (the [`HandOff`]) the notifications it stores, so that with
//! workers on a notification costs one commit shared with the inbox (and a share of one
//! more, its completion's), not three of its own.

use std::sync::Arc;

use coar_model::Notification;
use std::{
    collections::VecDeque,
    sync::atomic::{AtomicUsize, Ordering},
};

use coar_store::{
    Backend, Claim, Delivery, HandOver, Inserted, NewNotification, State, Store, StoreError,
};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

/// The most notifications committed together.
const MAX_BATCH: usize = 256;

/// A notification to store, owned (it crosses to the writer task).
#[derive(Debug, Clone)]
pub struct Pending {
    /// The parsed notification.
    pub notification: Notification,
    /// The body as received.
    pub body: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// The sender's address.
    pub remote_addr: Option<String>,
    /// SHA-256 of the bearer token the sender presented.
    pub bearer_sha256: Option<String>,
    /// Thumbprint of the key the sender's signature verified with.
    pub signature_key: Option<String>,
    /// SHA-256 of that signature.
    pub signature_hash: Option<String>,
    /// The service it is attributed to.
    pub service: Option<i64>,
    /// Queued or quarantined.
    pub state: State,
}

/// What a writer is handed: a notification to store, or a worker's completions to record.
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every job is an insert: boxing it would cost an allocation a request and save nothing"
)]
enum Job {
    Insert(Pending, oneshot::Sender<Result<Inserted, StoreError>>),
    Complete(
        Vec<(Claim, Option<Delivery>)>,
        oneshot::Sender<Vec<Result<(), StoreError>>>,
    ),
}

/// The handle requests and workers use; the writers stop when it is dropped.
#[derive(Debug, Clone)]
pub struct Inserter {
    tx: mpsc::Sender<Job>,
    hand_off: Arc<HandOff>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

/// Inbound notifications the writers claimed, as they stored them, for this process's
/// workers: a worker takes them from here instead of claiming from the database, so a
/// notification costs one write fewer (no claim of its own: on SQLite one turn of the one
/// writer fewer per batch). While no worker runs here, `capacity` is 0 and nothing is
/// claimed; the claims are the store's (a lease, an attempt), so one this process never
/// finishes is claimed again by any worker once its lease ends.
#[derive(Debug, Default)]
pub struct HandOff {
    /// Claimed and not yet taken by a worker.
    waiting: std::sync::Mutex<VecDeque<Claim>>,
    /// Handed over and not yet finished: waiting, or in a worker's hands.
    outstanding: AtomicUsize,
    /// The most outstanding at once; 0 while no worker takes them.
    capacity: AtomicUsize,
    /// Woken when claims arrive.
    arrived: Notify,
}

impl HandOff {
    /// Reserves the room the workers have now (counted as outstanding at once, so that
    /// writers committing side by side, as on PostgreSQL, do not each claim all of it).
    fn reserve(&self) -> usize {
        let capacity = self.capacity.load(Ordering::Acquire);
        let mut reserved = 0;
        let _ = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                reserved = capacity.saturating_sub(o);
                Some(o + reserved)
            });
        reserved
    }

    /// Hands over what a writer claimed with `reserved` room; the unused room is freed.
    fn give(&self, claims: Vec<Claim>, reserved: usize) {
        self.finished(reserved.saturating_sub(claims.len()));
        if claims.is_empty() {
            return;
        }
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(claims);
        self.arrived.notify_waiters();
    }

    /// Workers that take up to `capacity` more claims have started.
    pub(crate) fn open(&self, capacity: usize) {
        self.capacity.fetch_add(capacity, Ordering::AcqRel);
    }

    /// Workers that took up to `capacity` have stopped. When none are left, returns the
    /// claims no worker took, to hand back to the queue. (A batch being written meanwhile
    /// may still claim a few more; nobody takes those, and they are claimed again when
    /// their lease ends.)
    pub(crate) fn close(&self, capacity: usize) -> Vec<Claim> {
        let before = self
            .capacity
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(capacity))
            })
            .unwrap_or(0);
        if before > capacity {
            return Vec::new();
        }
        let left: Vec<Claim> = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        self.finished(left.len());
        left
    }

    /// Takes up to `max` claims, oldest first.
    pub(crate) fn take(&self, max: usize) -> Vec<Claim> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let n = waiting.len().min(max);
        waiting.drain(..n).collect()
    }

    /// A worker is done with `n` taken claims (completed, failed or handed back).
    pub(crate) fn finished(&self, n: usize) {
        let _ = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                Some(o.saturating_sub(n))
            });
    }

    /// Waits until claims may have arrived (or returns at once if some wait).
    pub(crate) async fn arrival(&self) {
        let notified = self.arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            return;
        }
        notified.await;
    }
}

impl Inserter {
    /// Starts the writers on `store`.
    ///
    /// - SQLite has one writer anyway: one, on a thread of its own. As a task among the
    ///   request handlers it waited behind them for a worker thread after each step of its
    ///   transaction (`cargo xtask bench`: 12 % more notifications a second on a thread).
    /// - PostgreSQL and MariaDB commit in parallel: four tasks on the runtime, which also
    ///   drives their connections' sockets.
    pub fn spawn(store: Store) -> Inserter {
        let (tx, rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
        let rx = Arc::new(Mutex::new(rx));
        let hand_off = Arc::new(HandOff::default());
        if store.backend() == Backend::Sqlite {
            let writer = write_loop(store.clone(), rx.clone(), hand_off.clone());
            let thread = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|runtime| {
                    std::thread::Builder::new()
                        .name("coar-inbox-writer".into())
                        .spawn(move || runtime.block_on(writer))
                });
            if let Err(e) = thread {
                // Cannot happen short of the process's thread limit; the writer then runs
                // among the tasks, slower but correct.
                tracing::warn!(error = %e, "no thread for the inbox writer; it runs as a task");
                tokio::spawn(write_loop(store, rx, hand_off.clone()));
            }
        } else {
            for _ in 0..4 {
                tokio::spawn(write_loop(store.clone(), rx.clone(), hand_off.clone()));
            }
        }
        Inserter { tx, hand_off }
    }

    /// Where this process's workers take what the writers claimed for them.
    pub(crate) fn hand_off(&self) -> &HandOff {
        &self.hand_off
    }

    /// Stores one notification; returns once it is committed.
    pub async fn insert(&self, pending: Pending) -> Result<Inserted, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job::Insert(pending, reply))
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Records a worker's completions in the writers' next transaction (one commit with
    /// whatever the inbox stores meanwhile): one result per claim, in order, as
    /// [`Store::complete_many`] gives them; `None` when the writers have stopped (the
    /// caller records them itself).
    pub async fn complete(
        &self,
        done: Vec<(Claim, Option<Delivery>)>,
    ) -> Option<Vec<Result<(), StoreError>>> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job::Complete(done, reply)).await.ok()?;
        answer.await.ok()
    }
}

fn gone() -> StoreError {
    StoreError::Unavailable("the inbox writer has stopped".into())
}

/// Takes whatever has accumulated (at most [`MAX_BATCH`] notifications, and the completions
/// among them), stores it in one transaction, claiming for this process's workers what
/// they have room for, and answers each request, until every [`Inserter`] is dropped.
async fn write_loop(store: Store, rx: Arc<Mutex<mpsc::Receiver<Job>>>, hand_off: Arc<HandOff>) {
    let worker = format!("worker-{}", std::process::id());
    loop {
        let mut inserts = Vec::new();
        let mut completions = Vec::new();
        {
            let mut rx = rx.lock().await;
            let mut next = rx.recv().await;
            if next.is_none() {
                return;
            }
            // Whatever else is waiting joins this commit.
            while let Some(job) = next {
                match job {
                    Job::Insert(pending, reply) => inserts.push((pending, reply)),
                    Job::Complete(done, reply) => completions.push((done, reply)),
                }
                next = match inserts.len() < MAX_BATCH {
                    true => rx.try_recv().ok(),
                    false => None,
                };
            }
        }
        let batch: Vec<NewNotification<'_>> = inserts
            .iter()
            .map(|(p, _)| NewNotification {
                remote_addr: p.remote_addr.clone(),
                bearer_sha256: p.bearer_sha256.clone(),
                signature_key: p.signature_key.clone(),
                signature_hash: p.signature_hash.clone(),
                service: p.service,
                state: p.state,
                ..NewNotification::inbound(&p.notification, &p.body, &p.media_type)
            })
            .collect();
        let done: Vec<(&Claim, Option<Delivery>)> = completions
            .iter()
            .flat_map(|(done, _)| done.iter().map(|(c, d)| (c, d.clone())))
            .collect();
        let room = hand_off.reserve();
        let hand_over = (room > 0).then_some(HandOver {
            worker: &worker,
            limit: room,
        });
        let written = store.write_batch(&batch, hand_over, &done).await;
        drop((batch, done));
        hand_off.give(written.claims, room);
        for ((_, reply), result) in inserts.into_iter().zip(written.inserted) {
            let _ = reply.send(result);
        }
        let mut completed = written.completed.into_iter();
        for (done, reply) in completions {
            let _ = reply.send(completed.by_ref().take(done.len()).collect());
        }
    }
}
