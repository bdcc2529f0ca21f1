//! Compose: pick a pattern, fill in only that pattern's fields, see every validation problem
//! next to the field it concerns, preview the JSON-LD, send it through the outbox. Replies to
//! a received Offer come prefilled (`?pattern=accept&reply_to=KEY`).

use std::sync::Arc;

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use coar_model::{
    Notification, Pattern,
    template::{self, fields, pointer, reply_values},
};
use serde_json::{Value, json};

use super::{Admin, CheckedForm, Form, problem_page, redirect, render, root};
use crate::web::{App, problem::ProblemDetails};

/// The received Offer a reply answers.
async fn offer_of(
    app: &App,
    key: Option<&str>,
) -> Result<Option<(i64, Notification)>, crate::web::problem::ProblemDetails> {
    let Some(key) = key.and_then(|k| k.parse::<i64>().ok()) else {
        return Ok(None);
    };
    let Some(record) = app.store().get(key).await? else {
        return Ok(None);
    };
    Ok(Notification::from_slice(&record.body)
        .ok()
        .filter(|n| {
            matches!(
                n.pattern(),
                Some(Pattern::RequestReview | Pattern::RequestEndorsement)
            )
        })
        .map(|n| (key, n)))
}

/// `GET /admin/compose[?pattern=slug][&reply_to=key]`.
pub async fn form(
    State(app): State<Arc<App>>,
    admin: Admin,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let pattern = q
        .get("pattern")
        .and_then(|s| Pattern::from_slug(s))
        .filter(|p| !p.is_legacy());
    let offer = match offer_of(&app, q.get("reply_to").map(String::as_str)).await {
        Ok(o) => o,
        Err(p) => return problem_page(&app, &admin, p),
    };
    let values: Vec<(String, String)> = match (pattern, &offer) {
        (Some(p), Some((_, offer))) => reply_values(p, offer)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        (Some(p), None) => fields(p)
            .iter()
            .map(|f| (f.name.to_owned(), f.default.to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    let form = Form(values);
    page(
        &app,
        &admin,
        StatusCode::OK,
        pattern,
        offer.as_ref(),
        &form,
        None,
    )
}

/// `POST /admin/compose`: `action=preview` shows the notification and its problems;
/// `action=send` stores a valid one in the outbox.
pub async fn submit(
    State(app): State<Arc<App>>,
    CheckedForm { admin, form }: CheckedForm,
) -> Response {
    let Some(pattern) = form
        .get("pattern")
        .and_then(Pattern::from_slug)
        .filter(|p| !p.is_legacy())
    else {
        return page(
            &app,
            &admin,
            StatusCode::BAD_REQUEST,
            None,
            None,
            &form,
            None,
        );
    };
    let offer = match offer_of(&app, form.get("reply_to")).await {
        Ok(o) => o,
        Err(p) => return problem_page(&app, &admin, p),
    };
    let doc = template::compose(
        pattern,
        |name| form.get(name),
        offer.as_ref().map(|(_, o)| o),
    );
    let outcome = match app.prepare_outbound(doc).await {
        Ok(prepared) => Ok(prepared),
        Err(e @ crate::outbox::OutboxError::NoInbox { .. }) => Err(e.to_string()),
        Err(e) => return problem_page(&app, &admin, ProblemDetails::from(e)),
    };
    let (notification, report) = match outcome {
        Ok(x) => x,
        Err(discovery) => {
            let checked = Checked {
                problems: vec![
                    json!({"pointer": "/target/inbox", "severity": "error", "message": discovery, "rule": "target.inbox.discovery"}),
                ],
                preview: None,
            };
            return page(
                &app,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(pattern),
                offer.as_ref(),
                &form,
                Some(checked),
            );
        }
    };
    let valid = report.is_valid();
    if form.get("action") == Some("send") && valid {
        return match app.queue_outbound(&notification).await {
            Ok(inserted) => redirect(&format!(
                "{}/messages/{}?done=sent",
                root(&app),
                inserted.record().key
            )),
            Err(e) => problem_page(&app, &admin, ProblemDetails::from(e)),
        };
    }
    let checked = Checked {
        problems: report
            .problems
            .iter()
            .map(|p| json!({"pointer": p.pointer, "severity": p.severity, "message": p.message, "rule": p.rule}))
            .collect(),
        preview: serde_json::to_string_pretty(&notification.to_value()).ok(),
    };
    let status = if valid {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        &app,
        &admin,
        status,
        Some(pattern),
        offer.as_ref(),
        &form,
        Some(checked),
    )
}

/// The result of checking a composed notification.
struct Checked {
    problems: Vec<Value>,
    preview: Option<String>,
}

fn page(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    pattern: Option<Pattern>,
    offer: Option<&(i64, Notification)>,
    form: &Form,
    checked: Option<Checked>,
) -> Response {
    let fields = pattern.map(fields).unwrap_or_default();
    let problems = checked
        .as_ref()
        .map(|c| c.problems.clone())
        .unwrap_or_default();
    // Each problem goes to the field it is about: the field at or above its pointer, else
    // the first field below it (a missing `object` is the first object field's business).
    let owner = |ptr: &str| -> Option<&'static str> {
        fields
            .iter()
            .filter(|f| {
                let fp = pointer(f.path);
                ptr == fp || ptr.starts_with(&format!("{fp}/"))
            })
            .max_by_key(|f| f.path.len())
            .or_else(|| {
                fields
                    .iter()
                    .find(|f| pointer(f.path).starts_with(&format!("{ptr}/")))
            })
            .map(|f| f.name)
    };
    let mut general = Vec::new();
    let mut by_field: std::collections::HashMap<&str, Vec<Value>> = Default::default();
    for p in &problems {
        let ptr = p["pointer"].as_str().unwrap_or_default();
        match owner(ptr) {
            Some(name) => by_field.entry(name).or_default().push(p.clone()),
            None => general.push(p.clone()),
        }
    }
    let field_values: Vec<Value> = fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "label": f.label,
                "help": f.help,
                "value": form.get(f.name).unwrap_or_default(),
                "problems": by_field.get(f.name).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let errors = problems.iter().filter(|p| p["severity"] == "error").count();
    render(
        app,
        Some(admin),
        status,
        "compose.html",
        json!({
            "nav": "compose",
            "patterns": coar_model::Pattern::ALL.iter().filter(|p| !p.is_legacy()).map(|p| json!({"slug": p.slug(), "title": p.title()})).collect::<Vec<_>>(),
            "pattern": pattern.map(|p| json!({"slug": p.slug(), "title": p.title()})),
            "fields": field_values,
            "general": general,
            "checked": checked.is_some(),
            "errors": errors,
            "preview": checked.and_then(|c| c.preview),
            "reply_to": offer.map(|(k, _)| k),
            "offer": offer.map(|(k, n)| json!({"key": k, "id": n.activity().id(), "title": n.pattern().map(|p| p.title())})),
        }),
    )
}
