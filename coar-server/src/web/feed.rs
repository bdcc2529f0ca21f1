//! `GET /feed`: an Atom feed of received notifications (the research-object notification
//! API, generalised): filters `ro`, `from`, `to`, `source`, `limit`.

use std::{fmt::Write, sync::Arc};

use axum::{
    extract::{Query, State},
    http::{Uri, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use coar_store::{Direction, Filter, Record};
use serde::Deserialize;

use crate::web::{App, problem::ProblemDetails};

/// The feed's query parameters.
#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    ro: Option<String>,
    from: Option<String>,
    to: Option<String>,
    source: Option<String>,
}

/// The URI template of the feed, for the service description.
pub const TEMPLATE: &str = "{?ro,from,to,source,limit}";

const DESCRIBES: &str = "http://www.openarchives.org/ore/terms/describes";
const SOURCE: &str = "http://purl.org/dc/terms/source";

use crate::web::paging::bad;

pub(crate) fn absolute_uri(param: &str, value: &str) -> Result<String, ProblemDetails> {
    if coar_model::is_uri(value.trim()) {
        Ok(value.trim().to_owned())
    } else {
        Err(bad(param, format!("{value:?} is not an absolute URI")))
    }
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids are dropped: controls, and U+FFFE and U+FFFF
            // (surrogates cannot be a `char`).
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{fffe}' | '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `GET /feed`.
pub async fn feed(
    State(app): State<Arc<App>>,
    _reader: crate::web::auth::Reader,
    page: crate::web::paging::Cursor,
    Query(q): Query<FeedQuery>,
    uri: Uri,
) -> Result<Response, ProblemDetails> {
    let non_empty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let crate::web::paging::Range { since, until } =
        crate::web::paging::range(q.from.as_deref(), q.to.as_deref())?;
    let limit = match page.limit {
        Some(l) => l,
        // The research-object notification API's default: the 10 newest.
        None if since.is_none() && until.is_none() => 10,
        None => 100,
    };
    let after = page.after;
    let filter = Filter {
        direction: Some(Direction::Inbound),
        resource: non_empty(&q.ro)
            .map(|v| absolute_uri("ro", &v))
            .transpose()?,
        source: non_empty(&q.source)
            .map(|v| absolute_uri("source", &v))
            .transpose()?,
        since,
        // `to` is inclusive (a date, the whole day); the range's end is exclusive.
        until,
        attributed_only: app.publishes_attributed_only(),
        ..Filter::default()
    };
    let page = app.store().list(&filter, after, limit).await?;
    let feed_url = app.urls().feed();
    let self_url = match uri.query() {
        Some(query) => format!("{feed_url}?{query}"),
        None => feed_url.clone(),
    };
    let next_url = page.next.map(|n| {
        let mut params: Vec<String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("after=") && !p.starts_with("limit="))
            .map(str::to_owned)
            .collect();
        params.push(format!("limit={limit}"));
        params.push(format!("after={n}"));
        format!("{feed_url}?{}", params.join("&"))
    });
    let updated = page.items.first().map_or_else(Utc::now, |r| r.received_at);
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n",
    );
    let _ = writeln!(out, "  <id>{}</id>", xml(&self_url));
    let _ = writeln!(
        out,
        "  <title>{}: COAR Notify notifications</title>",
        xml(&app.config().name)
    );
    let _ = writeln!(
        out,
        "  <updated>{}</updated>",
        updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let _ = writeln!(
        out,
        "  <author><name>{}</name><uri>{}</uri></author>",
        xml(&app.config().name),
        xml(&app.urls().service())
    );
    let _ = writeln!(
        out,
        "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>",
        xml(&self_url)
    );
    if let Some(next) = &next_url {
        let _ = writeln!(
            out,
            "  <link rel=\"next\" type=\"application/atom+xml\" href=\"{}\"/>",
            xml(next)
        );
    }
    for r in &page.items {
        entry(&mut out, &app, r);
    }
    out.push_str("</feed>\n");
    let mut response = (
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        out,
    )
        .into_response();
    if let Some(next) = next_url
        && let Ok(v) = header::HeaderValue::from_str(&format!("<{next}>; rel=\"next\""))
    {
        response.headers_mut().append(header::LINK, v);
    }
    Ok(response)
}

fn entry(out: &mut String, app: &App, r: &Record) {
    let title = r
        .pattern
        .map_or("Notification (no COAR Notify pattern)", |p| p.title());
    let resource = r.context_id.clone().or_else(|| r.object_id.clone());
    let source = r.origin_id.clone().or_else(|| r.actor_id.clone());
    let published = r
        .received_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let url = app.notification_url(r.key);
    let _ = writeln!(out, "  <entry>");
    let id = if coar_model::is_uri(&r.notification_id) {
        r.notification_id.clone()
    } else {
        url.clone()
    };
    let _ = writeln!(out, "    <id>{}</id>", xml(&id));
    let _ = writeln!(out, "    <title>{}</title>", xml(title));
    let _ = writeln!(
        out,
        "    <published>{published}</published>\n    <updated>{published}</updated>"
    );
    let _ = writeln!(
        out,
        "    <link rel=\"alternate\" type=\"application/ld+json\" href=\"{}\"/>",
        xml(&url)
    );
    if let Some(res) = &resource {
        let _ = writeln!(out, "    <link rel=\"{DESCRIBES}\" href=\"{}\"/>", xml(res));
    }
    if let Some(src) = &source {
        let _ = writeln!(out, "    <link rel=\"{SOURCE}\" href=\"{}\"/>", xml(src));
    }
    let mut summary = format!(
        "{title} from {}",
        source.as_deref().unwrap_or("an unknown sender")
    );
    if let Some(t) = &r.target_id {
        let _ = write!(summary, " to {t}");
    }
    if let Some(res) = &resource {
        let _ = write!(summary, ", about {res}");
    }
    if let Some(irt) = &r.in_reply_to {
        let _ = write!(summary, ", in reply to {irt}");
    }
    summary.push('.');
    let _ = writeln!(
        out,
        "    <summary type=\"text\">{}</summary>",
        xml(&summary)
    );
    let _ = writeln!(
        out,
        "    <category term=\"{}\"/>",
        xml(r.pattern.map_or("unrecognised", |p| p.slug()))
    );
    let _ = writeln!(out, "  </entry>");
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_xml_forbids_is_dropped() {
        assert_eq!(
            super::xml("a\u{0}b\u{fffe}c\u{ffff}d\u{fffd}<"),
            "abcd\u{fffd}&lt;"
        );
        assert_eq!(super::xml("\t\n\r\u{10000}"), "\t\n\r\u{10000}");
    }
}
