//! Overview, message log, message detail and resources.

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
};
use coar_ldn::RdfFormat;
use coar_model::{Notification, Pattern};
use coar_store::{Direction, Filter, Record, State as QueueState};
use serde_json::{Value, json};

use super::{Admin, CheckedForm, chart, error_page, problem_page, redirect, render, root};
use crate::web::{
    App,
    feed::absolute_uri,
    paging::{ListQuery, filter_from},
    problem::ProblemDetails,
};

/// Names and titles of the patterns, for selects and labels.
pub(crate) fn pattern_options() -> Vec<Value> {
    Pattern::ALL
        .iter()
        .map(|p| json!({"slug": p.slug(), "title": p.title(), "legacy": p.is_legacy()}))
        .collect()
}

fn title_of(slug: &str) -> String {
    Pattern::from_slug(slug).map_or_else(
        || "Unrecognised activity".to_owned(),
        |p| p.title().to_owned(),
    )
}

/// A record as a row of the log, with the pattern's title.
fn row(app: &App, r: &Record) -> Value {
    let mut v = crate::views::summary(app.urls(), r);
    v["title"] = json!(r.pattern.map_or("Unrecognised activity", |p| p.title()));
    v["received"] = json!(r.received_at.format("%Y-%m-%d %H:%M:%S").to_string());
    v
}

/// Messages a redirect after a form names with `?done=`.
pub(crate) fn notice_text(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "replayed" => "Queued again: the workers will process it with a fresh attempt budget.",
        "released" => "Released from quarantine: the workers will process it.",
        "sent" => "Stored in the outbox: the workers are delivering it.",
        "saved" => "Saved.",
        "removed" => "Removed.",
        "trusted" => {
            "Registered as a trusted service; its quarantined notifications that came from its addresses, with its inbox, were released, and the others stay quarantined."
        }
        "enabled" => "Enabled: its quarantined notifications that meet its rules were released.",
        "disabled" => {
            "Disabled: what it sends from now on is quarantined or refused, as the trust policy says."
        }
        _ => return None,
    })
}

/// `GET /admin`: counts, the last 30 days, the queue and what needs attention.
pub async fn overview(State(app): State<Arc<App>>, admin: Admin) -> Response {
    match overview_context(&app).await {
        Ok(context) => render(&app, Some(&admin), StatusCode::OK, "overview.html", context),
        Err(p) => problem_page(&app, &admin, p),
    }
}

async fn overview_context(app: &App) -> Result<Value, ProblemDetails> {
    let stats = app.store().stats(&Filter::default()).await?;
    let today = chrono::Utc::now().date_naive();
    let first = today - chrono::Days::new(29);
    let recent = app
        .store()
        .stats(&Filter {
            since: first.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
            ..Filter::default()
        })
        .await?;
    let days: Vec<(chrono::NaiveDate, u64)> = (0..30)
        .map(|i| {
            let day = first + chrono::Days::new(i);
            let key = day.format("%Y-%m-%d").to_string();
            let n = recent
                .by_day
                .iter()
                .find(|(d, _)| *d == key)
                .map_or(0, |(_, n)| *n);
            (day, n)
        })
        .collect();
    let mut queue = Vec::new();
    for direction in [Direction::Inbound, Direction::Outbound] {
        for (state, n) in app.store().queue_depth(direction).await? {
            queue.push(json!({"direction": direction.as_str(), "state": state.as_str(), "n": n}));
        }
    }
    let dead_filter = Filter {
        state: Some(QueueState::Dead),
        ..Filter::default()
    };
    let dead = app.store().list(&dead_filter, None, 10).await?;
    let dead_count = app.store().count(&dead_filter).await?;
    let failed_count = app
        .store()
        .count(&Filter {
            state: Some(QueueState::Failed),
            ..Filter::default()
        })
        .await?;
    let quarantined = app
        .store()
        .count(&Filter {
            state: Some(QueueState::Quarantined),
            ..Filter::default()
        })
        .await?;
    let total: u64 = stats.by_direction.iter().map(|(_, n)| n).sum();
    let by_pattern: Vec<Value> = stats
        .by_pattern
        .iter()
        .map(|(slug, n)| json!({"slug": slug, "title": title_of(slug), "n": n}))
        .collect();
    Ok(json!({
        "nav": "overview",
        "total": total,
        "by_direction": pairs(&stats.by_direction),
        "by_pattern": by_pattern,
        "by_state": pairs(&stats.by_state),
        "last_30_days": days.iter().map(|(_, n)| n).sum::<u64>(),
        "chart": chart::per_day(&days),
        "queue": queue,
        "dead": dead.items.iter().map(|r| row(app, r)).collect::<Vec<_>>(),
        "dead_count": dead_count,
        "failed_count": failed_count,
        "quarantined_count": quarantined,
    }))
}

fn pairs(pairs: &[(String, u64)]) -> Vec<Value> {
    pairs
        .iter()
        .map(|(k, n)| json!({"key": k, "n": n}))
        .collect()
}

/// `GET /admin/messages`: both directions, filtered, newest first, 50 a page.
pub async fn messages(
    State(app): State<Arc<App>>,
    admin: Admin,
    Query(q): Query<ListQuery>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let filter = filter_from(&q)?;
        let after = raw
            .iter()
            .find(|(k, _)| k == "after")
            .and_then(|(_, v)| v.parse::<i64>().ok());
        let page = app.store().list(&filter, after, 50).await?;
        let total = app.store().count(&filter).await?;
        Ok::<_, ProblemDetails>((page, total))
    }
    .await;
    let kept: Vec<(String, String)> = raw
        .iter()
        .filter(|(k, v)| k != "after" && !v.trim().is_empty())
        .cloned()
        .collect();
    let values: serde_json::Map<String, Value> =
        kept.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let query_string = |extra: Option<(&str, String)>| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &kept {
            s.append_pair(k, v);
        }
        if let Some((k, v)) = extra {
            s.append_pair(k, &v);
        }
        s.finish()
    };
    let mut context = json!({
        "nav": "messages",
        "f": values,
        "patterns": pattern_options(),
        "states": QueueState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "first_page": format!("{}/messages?{}", root(&app), query_string(None)),
        "filtered": !kept.is_empty(),
    });
    match result {
        Ok((page, total)) => {
            context["items"] = json!(page.items.iter().map(|r| row(&app, r)).collect::<Vec<_>>());
            context["total"] = json!(total);
            context["paged"] = json!(raw.iter().any(|(k, _)| k == "after"));
            context["next"] = json!(page.next.map(|n| format!(
                "{}/messages?{}",
                root(&app),
                query_string(Some(("after", n.to_string())))
            )));
            render(&app, Some(&admin), StatusCode::OK, "messages.html", context)
        }
        Err(p) => {
            context["items"] = json!([]);
            context["error"] = json!(format!("{}: {}", p.title, p.detail));
            render(&app, Some(&admin), p.status, "messages.html", context)
        }
    }
}

fn not_found(app: &App, admin: &Admin) -> Response {
    error_page(
        app,
        Some(admin),
        StatusCode::NOT_FOUND,
        "No such notification",
        "There is no notification with this key. It may have been removed, or the link is wrong.",
    )
}

/// `GET /admin/messages/{key}`: everything about one notification.
pub async fn message(
    State(app): State<Arc<App>>,
    admin: Admin,
    Path(key): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Ok(key) = key.parse::<i64>() else {
        return not_found(&app, &admin);
    };
    match message_context(&app, key).await {
        Ok(Some(mut context)) => {
            context["notice"] = json!(notice_text(q.get("done").map(String::as_str)));
            context["problem"] = json!(q.get("problem").and_then(|p| match p.as_str() {
                "not-replayable" =>
                    Some("Only failed, dead or processed notifications can be replayed."),
                "not-quarantined" => Some("It is not quarantined."),
                "no-service" => Some(
                    "Not released: no registered service has its origin id. Anyone can claim any origin; register the service (with its inbox, addresses or token) and what it proves to have sent is released.",
                ),
                "untrusted" => Some(
                    "Not released: its sender's address, token or claimed inbox does not meet the rules of the service it names as origin.",
                ),
                _ => None,
            }));
            render(&app, Some(&admin), StatusCode::OK, "message.html", context)
        }
        Ok(None) => not_found(&app, &admin),
        Err(p) => problem_page(&app, &admin, p),
    }
}

async fn message_context(app: &Arc<App>, key: i64) -> Result<Option<Value>, ProblemDetails> {
    let Some(record) = app.store().get(key).await? else {
        return Ok(None);
    };
    let attempts = app.store().attempts(key).await?;
    let thread = app.store().thread_of(&record).await?;
    let text = String::from_utf8_lossy(&record.body).into_owned();
    let parsed: Option<Value> = serde_json::from_slice(&record.body).ok();
    let pretty = parsed
        .as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_else(|| text.clone());
    let turtle = if record.media_type.starts_with("text/turtle") {
        Ok(text.clone())
    } else {
        // A peer's JSON-LD, expanded on the parsing pool like every other.
        let (a, json) = (app.clone(), text.clone());
        app.parsers()
            .run(move || {
                a.receiver()
                    .contexts()
                    .to_dataset(&json)
                    .map_err(|e| e.to_string())
                    .and_then(|d| d.serialize(RdfFormat::Turtle).map_err(|e| e.to_string()))
            })
            .await
            .unwrap_or_else(|busy| Err(busy.to_string()))
    };
    let notification = parsed
        .clone()
        .and_then(|v| Notification::from_value(v).ok());
    let problems: Vec<Value> = notification
        .as_ref()
        .map(|n| {
            n.validate()
                .problems
                .iter()
                .map(|p| json!({"severity": p.severity, "pointer": p.pointer, "rule": p.rule, "message": p.message}))
                .collect()
        })
        .unwrap_or_default();
    let mut resources: Vec<String> = notification
        .as_ref()
        .map(|n| {
            n.activity()
                .resource_uris()
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    resources.extend(record.cite_as.iter().cloned());
    resources.sort();
    resources.dedup();
    let in_reply_to = match &record.in_reply_to {
        Some(id) => app
            .store()
            .find_by_notification_id(id)
            .await?
            .first()
            .map(|r| r.key),
        None => None,
    };
    let is_offer = record.direction == Direction::Inbound
        && matches!(
            record.pattern,
            Some(Pattern::RequestReview | Pattern::RequestEndorsement)
        );
    let mut replies = Vec::new();
    if record.direction == Direction::Outbound
        && matches!(
            record.pattern,
            Some(Pattern::RequestReview | Pattern::RequestEndorsement)
        )
    {
        replies.push(json!({"slug": Pattern::UndoOffer.slug(), "title": "Retract (Undo Offer)"}));
    }
    if is_offer {
        for p in [
            Pattern::Accept,
            Pattern::TentativeAccept,
            Pattern::TentativeReject,
            Pattern::Reject,
        ] {
            replies.push(json!({"slug": p.slug(), "title": p.title()}));
        }
        let announce = if record.pattern == Some(Pattern::RequestReview) {
            Pattern::AnnounceReview
        } else {
            Pattern::AnnounceEndorsement
        };
        replies.push(json!({"slug": announce.slug(), "title": announce.title()}));
    }
    let service = match record.service {
        Some(k) => app.store().service(k).await?,
        None => None,
    };
    // Evidence is named against the service its origin names (attributed or not).
    let named = match (&service, &record.origin_id) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(id)) => app.store().service_by_id(id).await?,
        (None, None) => None,
    };
    let authentication = crate::views::authentication(&record, named.as_ref());
    let unknown_sender = record.state == QueueState::Quarantined
        && service.is_none()
        && match &record.origin_id {
            Some(id) => app.store().service_by_id(id).await?.is_none(),
            None => false,
        };
    let summary_text = notification
        .as_ref()
        .and_then(|n| n.activity().summary().map(str::to_owned));
    let origin_name = notification
        .as_ref()
        .and_then(|n| n.activity().origin())
        .and_then(|o| o.name().map(str::to_owned));
    Ok(Some(json!({
        "nav": "messages",
        "m": row(app, &record),
                "record": crate::views::RecordView::from(&record),
        "authentication": authentication,
        "pretty": pretty,
        "turtle": turtle.as_ref().ok(),
        "turtle_error": turtle.as_ref().err(),
                "problems": problems,
        "attempts": crate::views::attempts(&attempts),
        "thread": thread.map(|t| json!({
            "offer": row(app, &t.offer),
            "status": t.status,
            "replies": t.replies.iter().map(|r| row(app, r)).collect::<Vec<_>>(),
        })),
        "resources": resources,
        "in_reply_to_key": in_reply_to,
        "replayable": matches!(record.state, QueueState::Failed | QueueState::Dead),
        "quarantined": record.state == QueueState::Quarantined,
        "unknown_sender": unknown_sender,
        "origin_name": origin_name,
        "summary": summary_text,
        "service": service.map(|s| json!({"key": s.key, "name": s.name})),
        "replies": replies,
    })))
}

/// `POST /admin/messages/{key}/replay`.
pub async fn replay(
    State(app): State<Arc<App>>,
    Path(key): Path<i64>,
    CheckedForm { admin, .. }: CheckedForm,
) -> Response {
    let at = format!("{}/messages/{key}", root(&app));
    match app.store().replay(key).await {
        Ok(true) => redirect(&format!("{at}?done=replayed")),
        Ok(false) => redirect(&format!("{at}?problem=not-replayable")),
        Err(e) => problem_page(&app, &admin, e.into()),
    }
}

/// `POST /admin/messages/{key}/release`: process a quarantined notification.
pub async fn release(
    State(app): State<Arc<App>>,
    Path(key): Path<i64>,
    CheckedForm { admin, .. }: CheckedForm,
) -> Response {
    let at = format!("{}/messages/{key}", root(&app));
    use coar_store::NotReleased;
    match app.store().release_one(key).await {
        Ok(Ok(())) => redirect(&format!("{at}?done=released")),
        Ok(Err(NotReleased::NotQuarantined)) => redirect(&format!("{at}?problem=not-quarantined")),
        Ok(Err(NotReleased::NoService)) => redirect(&format!("{at}?problem=no-service")),
        Ok(Err(NotReleased::Untrusted(_))) => redirect(&format!("{at}?problem=untrusted")),
        Err(e) => problem_page(&app, &admin, e.into()),
    }
}

/// `GET /admin/resources?uri=`: every request about a resource and its state, and every
/// review, endorsement, relationship and service result known.
pub async fn resources(
    State(app): State<Arc<App>>,
    admin: Admin,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let uri = q.get("uri").map(|u| u.trim()).unwrap_or_default();
    let mut context = json!({"nav": "resources", "uri": uri});
    if uri.is_empty() {
        return render(
            &app,
            Some(&admin),
            StatusCode::OK,
            "resources.html",
            context,
        );
    }
    let view = match absolute_uri("uri", uri) {
        Ok(uri) => crate::views::resource_view(&app, &uri)
            .await
            .map_err(ProblemDetails::from),
        Err(p) => Err(p),
    };
    match view {
        Ok(mut view) => {
            if let Some(items) = view["notifications"].as_array_mut() {
                for item in items {
                    let slug = item["pattern"].as_str().unwrap_or_default().to_owned();
                    item["title"] = json!(title_of(&slug));
                }
            }
            // Links go to a resource only over HTTP(S): a peer's `javascript:` URL is text.
            if let Some(links) = view["links"].as_array_mut() {
                for link in links {
                    let resource = link["resource"].as_str().unwrap_or_default();
                    if resource.starts_with("https://") || resource.starts_with("http://") {
                        link["href"] = json!(resource);
                    }
                    let key = link["notification"]
                        .as_str()
                        .and_then(|u| u.rsplit('/').next())
                        .and_then(|k| k.parse::<i64>().ok());
                    link["key"] = json!(key);
                }
            }
            if let Some(requests) = view["requests"].as_array_mut() {
                for r in requests {
                    let slug = r["offer"]["pattern"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    r["offer"]["title"] = json!(title_of(&slug));
                    if let Some(replies) = r["replies"].as_array_mut() {
                        for reply in replies {
                            let slug = reply["pattern"].as_str().unwrap_or_default().to_owned();
                            reply["title"] = json!(title_of(&slug));
                        }
                    }
                }
            }
            context["view"] = view;
            render(
                &app,
                Some(&admin),
                StatusCode::OK,
                "resources.html",
                context,
            )
        }
        Err(p) => {
            context["error"] = json!(p.detail);
            render(&app, Some(&admin), p.status, "resources.html", context)
        }
    }
}
