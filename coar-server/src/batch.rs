//! Group commit for the inbox: requests hand their notification to a writer, which stores
//! whatever has accumulated in one transaction (one durable commit for all) and then
//! answers each request. A 2xx still leaves only after its notification is committed.

use std::sync::Arc;

use coar_model::Notification;
use coar_store::{Backend, Inserted, NewNotification, State, Store, StoreError};
use tokio::sync::{Mutex, mpsc, oneshot};

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

struct Job {
    pending: Pending,
    reply: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// The handle requests use; the writers stop when it is dropped.
#[derive(Debug, Clone)]
pub struct Inserter {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
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
        if store.backend() == Backend::Sqlite {
            let writer = write_loop(store.clone(), rx.clone());
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
                tokio::spawn(write_loop(store, rx));
            }
        } else {
            for _ in 0..4 {
                tokio::spawn(write_loop(store.clone(), rx.clone()));
            }
        }
        Inserter { tx }
    }

    /// Stores one notification; returns once it is committed.
    pub async fn insert(&self, pending: Pending) -> Result<Inserted, StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("the inbox writer has stopped".into());
        self.tx
            .send(Job { pending, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Takes whatever has accumulated (at most [`MAX_BATCH`]), stores it in one transaction and
/// answers each request, until every [`Inserter`] is dropped.
async fn write_loop(store: Store, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => jobs.push(job),
                None => return,
            }
            // Whatever else is waiting joins this commit.
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let batch: Vec<NewNotification<'_>> = jobs
            .iter()
            .map(|j| NewNotification {
                remote_addr: j.pending.remote_addr.clone(),
                bearer_sha256: j.pending.bearer_sha256.clone(),
                signature_key: j.pending.signature_key.clone(),
                signature_hash: j.pending.signature_hash.clone(),
                service: j.pending.service,
                state: j.pending.state,
                ..NewNotification::inbound(
                    &j.pending.notification,
                    &j.pending.body,
                    &j.pending.media_type,
                )
            })
            .collect();
        let results = store.insert_many(&batch).await;
        drop(batch);
        for (job, result) in jobs.into_iter().zip(results) {
            let _ = job.reply.send(result);
        }
    }
}
