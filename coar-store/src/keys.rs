//! The installation's own signing keys, shared by every process on the database: the one in
//! use, and the retired ones that stay published for a grace period so that peers can still
//! verify what was signed with them. The keys are opaque here (a PKCS#8 document and its
//! names); generating and using them is the server's.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::{Store, StoreError, entity::signing_key};

/// A stored signing key. Its `Debug` leaves the private key out.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// Its key.
    pub key: i64,
    /// The `keyid` its signatures carry.
    pub kid: String,
    /// Its algorithm's name (`ed25519`, `rsa-pss-sha512`).
    pub alg: String,
    /// The private key, PKCS#8 (DER).
    pub pkcs8: Vec<u8>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was replaced; `None` for the key in use.
    pub retired_at: Option<DateTime<Utc>>,
}

/// A key to store: its `keyid`, algorithm and PKCS#8 document. Its `Debug` leaves the
/// private key out.
#[derive(Clone)]
pub struct NewSigningKey {
    /// The `keyid`.
    pub kid: String,
    /// The algorithm's name.
    pub alg: String,
    /// The private key, PKCS#8 (DER).
    pub pkcs8: Vec<u8>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("key", &self.key)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

const ACTIVE: &str = "active";

fn from_model(m: signing_key::Model) -> Result<StoredSigningKey, StoreError> {
    use base64::Engine;
    let time = |us: i64| DateTime::from_timestamp_micros(us).unwrap_or_default();
    Ok(StoredSigningKey {
        key: m.id,
        pkcs8: base64::engine::general_purpose::STANDARD
            .decode(&m.private_pkcs8)
            .map_err(|e| StoreError::Invalid {
                field: "signing key",
                message: format!("stored key {} is not base64: {e}", m.kid),
            })?,
        kid: m.kid,
        alg: m.alg,
        created_at: time(m.created_at),
        retired_at: m.retired_at.map(time),
    })
}

impl Store {
    /// Every signing key, the one in use first, then the retired ones, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = signing_key::Entity::find()
            .order_by_desc(signing_key::Column::Id)
            .all(&self.db)
            .await?;
        let mut keys = rows
            .into_iter()
            .map(from_model)
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by_key(|k| k.retired_at.is_some());
        Ok(keys)
    }

    /// The key in use; when there is none, `make()` is stored as it. Two processes starting
    /// together store one between them (the other's insert meets the unique slot, and it
    /// reads the winner's).
    pub async fn active_signing_key(
        &self,
        make: impl FnOnce() -> NewSigningKey,
    ) -> Result<StoredSigningKey, StoreError> {
        if let Some(active) = self.find_active().await? {
            return Ok(active);
        }
        let new = make();
        let inserted = {
            let (_turn, txn) = self.begin_write().await?;
            let result = signing_key::Entity::insert(active_model(&new))
                .exec(&txn)
                .await;
            match result {
                Ok(_) => txn.commit().await.map(|_| true),
                Err(_) => Ok(false),
            }
        };
        inserted?;
        self.find_active().await?.ok_or_else(|| {
            StoreError::Unavailable("no active signing key after storing one".into())
        })
    }

    /// Puts `new` in use and retires the key in use, in one transaction; returns the new
    /// one. The retired key stays listed ([`Store::signing_keys`]) with its retirement time.
    pub async fn rotate_signing_key(
        &self,
        new: NewSigningKey,
    ) -> Result<StoredSigningKey, StoreError> {
        let (_turn, txn) = self.begin_write().await?;
        signing_key::Entity::update_many()
            .col_expr(
                signing_key::Column::RetiredAt,
                sea_orm::sea_query::Expr::value(Utc::now().timestamp_micros()),
            )
            .col_expr(
                signing_key::Column::Slot,
                sea_orm::sea_query::Expr::value(Option::<String>::None),
            )
            .filter(signing_key::Column::Slot.eq(ACTIVE))
            .exec(&txn)
            .await?;
        signing_key::Entity::insert(active_model(&new))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.find_active()
            .await?
            .ok_or_else(|| StoreError::Unavailable("no active signing key after rotating".into()))
    }

    async fn find_active(&self) -> Result<Option<StoredSigningKey>, StoreError> {
        signing_key::Entity::find()
            .filter(signing_key::Column::Slot.eq(ACTIVE))
            .one(&self.db)
            .await?
            .map(from_model)
            .transpose()
    }
}

fn active_model(new: &NewSigningKey) -> signing_key::ActiveModel {
    use base64::Engine;
    signing_key::ActiveModel {
        kid: Set(new.kid.clone()),
        alg: Set(new.alg.clone()),
        private_pkcs8: Set(base64::engine::general_purpose::STANDARD.encode(&new.pkcs8)),
        slot: Set(Some(ACTIVE.to_owned())),
        created_at: Set(Utc::now().timestamp_micros()),
        retired_at: Set(None),
        ..Default::default()
    }
}
