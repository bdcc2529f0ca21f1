//! Builders for every 1.0.1 pattern, and the replies a received notification calls for.
//!
//! A builder starts from what its pattern requires and [`Builder::build`] validates the
//! result: it returns a pattern value only when the payload has no validation error, so a
//! builder cannot produce an invalid notification. Ids default to a fresh `urn:uuid` (v4).

use std::{fmt, marker::PhantomData};

use serde_json::{Map, Value, json};

use crate::{
    Accept, Activity, AnnounceEndorsement, AnnounceRelationship, AnnounceReview,
    AnnounceServiceResult, Pattern, Reject, Report, RequestEndorsement, RequestReview,
    TentativeAccept, TentativeReject, UndoOffer, Unprocessable, node::Node,
    vocab::STANDARD_CONTEXT,
};

/// A service (`origin` or `target`): an HTTP id, its LDN inbox, optionally a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service's HTTP URI.
    pub id: String,
    /// The service's LDN inbox URL (required on `target`, recommended on `origin`).
    pub inbox: Option<String>,
    /// A human-readable name.
    pub name: Option<String>,
}

impl Service {
    /// A service with an inbox.
    pub fn new(id: impl Into<String>, inbox: impl Into<String>) -> Service {
        Service {
            id: id.into(),
            inbox: Some(inbox.into()),
            name: None,
        }
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Service {
        self.name = Some(name.into());
        self
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        if let Some(inbox) = &self.inbox {
            m.insert("inbox".into(), json!(inbox));
        }
        if let Some(name) = &self.name {
            m.insert("name".into(), json!(name));
        }
        m.insert("type".into(), json!("Service"));
        Value::Object(m)
    }
}

/// The kinds of actor COAR Notify allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorType {
    /// `Application`.
    Application,
    /// `Group`.
    Group,
    /// `Organization`.
    Organization,
    /// `Person`.
    Person,
    /// `Service`.
    Service,
}

impl ActorType {
    /// The ActivityStreams type name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::Application => "Application",
            ActorType::Group => "Group",
            ActorType::Organization => "Organization",
            ActorType::Person => "Person",
            ActorType::Service => "Service",
        }
    }
}

/// The party responsible for an activity (`actor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Any URI (HTTP recommended; `mailto:` is allowed).
    pub id: String,
    /// What kind of party.
    pub kind: ActorType,
    /// A display name.
    pub name: Option<String>,
}

impl Actor {
    /// An actor without a name.
    pub fn new(id: impl Into<String>, kind: ActorType) -> Actor {
        Actor {
            id: id.into(),
            kind,
            name: None,
        }
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Actor {
        self.name = Some(name.into());
        self
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        if let Some(name) = &self.name {
            m.insert("name".into(), json!(name));
        }
        m.insert("type".into(), json!(self.kind.as_str()));
        Value::Object(m)
    }
}

/// The content file of a resource (`ietf:item`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// HTTP URI of the file.
    pub id: String,
    /// Types: an ActivityStreams type, and a schema.org one.
    pub types: Vec<String>,
    /// Its MIME type, e.g. `application/pdf`.
    pub media_type: String,
}

impl Item {
    /// A scholarly article file: types `Article` and `sorg:ScholarlyArticle`.
    pub fn new(id: impl Into<String>, media_type: impl Into<String>) -> Item {
        Item {
            id: id.into(),
            types: vec!["Article".into(), "sorg:ScholarlyArticle".into()],
            media_type: media_type.into(),
        }
    }

    /// Replaces the types.
    pub fn types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Item {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    fn to_value(&self) -> Value {
        json!({"id": self.id, "mediaType": self.media_type, "type": self.types})
    }
}

/// A resource: the `object` of a request, the `object` or `context` of an announcement.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Its URI (an HTTP landing page for preprints).
    pub id: String,
    /// Its types; empty means none written.
    pub types: Vec<String>,
    /// A persistent identifier (`ietf:cite-as`).
    pub cite_as: Option<String>,
    /// Its content file (`ietf:item`).
    pub item: Option<Item>,
    /// Further properties, written as given.
    pub extra: Map<String, Value>,
}

impl Resource {
    /// A resource with an id and types.
    pub fn new<S: Into<String>>(
        id: impl Into<String>,
        types: impl IntoIterator<Item = S>,
    ) -> Resource {
        Resource {
            id: id.into(),
            types: types.into_iter().map(Into::into).collect(),
            cite_as: None,
            item: None,
            extra: Map::new(),
        }
    }

    /// A landing page (`Page`, `sorg:AboutPage`), what requests offer and announcements
    /// are about.
    pub fn landing_page(id: impl Into<String>) -> Resource {
        Resource::new(id, ["Page", "sorg:AboutPage"])
    }

    /// Sets `ietf:cite-as`.
    pub fn cite_as(mut self, pid: impl Into<String>) -> Resource {
        self.cite_as = Some(pid.into());
        self
    }

    /// Sets `ietf:item`.
    pub fn item(mut self, item: Item) -> Resource {
        self.item = Some(item);
        self
    }

    /// Adds a property.
    pub fn property(mut self, key: impl Into<String>, value: Value) -> Resource {
        self.extra.insert(key.into(), value);
        self
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        if let Some(c) = &self.cite_as {
            m.insert("ietf:cite-as".into(), json!(c));
        }
        if let Some(i) = &self.item {
            m.insert("ietf:item".into(), i.to_value());
        }
        match self.types.as_slice() {
            [] => {}
            [one] => {
                m.insert("type".into(), json!(one));
            }
            many => {
                m.insert("type".into(), json!(many));
            }
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// The relationship an Announce Relationship declares: `subject` `relationship` `object`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    /// The relationship's own URI.
    pub id: String,
    /// `as:subject`: the local resource.
    pub subject: String,
    /// `as:relationship`: the relation, e.g. `http://purl.org/vocab/frbr/core#supplement`.
    pub relationship: String,
    /// `as:object`: the remote resource; the notification's `context.id` must equal it.
    pub object: String,
}

impl Relationship {
    /// A relationship with a fresh `urn:uuid` id.
    pub fn new(
        subject: impl Into<String>,
        relationship: impl Into<String>,
        object: impl Into<String>,
    ) -> Relationship {
        Relationship {
            id: new_id(),
            subject: subject.into(),
            relationship: relationship.into(),
            object: object.into(),
        }
    }

    fn to_value(&self) -> Value {
        json!({
            "as:object": self.object,
            "as:relationship": self.relationship,
            "as:subject": self.subject,
            "id": self.id,
            "type": "Relationship",
        })
    }
}

/// A fresh activity id: `urn:uuid:` and a random (v4) UUID.
pub fn new_id() -> String {
    format!("urn:uuid:{}", uuid::Uuid::new_v4())
}

/// The payload could not be built because it would not be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BuildError {
    /// Every problem found, errors and warnings.
    pub report: Report,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the notification would be invalid:")?;
        for p in self.report.errors() {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The pattern types a [`Builder`] can produce.
pub trait Buildable: sealed::Sealed + Sized {
    /// The pattern built.
    const PATTERN: Pattern;
    #[doc(hidden)]
    fn from_valid(activity: Activity) -> Self;
}

macro_rules! buildable {
    ($($name:ident),*) => {$(
        impl sealed::Sealed for $name {}
        impl Buildable for $name {
            const PATTERN: Pattern = Pattern::$name;
            fn from_valid(activity: Activity) -> Self {
                $name(activity)
            }
        }
    )*};
}
buildable!(
    RequestReview,
    RequestEndorsement,
    Accept,
    Reject,
    TentativeAccept,
    TentativeReject,
    AnnounceReview,
    AnnounceEndorsement,
    AnnounceServiceResult,
    AnnounceRelationship,
    UndoOffer,
    Unprocessable
);

/// Builds one notification of pattern `P`. Start from the pattern type's `builder`
/// function, or from a reply helper such as [`Offer::accept`](crate::Offer::accept).
#[derive(Debug, Clone)]
pub struct Builder<P> {
    id: Option<String>,
    actor: Option<Value>,
    origin: Value,
    target: Value,
    object: Value,
    context: Option<Value>,
    in_reply_to: Option<String>,
    summary: Option<String>,
    extra: Map<String, Value>,
    _pattern: PhantomData<P>,
}

impl<P: Buildable> Builder<P> {
    pub(crate) fn new(origin: Value, target: Value, object: Value) -> Builder<P> {
        Builder {
            id: None,
            actor: None,
            origin,
            target,
            object,
            context: None,
            in_reply_to: None,
            summary: None,
            extra: Map::new(),
            _pattern: PhantomData,
        }
    }

    /// Sets the activity id (default: a fresh `urn:uuid`).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the actor.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = Some(actor.to_value());
        self
    }

    /// Sets `summary`.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// Sets `inReplyTo`.
    pub fn in_reply_to(mut self, id: impl Into<String>) -> Self {
        self.in_reply_to = Some(id.into());
        self
    }

    /// Sets `context`: the resource on the target the activity is about.
    pub fn context(mut self, context: Resource) -> Self {
        self.context = Some(context.to_value());
        self
    }

    /// Adds any other property (kept as given, after the standard ones).
    pub fn property(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// Assembles and validates the notification; returns it only when it has no error.
    pub fn build(self) -> Result<P, BuildError> {
        let mut m = Map::new();
        m.insert("@context".into(), json!(STANDARD_CONTEXT));
        m.insert("id".into(), json!(self.id.unwrap_or_else(new_id)));
        m.insert("type".into(), P::PATTERN.type_value());
        if let Some(actor) = self.actor {
            m.insert("actor".into(), actor);
        }
        m.insert("origin".into(), self.origin);
        m.insert("target".into(), self.target);
        m.insert("object".into(), self.object);
        if let Some(context) = self.context {
            m.insert("context".into(), context);
        }
        if let Some(irt) = self.in_reply_to {
            m.insert("inReplyTo".into(), json!(irt));
        }
        if let Some(summary) = self.summary {
            m.insert("summary".into(), json!(summary));
        }
        for (k, v) in self.extra {
            m.entry(k).or_insert(v);
        }
        let activity = Activity::from_map(m);
        let report = crate::validate::validate(&activity, Some(P::PATTERN));
        if report.is_valid() {
            Ok(P::from_valid(activity))
        } else {
            Err(BuildError { report })
        }
    }
}

impl RequestReview {
    /// Asks `target` to review `object` (a landing page with its `ietf:item`).
    pub fn builder(origin: Service, target: Service, object: Resource) -> Builder<RequestReview> {
        Builder::new(origin.to_value(), target.to_value(), object.to_value())
    }
}

impl RequestEndorsement {
    /// Asks `target` to endorse `object` (a landing page with its `ietf:item`).
    pub fn builder(
        origin: Service,
        target: Service,
        object: Resource,
    ) -> Builder<RequestEndorsement> {
        Builder::new(origin.to_value(), target.to_value(), object.to_value())
    }
}

macro_rules! announce_builder {
    ($($name:ident: $what:literal),*) => {$(
        impl $name {
            #[doc = concat!("Announces ", $what, " `object` about `context`, a resource on the target.")]
            pub fn builder(origin: Service, target: Service, object: Resource, context: Resource) -> Builder<$name> {
                Builder::new(origin.to_value(), target.to_value(), object.to_value()).context(context)
            }
        }
    )*};
}
announce_builder!(
    AnnounceReview: "the review",
    AnnounceEndorsement: "the endorsement",
    AnnounceServiceResult: "the service result"
);

impl AnnounceRelationship {
    /// Announces `relationship`; `context` is the related resource (its id must equal the
    /// relationship's object).
    pub fn builder(
        origin: Service,
        target: Service,
        relationship: Relationship,
        context: Resource,
    ) -> Builder<AnnounceRelationship> {
        Builder::new(
            origin.to_value(),
            target.to_value(),
            relationship.to_value(),
        )
        .context(context)
    }
}

/// The embedded form of an Offer: the whole activity without `@context`.
pub(crate) fn embedded(activity: &Activity) -> Value {
    let mut m = activity.as_map().clone();
    m.shift_remove("@context");
    Value::Object(m)
}

macro_rules! acknowledgement_builder {
    ($($name:ident: $what:literal),*) => {$(
        impl $name {
            #[doc = concat!("Answers `offer` with ", $what, ": `object` is the Offer, `inReplyTo` its id.")]
            pub fn builder(origin: Service, target: Service, offer: &Activity) -> Builder<$name> {
                let b = Builder::new(origin.to_value(), target.to_value(), embedded(offer));
                match offer.id() {
                    Some(id) => b.in_reply_to(id),
                    None => b,
                }
            }
        }
    )*};
}
acknowledgement_builder!(
    Accept: "an Accept",
    Reject: "a Reject",
    TentativeAccept: "a Tentative Accept",
    TentativeReject: "a Tentative Reject",
    UndoOffer: "an Undo (retraction)"
);

impl Unprocessable {
    /// Tells `target` that the notification `flagged_id` could not be processed, and why.
    pub fn builder(
        origin: Service,
        target: Service,
        flagged_id: impl Into<String>,
        reason: impl Into<String>,
    ) -> Builder<Unprocessable> {
        let id = flagged_id.into();
        Builder::new(origin.to_value(), target.to_value(), json!({ "id": id }))
            .in_reply_to(id)
            .summary(reason)
    }
}

pub(crate) fn node_value(node: Option<Node<'_>>) -> Value {
    node.map_or(Value::Null, |n| Value::Object(n.as_map().clone()))
}
