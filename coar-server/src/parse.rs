//! Reading peers' bodies off the async runtime: a bounded number at a time, each within the
//! receiver's budgets, so that one expensive body cannot hold a runtime thread (and with it
//! every request and `/healthz`) and many cannot hold them all.

use std::{sync::Arc, time::Duration};

use tokio::sync::Semaphore;

/// Bodies up to this size, in a JSON media type, are read on the runtime thread: they cost
/// microseconds, less than the hand-off to another thread.
pub const INLINE_JSON_BYTES: usize = 8 * 1024;

/// How long a body waits for a parsing slot before the sender is asked to come back.
const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// A bounded pool of blocking threads for parsing.
#[derive(Debug, Clone)]
pub struct ParsePool {
    slots: Arc<Semaphore>,
    size: usize,
}

/// Every slot stayed busy for the whole wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("all {0} parsing slots are busy")]
pub struct Busy(pub usize);

impl ParsePool {
    /// A pool of `size` slots (at least 1).
    pub fn new(size: usize) -> ParsePool {
        let size = size.max(1);
        ParsePool {
            slots: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// One slot per core, the default.
    pub fn per_core() -> ParsePool {
        ParsePool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `work` on a blocking thread once a slot is free (waiting at most a few
    /// seconds). A panic in `work` is resumed here, where the request's panic handler
    /// turns it into a 500.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permit = tokio::time::timeout(QUEUE_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Busy(self.size))?
            .map_err(|_| Busy(self.size))?;
        let handle = tokio::task::spawn_blocking(move || {
            let _permit = permit; // held until the work ends, even if the request is gone
            work()
        });
        match handle.await {
            Ok(value) => Ok(value),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Busy(self.size)), // the runtime is shutting down
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_more_than_its_size_run_at_once() {
        let pool = ParsePool::new(2);
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, SeqCst);
                })
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
