//! Registered services: list, add, edit, enable or disable, remove, rotate tokens; and
//! quarantined senders that are not registered, with a one-click "trust this service".

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
};
use coar_model::Pattern;
use coar_store::{RegisteredService, ServiceInput, StoreError};
use serde_json::{Value, json};

use super::{
    Admin, CheckedForm, Form, error_page, pages::pattern_options, problem_page, redirect, render,
    root,
};
use crate::web::App;

fn service_row(s: &RegisteredService) -> Value {
    json!({
        "key": s.key,
        "name": s.name,
        "id": s.id,
        "inbox": s.inbox,
        "enabled": s.enabled,
        "inbound": s.inbound_patterns.iter().map(|p| p.slug()).collect::<Vec<_>>(),
        "outbound": s.outbound_patterns.iter().map(|p| p.slug()).collect::<Vec<_>>(),
        "cidrs": s.cidrs,
        "has_tokens": !s.token_hashes.is_empty(),
        "updated": s.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        "signature_policy": s.signature_policy.as_str(),
        "keys": s.keys.iter().map(key_row).collect::<Vec<_>>(),
        "keys_text": keys_text(&s.keys),
        "key_set_url": s.key_set_url,
        "fetched_keys": s.fetched_keys.iter().map(key_row).collect::<Vec<_>>(),
        "keys_fetched": s.keys_fetched_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
    })
}

fn key_row(k: &coar_store::ServiceKey) -> Value {
    json!({
        "kid": k.kid(),
        "thumbprint": k.thumbprint,
        "alg": k.jwk.get("alg").and_then(Value::as_str),
    })
}

/// Registered keys as the form's text: a JWK Set, or nothing.
fn keys_text(keys: &[coar_store::ServiceKey]) -> String {
    if keys.is_empty() {
        return String::new();
    }
    let set = json!({"keys": keys.iter().map(|k| &k.jwk).collect::<Vec<_>>()});
    serde_json::to_string_pretty(&set).unwrap_or_default()
}

/// The keys the form gives (its `keys` field: a JWK Set, an array of JWKs or one JWK;
/// empty for none); `None` when the form has no such field (the keys are kept).
fn keys_of(form: &Form) -> Result<Option<Vec<coar_store::ServiceKey>>, String> {
    let Some(text) = form.get("keys").map(str::trim) else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("keys: not JSON ({e})"))?;
    crate::signatures::service_keys(&value)
        .map(Some)
        .map_err(|e| format!("keys: {e}"))
}

/// A signature policy the form names that is none (`input_of` would read it as the default).
fn policy_problem(form: &Form) -> Option<String> {
    let p = form.get("signature_policy")?;
    p.parse::<coar_store::SignaturePolicy>()
        .is_err()
        .then(|| format!("signature_policy: {p:?} is not a policy"))
}

/// `GET /admin/services`.
pub async fn list(
    State(app): State<Arc<App>>,
    admin: Admin,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let result = async {
        Ok::<_, StoreError>((
            app.store().services().await?,
            app.store().unknown_senders().await?,
        ))
    }
    .await;
    match result {
        Ok((services, unknown)) => render(
            &app,
            Some(&admin),
            StatusCode::OK,
            "services.html",
            json!({
                "nav": "services",
                "services": services.iter().map(service_row).collect::<Vec<_>>(),
                                "unknown": unknown.iter().map(crate::views::UnknownSenderView::from).collect::<Vec<_>>(),
                "notice": super::pages::notice_text(q.get("done").map(String::as_str)),
            }),
        ),
        Err(e) => problem_page(&app, &admin, e.into()),
    }
}

fn form_page(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    key: Option<i64>,
    values: Value,
    error: Option<String>,
) -> Response {
    render(
        app,
        Some(admin),
        status,
        "service.html",
        json!({
            "nav": "services",
            "key": key,
            "s": values,
            "error": error,
            "patterns": pattern_options().into_iter().filter(|p| p["legacy"] == false).collect::<Vec<_>>(),
            "policies": coar_store::SignaturePolicy::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        }),
    )
}

/// `GET /admin/services/new` (`?id=&inbox=&name=` prefill it).
pub async fn new_form(
    State(app): State<Arc<App>>,
    admin: Admin,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let values = json!({
        "name": q.get("name"), "id": q.get("id"), "inbox": q.get("inbox"),
        "enabled": true, "inbound": [], "outbound": [], "cidrs": [],
        "signature_policy": "rules",
    });
    form_page(&app, &admin, StatusCode::OK, None, values, None)
}

/// `GET /admin/services/{key}`.
pub async fn edit_form(
    State(app): State<Arc<App>>,
    admin: Admin,
    Path(key): Path<String>,
) -> Response {
    let Ok(key) = key.parse::<i64>() else {
        return missing(&app, &admin);
    };
    match app.store().service(key).await {
        Ok(Some(s)) => form_page(
            &app,
            &admin,
            StatusCode::OK,
            Some(key),
            service_row(&s),
            None,
        ),
        Ok(None) => missing(&app, &admin),
        Err(e) => problem_page(&app, &admin, e.into()),
    }
}

fn missing(app: &App, admin: &Admin) -> Response {
    error_page(
        app,
        Some(admin),
        StatusCode::NOT_FOUND,
        "No such service",
        "There is no registered service with this key.",
    )
}

/// The service a form describes; `tokens` and `keys` are left to the caller.
fn input_of(form: &Form) -> ServiceInput {
    let patterns = |name: &str| {
        form.all(name)
            .into_iter()
            .filter_map(Pattern::from_slug)
            .collect::<Vec<_>>()
    };
    ServiceInput {
        name: form.get("name").unwrap_or_default().to_owned(),
        id: form.get("id").unwrap_or_default().to_owned(),
        inbox: form.non_empty("inbox").map(str::to_owned),
        enabled: form.get("enabled") == Some("on"),
        inbound_patterns: patterns("inbound"),
        outbound_patterns: patterns("outbound"),
        cidrs: form
            .get("cidrs")
            .unwrap_or_default()
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        tokens: None,
        signature_policy: form
            .get("signature_policy")
            .and_then(|p| p.parse().ok())
            .unwrap_or_default(),
        keys: None,
        key_set_url: form.non_empty("key_set_url").map(|u| u.trim().to_owned()),
    }
}

fn input_values(input: &ServiceInput, keys_text: &str) -> Value {
    json!({
        "name": input.name, "id": input.id, "inbox": input.inbox, "enabled": input.enabled,
        "inbound": input.inbound_patterns.iter().map(|p| p.slug()).collect::<Vec<_>>(),
        "outbound": input.outbound_patterns.iter().map(|p| p.slug()).collect::<Vec<_>>(),
        "cidrs": input.cidrs,
        "signature_policy": input.signature_policy.as_str(),
        "keys_text": keys_text,
        "key_set_url": input.key_set_url,
    })
}

/// What a person should read for a store error on a service form; `None` for a server
/// failure.
fn form_error(e: &StoreError) -> Option<String> {
    match e {
        StoreError::Invalid { field, message } => Some(format!("{field}: {message}")),
        StoreError::Conflict { .. } => Some(e.to_string()),
        _ => None,
    }
}

/// `POST /admin/services`: register.
pub async fn create(
    State(app): State<Arc<App>>,
    CheckedForm { admin, form }: CheckedForm,
) -> Response {
    let mut input = input_of(&form);
    if input.name.is_empty() {
        input.name = input.id.clone();
    }
    save(&app, &admin, None, input, &form).await
}

/// `POST /admin/services/{key}`: change (tokens are kept).
pub async fn update(
    State(app): State<Arc<App>>,
    Path(key): Path<i64>,
    CheckedForm { admin, form }: CheckedForm,
) -> Response {
    save(&app, &admin, Some(key), input_of(&form), &form).await
}

async fn save(
    app: &App,
    admin: &Admin,
    key: Option<i64>,
    mut input: ServiceInput,
    form: &Form,
) -> Response {
    let keys_text = form.get("keys").unwrap_or_default().to_owned();
    match keys_of(form).and_then(|keys| match policy_problem(form) {
        Some(problem) => Err(problem),
        None => Ok(keys),
    }) {
        Ok(keys) => input.keys = keys,
        Err(message) => {
            let values = input_values(&input, &keys_text);
            return form_page(
                app,
                admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                key,
                values,
                Some(message),
            );
        }
    }
    if let Some(k) = key {
        match app.store().service(k).await {
            Ok(Some(_)) => {}
            Ok(None) => return missing(app, admin),
            Err(e) => return problem_page(app, admin, e.into()),
        }
    }
    match app.save_service(key, &input).await {
        // Saved; the admin sees why no key came from the URL.
        Ok(saved) => match saved.key_set_error {
            Some(e) => form_page(
                app,
                admin,
                StatusCode::OK,
                Some(saved.service.key),
                service_row(&saved.service),
                Some(format!("Saved, but its key set could not be fetched: {e}")),
            ),
            None => redirect(&format!("{}/services?done=saved", root(app))),
        },
        Err(e) => match form_error(&e) {
            Some(message) => form_page(
                app,
                admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                key,
                input_values(&input, &keys_text),
                Some(message),
            ),
            None => problem_page(app, admin, e.into()),
        },
    }
}

/// `POST /admin/services/{key}/enabled` with `enabled=on|off`.
pub async fn set_enabled(
    State(app): State<Arc<App>>,
    Path(key): Path<i64>,
    CheckedForm { admin, form }: CheckedForm,
) -> Response {
    let enabled = form.get("enabled") == Some("on");
    let result = async {
        let s = match app.store().set_service_enabled(key, enabled).await {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        app.store().release_for(&s).await?;
        Ok::<_, StoreError>(Some(s))
    }
    .await;
    match result {
        Ok(Some(_)) => redirect(&format!(
            "{}/services?done={}",
            root(&app),
            if enabled { "enabled" } else { "disabled" }
        )),
        Ok(None) => missing(&app, &admin),
        Err(e) => problem_page(&app, &admin, e.into()),
    }
}

/// `POST /admin/services/{key}/delete`.
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(key): Path<i64>,
    CheckedForm { admin, .. }: CheckedForm,
) -> Response {
    match app.store().remove_service(key).await {
        Ok(true) => redirect(&format!("{}/services?done=removed", root(&app))),
        Ok(false) => missing(&app, &admin),
        Err(e) => problem_page(&app, &admin, e.into()),
    }
}

/// `POST /admin/services/{key}/token`: replaces the service's tokens with a new one, shown
/// once.
pub async fn rotate_token(
    State(app): State<Arc<App>>,
    Path(key): Path<i64>,
    CheckedForm { admin, .. }: CheckedForm,
) -> Response {
    let current = match app.store().service(key).await {
        Ok(Some(s)) => s,
        Ok(None) => return missing(&app, &admin),
        Err(e) => return problem_page(&app, &admin, e.into()),
    };
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let input = ServiceInput {
        tokens: Some(vec![token.clone()]),
        ..current.to_input()
    };
    match app.store().update_service(key, &input).await {
        Ok(s) => render(
            &app,
            Some(&admin),
            StatusCode::OK,
            "token.html",
            json!({"nav": "services", "service": service_row(&s), "token": token}),
        ),
        Err(e) => problem_page(&app, &admin, e.into()),
    }
}

/// `POST /admin/services/trust`: registers an unknown sender from its quarantined
/// notifications. Without `confirm=yes` it only shows what the sender's notifications came
/// with (every distinct claimed inbox and address) and asks the admin to choose the inbox and
/// the ranges; nothing is registered from what a sender merely claims. With it, the service
/// is registered, enabled, with that inbox and those ranges, and what its evidence supports
/// is released.
pub async fn trust(
    State(app): State<Arc<App>>,
    CheckedForm { admin, form }: CheckedForm,
) -> Response {
    let id = form.get("id").unwrap_or_default().to_owned();
    let sender = match app.store().unknown_senders().await {
        Ok(all) => all.into_iter().find(|u| u.id == id),
        Err(e) => return problem_page(&app, &admin, e.into()),
    };
    let inbox = form
        .non_empty("inbox_other")
        .or(form.non_empty("inbox"))
        .map(str::to_owned);
    let mut cidrs: Vec<String> = form
        .all("cidrs")
        .iter()
        .map(|c| c.trim().to_owned())
        .collect();
    cidrs.extend(
        form.get("more_cidrs")
            .unwrap_or_default()
            .split(['\n', ',', ' '])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
    );
    let with_token = form.get("token") == Some("yes");
    let problem = match () {
        _ if form.get("confirm") != Some("yes") => None,
        _ if inbox.is_none() => Some("Choose the service's inbox."),
        _ if cidrs.is_empty() && !with_token => Some(
            "Choose the addresses it sends from, or require a token: a claimed inbox is not evidence, anyone can claim it.",
        ),
        _ => {
            let token = with_token.then(|| {
                format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                )
            });
            let input = ServiceInput {
                name: form.non_empty("name").unwrap_or(&id).to_owned(),
                id: id.clone(),
                inbox,
                enabled: true,
                inbound_patterns: Vec::new(),
                outbound_patterns: Vec::new(),
                cidrs,
                tokens: token.clone().map(|t| vec![t]),
                ..ServiceInput::default()
            };
            let result = async {
                let s = app.store().add_service(&input).await?;
                app.store().release_for(&s).await.map(|_| s)
            }
            .await;
            return match result {
                // The token is shown once, as "New token" does.
                Ok(s) if token.is_some() => render(
                    &app,
                    Some(&admin),
                    StatusCode::OK,
                    "token.html",
                    json!({"nav": "services", "service": service_row(&s), "token": token}),
                ),
                Ok(_) => redirect(&format!("{}/services?done=trusted", root(&app))),
                Err(e) => match form_error(&e) {
                    Some(message) => error_page(
                        &app,
                        Some(&admin),
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Cannot trust this sender",
                        &message,
                    ),
                    None => problem_page(&app, &admin, e.into()),
                },
            };
        }
    };
    let Some(sender) = sender else {
        return error_page(
            &app,
            Some(&admin),
            StatusCode::NOT_FOUND,
            "No such sender",
            "No quarantined notification names this origin, or it is registered already.",
        );
    };
    let mut inboxes: Vec<&str> = Vec::new();
    let mut addresses: Vec<String> = Vec::new();
    for s in &sender.seen {
        if let Some(i) = s.inbox.as_deref()
            && !inboxes.contains(&i)
        {
            inboxes.push(i);
        }
        if let Some(ip) = s
            .remote_addr
            .as_deref()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        {
            let cidr = match ip {
                std::net::IpAddr::V4(_) => format!("{ip}/32"),
                std::net::IpAddr::V6(_) => format!("{ip}/128"),
            };
            if !addresses.contains(&cidr) {
                addresses.push(cidr);
            }
        }
    }
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(
        &app,
        Some(&admin),
        status,
        "trust.html",
        json!({
            "nav": "services",
            "id": sender.id,
            "name": form.non_empty("name").unwrap_or(&sender.id),
            "count": sender.count,
                        "seen": crate::views::UnknownSenderView::from(&sender).seen,
            "inboxes": inboxes,
            "addresses": addresses,
            "problem": problem,
        }),
    )
}
