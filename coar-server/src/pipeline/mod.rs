//! The inbound pipeline: the [`Handler`] trait embedding applications implement (the
//! reference library's "service binding", made durable), how handlers fail, and the ordered
//! handlers per pattern. [`builtin`] has the handlers the configuration file can name.
//!
//! Nothing here knows HTTP: a handler gets the engine's [`Core`], not a request.

pub mod builtin;

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};

use coar_model::{Notification, Pattern};
use coar_store::Record;

use crate::Core;

/// Why a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// What went wrong, for the admin: recorded with the attempt, never sent to a peer.
    pub message: String,
    /// Retrying cannot help: the notification fails at once.
    pub permanent: bool,
    /// `Some` when the sender's notification is at fault: it is then answered with an
    /// Unprocessable Notification (when it gave an inbox) whose summary is the refusal's
    /// fixed sentence. `None` for our own failures (a webhook down, a database error),
    /// which stay local: retried with backoff, then dead for the admin to see.
    pub refusal: Option<Refusal>,
}

/// How a sender's notification is at fault, each with a fixed, safe sentence for the
/// Unprocessable Notification: nothing internal (URLs, responses, messages) is ever echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It breaks a rule of COAR Notify, or of this service, for its pattern.
    Invalid,
    /// It refers to a resource this service does not know.
    UnknownObject,
    /// This service's policy refuses it.
    Policy,
}

impl Refusal {
    /// The summary sent to the sender.
    pub fn summary(self) -> &'static str {
        match self {
            Refusal::Invalid => {
                "The notification could not be processed: it does not meet the requirements for its pattern."
            }
            Refusal::UnknownObject => {
                "The notification could not be processed: it refers to a resource this service does not know."
            }
            Refusal::Policy => {
                "The notification could not be processed: this service's policy does not accept it."
            }
        }
    }
}

impl HandlerError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> HandlerError {
        HandlerError {
            message: message.into(),
            permanent: false,
            refusal: None,
        }
    }

    /// A failure of ours that no retry will fix: the notification fails, and the sender is
    /// not told (it did nothing wrong).
    pub fn permanent(message: impl Into<String>) -> HandlerError {
        HandlerError {
            message: message.into(),
            permanent: true,
            refusal: None,
        }
    }

    /// The sender's notification is at fault: it fails for good, and the sender is told
    /// with `refusal`'s fixed sentence (`message` stays here, for the admin).
    pub fn refused(refusal: Refusal, message: impl Into<String>) -> HandlerError {
        HandlerError {
            message: message.into(),
            permanent: true,
            refusal: Some(refusal),
        }
    }
}

/// The future a handler returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'a>>;

/// One step of the inbound pipeline (the reference library's "service binding", made
/// durable): embedding applications implement it to act on notifications.
pub trait Handler: Send + Sync {
    /// A name for logs and attempts.
    fn name(&self) -> &str;
    /// Acts on one notification. Called at least once per notification; must be idempotent.
    fn handle<'a>(
        &'a self,
        core: &'a Core,
        record: &'a Record,
        notification: &'a Notification,
    ) -> HandlerFuture<'a>;
}

/// The ordered handlers per pattern (`None`: activities that name no pattern).
#[derive(Clone, Default)]
pub struct Pipeline {
    handlers: HashMap<Option<Pattern>, Vec<Arc<dyn Handler>>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .handlers
            .iter()
            .map(|(p, hs)| {
                format!(
                    "{}: {}",
                    p.map_or("unrecognised", |p| p.slug()),
                    hs.iter().map(|h| h.name()).collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        f.debug_struct("Pipeline")
            .field("handlers", &names)
            .finish()
    }
}

impl Pipeline {
    /// Appends `handler` to the pipeline of each pattern given.
    pub fn add(mut self, patterns: &[Option<Pattern>], handler: Arc<dyn Handler>) -> Pipeline {
        for p in patterns {
            self.handlers.entry(*p).or_default().push(handler.clone());
        }
        self
    }

    /// Appends `handler` for every pattern and for unrecognised activities.
    pub fn add_everywhere(self, handler: Arc<dyn Handler>) -> Pipeline {
        let all: Vec<Option<Pattern>> = Pattern::ALL.into_iter().map(Some).chain([None]).collect();
        self.add(&all, handler)
    }

    pub(crate) fn for_pattern(&self, pattern: Option<Pattern>) -> &[Arc<dyn Handler>] {
        self.handlers.get(&pattern).map_or(&[], Vec::as_slice)
    }
}
