//! The query parameters every listing shares, parsed one way: the keyset cursor `after`,
//! `limit`, and the `from`/`to` range of reception times. `GET /inbox`, `/feed`, the admin
//! API and the dashboard all read them here, so that they cannot disagree (a date alone as
//! `to` once covered the whole day in the dashboard but stopped at midnight in the API).

use axum::{extract::FromRequestParts, http::request::Parts};
use chrono::{DateTime, NaiveDate, Utc};

use coar_model::Pattern;

use crate::web::{feed::absolute_uri, problem::ProblemDetails};

/// The most items one page may hold.
pub const MAX_LIMIT: u64 = 1000;

/// A 400 naming the parameter.
pub(crate) fn bad(param: &str, message: impl Into<String>) -> ProblemDetails {
    ProblemDetails::new(
        axum::http::StatusCode::BAD_REQUEST,
        format!("Invalid parameter {param}"),
        message.into(),
    )
}

/// `after` and `limit` of a listing's query, checked: an extractor, so that a handler
/// never sees a bad value (400 naming the parameter). An empty value counts as absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The cursor from a `next` link.
    pub after: Option<i64>,
    /// How many items, 1 to [`MAX_LIMIT`].
    pub limit: Option<u64>,
}

impl Cursor {
    /// Reads `after` and `limit` from a query string.
    pub fn parse(query: Option<&str>) -> Result<Cursor, ProblemDetails> {
        let mut page = Cursor::default();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match &*k {
                "after" => {
                    page.after = Some(
                        v.parse()
                            .map_err(|_| bad("after", "after must be a cursor from a next link"))?,
                    )
                }
                "limit" => {
                    page.limit = Some(
                        v.parse::<u64>()
                            .ok()
                            .filter(|l| (1..=MAX_LIMIT).contains(l))
                            .ok_or_else(|| {
                                bad(
                                    "limit",
                                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                                )
                            })?,
                    )
                }
                _ => {}
            }
        }
        Ok(page)
    }

    /// The limit, or `default` when none was given.
    pub fn limit_or(&self, default: u64) -> u64 {
        self.limit.unwrap_or(default)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Cursor {
    type Rejection = ProblemDetails;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Cursor, ProblemDetails> {
        Cursor::parse(parts.uri.query())
    }
}

/// A range of reception times: `since` inclusive, `until` exclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// From this instant on.
    pub since: Option<DateTime<Utc>>,
    /// Before this instant.
    pub until: Option<DateTime<Utc>>,
}

/// `from` and `to`, ISO 8601 date-times (`2026-11-23T10:00:00Z`) or dates (`2026-11-23`),
/// both inclusive: a date as `from` starts at its midnight (UTC), a date as `to` covers the
/// whole of that day, and a date-time as `to` includes that instant. 400 naming the
/// parameter when one is not a time, or when `from` comes after `to`.
pub fn range(from: Option<&str>, to: Option<&str>) -> Result<Range, ProblemDetails> {
    fn given(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    let since = given(from).map(|v| parse_time("from", v)).transpose()?;
    let until = given(to)
        .map(|v| {
            let (t, date_only) = (parse_time("to", v)?, v.len() == 10);
            let end = if date_only {
                chrono::Duration::days(1)
            } else {
                chrono::Duration::microseconds(1)
            };
            Ok::<_, ProblemDetails>(t.checked_add_signed(end).unwrap_or(t))
        })
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(bad("from", "from is after to"));
    }
    Ok(Range { since, until })
}

/// ISO 8601: a full timestamp (`2026-11-23T10:00:00Z`) or a date (`2026-11-23`, midnight UTC).
fn parse_time(param: &str, value: &str) -> Result<DateTime<Utc>, ProblemDetails> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            bad(
                param,
                format!(
                    "{value:?} is not an ISO 8601 date or date-time, e.g. 2026-11-23 or 2026-11-23T10:00:00Z"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_checked() {
        assert_eq!(
            Cursor::parse(Some("after=12&limit=5&x=1")).unwrap(),
            Cursor {
                after: Some(12),
                limit: Some(5)
            }
        );
        assert_eq!(
            Cursor::parse(Some("after=&limit=")).unwrap(),
            Cursor::default()
        );
        for bad in ["limit=0", "limit=1001", "limit=x", "after=x"] {
            assert!(Cursor::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_date_as_to_covers_the_whole_day() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let r = range(Some("2026-11-02"), Some("2026-11-13")).unwrap();
        assert_eq!(r.since, Some(t("2026-11-02T00:00:00Z")));
        assert_eq!(r.until, Some(t("2026-11-14T00:00:00Z")));
        let r = range(None, Some("2026-11-13T12:00:00Z")).unwrap();
        assert_eq!(r.until, Some(t("2026-11-13T12:00:00.000001Z")), "inclusive");
        // One day, given as from and to.
        assert!(range(Some("2026-11-13"), Some("2026-11-13")).is_ok());
        assert!(range(Some("2026-11-14"), Some("2026-11-13")).is_err());
        assert!(range(Some("2026-13-01"), None).is_err());
    }
}

/// Filters of `GET /api/notifications` (the feed's, plus direction, pattern, state, origin,
/// target).
#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    pub(crate) direction: Option<String>,
    pub(crate) pattern: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) ro: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) origin: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    /// Free text: in the body, the notification id or the last error.
    pub(crate) q: Option<String>,
}

/// The store filter of a listing's query parameters; 400 naming a bad one.
pub(crate) fn filter_from(q: &ListQuery) -> Result<coar_store::Filter, ProblemDetails> {
    let get = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let uri = |name: &str, v: &Option<String>| get(v).map(|v| absolute_uri(name, &v)).transpose();
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    Ok(coar_store::Filter {
        direction: get(&q.direction)
            .map(|d| d.parse().map_err(|m: String| bad("direction", m)))
            .transpose()?,
        pattern: match get(&q.pattern).as_deref() {
            None => None,
            Some("unrecognised") => Some(None),
            Some(slug) => {
                Some(Some(Pattern::from_slug(slug).ok_or_else(|| {
                    bad("pattern", format!("unknown pattern {slug:?}"))
                })?))
            }
        },
        state: get(&q.state)
            .map(|s| s.parse().map_err(|m: String| bad("state", m)))
            .transpose()?,
        resource: uri("ro", &q.ro)?,
        source: uri("source", &q.source)?,
        origin: uri("origin", &q.origin)?,
        target: uri("target", &q.target)?,
        since: range.since,
        until: range.until,
        text: get(&q.q),
        attributed_only: false,
    })
}
