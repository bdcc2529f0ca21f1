//! The operations on the service registry: register, change, remove, look up, and release
//! quarantined notifications by the evidence they were recorded with.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use crate::{
    Direction, State, Store, StoreError,
    entity::{notification, service},
    model::to_micros,
    services::*,
    sha256_hex,
};

impl Store {
    /// Registers a service. Its id must not be registered already.
    pub async fn add_service(&self, input: &ServiceInput) -> Result<RegisteredService, StoreError> {
        input.check()?;
        let now = to_micros(Utc::now());
        let model = service::ActiveModel {
            id: NotSet,
            name: Set(input.name.trim().to_owned()),
            service_uri: Set(input.id.clone()),
            service_uri_hash: Set(sha256_hex(input.id.as_bytes())),
            inbox_url: Set(input.inbox.clone()),
            enabled: Set(input.enabled),
            inbound_patterns: Set(slugs(&input.inbound_patterns)),
            outbound_patterns: Set(slugs(&input.outbound_patterns)),
            cidrs: Set(serde_json::to_string(&input.cidrs).unwrap_or_else(|_| "[]".into())),
            token_hashes: Set(hashes(input.tokens.as_deref().unwrap_or_default())),
            signature_policy: Set(Some(input.signature_policy.as_str().to_owned())),
            public_keys: Set(keys_json(input.keys.as_deref().unwrap_or_default())),
            key_set_url: Set(input.key_set_url.clone()),
            fetched_keys: Set(None),
            keys_fetched_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let added = model
            .insert(&self.db)
            .await
            .map(RegisteredService::from)
            .map_err(|e| already_registered(e, &input.id));
        self.services.clear();
        added
    }

    /// Replaces a service's settings (tokens only when `input.tokens` is given).
    pub async fn update_service(
        &self,
        key: i64,
        input: &ServiceInput,
    ) -> Result<RegisteredService, StoreError> {
        input.check()?;
        let current = service::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound(key))?;
        let url_changed = current.key_set_url != input.key_set_url;
        let mut model: service::ActiveModel = current.into();
        model.name = Set(input.name.trim().to_owned());
        model.service_uri = Set(input.id.clone());
        model.service_uri_hash = Set(sha256_hex(input.id.as_bytes()));
        model.inbox_url = Set(input.inbox.clone());
        model.enabled = Set(input.enabled);
        model.inbound_patterns = Set(slugs(&input.inbound_patterns));
        model.outbound_patterns = Set(slugs(&input.outbound_patterns));
        model.cidrs = Set(serde_json::to_string(&input.cidrs).unwrap_or_else(|_| "[]".into()));
        if let Some(tokens) = &input.tokens {
            model.token_hashes = Set(hashes(tokens));
        }
        model.signature_policy = Set(Some(input.signature_policy.as_str().to_owned()));
        if let Some(keys) = &input.keys {
            model.public_keys = Set(keys_json(keys));
        }
        if url_changed {
            model.key_set_url = Set(input.key_set_url.clone());
            model.fetched_keys = Set(None);
            model.keys_fetched_at = Set(None);
        }
        model.updated_at = Set(to_micros(Utc::now()));
        let updated = model
            .update(&self.db)
            .await
            .map(RegisteredService::from)
            .map_err(|e| already_registered(e, &input.id));
        self.services.clear();
        updated
    }

    /// Enables or disables a service.
    pub async fn set_service_enabled(
        &self,
        key: i64,
        enabled: bool,
    ) -> Result<RegisteredService, StoreError> {
        let current = service::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound(key))?;
        let mut model: service::ActiveModel = current.into();
        model.enabled = Set(enabled);
        model.updated_at = Set(to_micros(Utc::now()));
        let updated = model.update(&self.db).await;
        self.services.clear();
        Ok(updated?.into())
    }

    /// Records the keys just fetched from the service's key-set URL (the first that fit in
    /// [`MAX_SERVICE_KEYS`] and [`MAX_KEYS_BYTES`]), unless the URL changed meanwhile
    /// (`from_url` is the one they were fetched from). The service as it is now.
    pub async fn set_fetched_keys(
        &self,
        key: i64,
        from_url: &str,
        keys: &[ServiceKey],
    ) -> Result<RegisteredService, StoreError> {
        use sea_orm::sea_query::Expr;
        let keys = keys_within_limits(keys);
        let now = to_micros(Utc::now());
        service::Entity::update_many()
            .col_expr(service::Column::FetchedKeys, Expr::value(keys_json(keys)))
            .col_expr(service::Column::KeysFetchedAt, Expr::value(now))
            .filter(service::Column::Id.eq(key))
            .filter(service::Column::KeySetUrl.eq(from_url))
            .exec(&self.db)
            .await?;
        self.services.clear();
        self.service(key).await?.ok_or(StoreError::NotFound(key))
    }

    /// Removes a service; false when there was none.
    pub async fn remove_service(&self, key: i64) -> Result<bool, StoreError> {
        let removed = service::Entity::delete_by_id(key).exec(&self.db).await;
        self.services.clear();
        Ok(removed?.rows_affected == 1)
    }

    /// One service by key.
    pub async fn service(&self, key: i64) -> Result<Option<RegisteredService>, StoreError> {
        Ok(service::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .map(RegisteredService::from))
    }

    /// The service registered under this id URI. Answered from memory for up to
    /// [`StoreConfig::service_cache_ttl`](crate::StoreConfig::service_cache_ttl) (unknown ids too),
    /// since the inbox asks on every request.
    pub async fn service_by_id(&self, id: &str) -> Result<Option<RegisteredService>, StoreError> {
        let hash = sha256_hex(id.as_bytes());
        let generation = match self.services.get(&hash) {
            Ok(cached) => return Ok(cached),
            Err(generation) => generation,
        };
        let service = service::Entity::find()
            .filter(service::Column::ServiceUriHash.eq(hash.clone()))
            .one(&self.db)
            .await?
            .map(RegisteredService::from);
        self.services.put(hash, service.clone(), generation);
        Ok(service)
    }

    /// The enabled service `n` comes from: the one registered under its `origin.id`, if it
    /// vouches for `n` ([`RegisteredService::vouches_for`]) on the sender's `evidence`. `Ok(None)`
    /// means the sender is untrusted: no origin, no service under it, or one that does not
    /// vouch (the caller may log the [`Attribution`]). The same rule, on the same evidence
    /// (stored with the notification), decides again when quarantine is released.
    pub async fn attribute(
        &self,
        n: &coar_model::Notification,
        evidence: &Evidence<'_>,
    ) -> Result<Attribution, StoreError> {
        let Some(origin) = n.origin().and_then(|o| o.id()) else {
            return Ok(Attribution::NoOrigin);
        };
        let service = self.service_by_id(origin).await?;
        Ok(Attribution::of(n, service, evidence))
    }

    /// The senders of quarantined notifications that are not registered, by id, with every
    /// (claimed inbox, address) they came with: one grouped query over the quarantine,
    /// however large.
    pub async fn unknown_senders(&self) -> Result<Vec<UnknownSender>, StoreError> {
        use notification::Column as C;
        let groups: Vec<SightingRow> = notification::Entity::find()
            .select_only()
            .column(C::OriginId)
            .column(C::OriginInbox)
            .column(C::RemoteAddr)
            .column_as(C::Id.count(), "n")
            .column_as(C::Id.max(), "latest")
            .filter(C::State.eq(State::Quarantined.as_str()))
            .filter(C::Direction.eq(Direction::Inbound.as_str()))
            .filter(C::OriginId.is_not_null())
            .group_by(C::OriginId)
            .group_by(C::OriginInbox)
            .group_by(C::RemoteAddr)
            .into_tuple()
            .all(&self.db)
            .await?;
        let registered: std::collections::HashSet<String> =
            self.services().await?.into_iter().map(|s| s.id).collect();
        let mut senders: std::collections::BTreeMap<String, UnknownSender> = Default::default();
        for (id, inbox, remote_addr, n, latest) in groups {
            if registered.contains(&id) {
                continue;
            }
            let count = u64::try_from(n).unwrap_or(0);
            let sender = senders.entry(id.clone()).or_insert_with(|| UnknownSender {
                id,
                count: 0,
                latest,
                seen: Vec::new(),
            });
            sender.count += count;
            sender.latest = sender.latest.max(latest);
            sender.seen.push(Sighting {
                inbox,
                remote_addr,
                count,
            });
        }
        Ok(senders
            .into_values()
            .map(|mut s| {
                s.seen
                    .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.inbox.cmp(&b.inbox)));
                s
            })
            .collect())
    }

    /// Releases the quarantined notifications that name `service` as origin and that it
    /// vouches for ([`RegisteredService::vouches_for`], on the evidence each recorded at receipt):
    /// they are queued, attributed to it, in one transaction. The others stay quarantined.
    /// Call it whenever a service is registered, enabled or changed.
    pub async fn release_for(&self, service: &RegisteredService) -> Result<Released, StoreError> {
        use notification::Column as C;
        let mut outcome = Released::default();
        if !service.enabled {
            return Ok(outcome);
        }
        let (_turn, txn) = self.begin_write().await?;
        let rows: Vec<EvidenceRow> = notification::Entity::find()
            .select_only()
            .column(C::Id)
            .column(C::OriginInbox)
            .column(C::Pattern)
            .column(C::RemoteAddr)
            .column(C::BearerSha256)
            .column(C::SignatureKey)
            .filter(C::State.eq(State::Quarantined.as_str()))
            .filter(C::Direction.eq(Direction::Inbound.as_str()))
            .filter(C::Id.in_subquery(crate::notifications::linked(&service.id, &["origin"])))
            .into_tuple()
            .all(&txn)
            .await?;
        let mut vouched = Vec::new();
        for row in &rows {
            match service.vouches_for_row(row) {
                Ok(()) => vouched.push(row.0),
                Err(_) => outcome.kept += 1,
            }
        }
        outcome.released = queue_attributed(&txn, &vouched, service.key).await?;
        txn.commit().await?;
        Ok(outcome)
    }

    /// Releases one quarantined notification, if the service it names as origin vouches for
    /// it on the evidence recorded at receipt. Anyone can claim any origin: an admin's
    /// click is not evidence, so what fails the rule stays quarantined (register the
    /// service, or change its rules, first).
    pub async fn release_one(&self, key: i64) -> Result<Result<(), NotReleased>, StoreError> {
        let Some(row) = notification::Entity::find_by_id(key).one(&self.db).await? else {
            return Err(StoreError::NotFound(key));
        };
        if row.state != State::Quarantined.as_str() {
            return Ok(Err(NotReleased::NotQuarantined));
        }
        let Some(origin) = row.origin_id.as_deref() else {
            return Ok(Err(NotReleased::NoService));
        };
        let Some(service) = self.service_by_id(origin).await? else {
            return Ok(Err(NotReleased::NoService));
        };
        let evidence: EvidenceRow = (
            row.id,
            row.origin_inbox,
            row.pattern,
            row.remote_addr,
            row.bearer_sha256,
            row.signature_key,
        );
        if let Err(why) = service.vouches_for_row(&evidence) {
            return Ok(Err(NotReleased::Untrusted(why)));
        }
        let released = queue_attributed(&self.db, &[key], service.key).await?;
        Ok(if released == 1 {
            Ok(())
        } else {
            Err(NotReleased::NotQuarantined)
        })
    }

    /// How many inbound notifications wait in quarantine from `remote_addr` and naming
    /// `origin` as origin: the figures the quarantine's cap is checked against.
    pub async fn quarantined_from(
        &self,
        remote_addr: &str,
        origin: Option<&str>,
    ) -> Result<(u64, u64), StoreError> {
        use notification::Column as C;
        use sea_orm::PaginatorTrait;
        let quarantined = || {
            notification::Entity::find()
                .filter(C::State.eq(State::Quarantined.as_str()))
                .filter(C::Direction.eq(Direction::Inbound.as_str()))
        };
        let by_addr = quarantined()
            .filter(C::RemoteAddr.eq(remote_addr))
            .count(&self.db)
            .await?;
        let by_origin = match origin {
            Some(o) => {
                quarantined()
                    .filter(C::Id.in_subquery(crate::notifications::linked(o, &["origin"])))
                    .count(&self.db)
                    .await?
            }
            None => 0,
        };
        Ok((by_addr, by_origin))
    }

    /// Every service, by name.
    pub async fn services(&self) -> Result<Vec<RegisteredService>, StoreError> {
        Ok(service::Entity::find()
            .order_by_asc(service::Column::Name)
            .order_by_asc(service::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(RegisteredService::from)
            .collect())
    }
}
