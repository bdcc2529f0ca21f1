//! `docs/patterns.md` cannot go stale: for each of its twelve sections, the payload validates
//! as that pattern with no problem at all and a real inbox accepts it; the API body is
//! accepted by the outbox (a reply's Offer filled in from the store); and the command
//! delivers over HTTP. (Its Rust blocks run as coar-model's doc tests.)

mod common;

use std::path::Path;

use coar_model::{Notification, Pattern};
use reqwest::StatusCode;
use serde_json::Value;

const TOKEN: &str = "the-admin-token-for-pattern-docs";
const BIN: &str = env!("CARGO_BIN_EXE_coar-notify");

/// One `## Title (`slug`)` section: its fenced blocks by info string.
#[derive(Debug, Default)]
struct Section {
    slug: String,
    text: String,
    blocks: Vec<(String, String)>,
}

impl Section {
    fn block(&self, info: &str) -> &str {
        let found: Vec<&str> = self
            .blocks
            .iter()
            .filter(|(i, _)| i == info)
            .map(|(_, b)| b.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{}: one ```{info} block", self.slug);
        found[0]
    }
}

fn sections() -> Vec<Section> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/patterns.md"))
            .unwrap();
    let mut sections: Vec<Section> = Vec::new();
    let mut fence: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some((info, body)) = &mut fence {
            if line == "```" {
                let (info, body) = (std::mem::take(info), std::mem::take(body));
                if let Some(s) = sections.last_mut() {
                    s.blocks.push((info, body));
                }
                fence = None;
            } else {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        }
        if let Some(info) = line.strip_prefix("```") {
            fence = Some((info.to_owned(), String::new()));
        } else if let Some(heading) = line.strip_prefix("## ") {
            let slug = heading
                .rsplit_once("(`")
                .and_then(|(_, s)| s.strip_suffix("`)"))
                .unwrap_or_else(|| panic!("a pattern heading names its slug: {heading}"));
            sections.push(Section {
                slug: slug.to_owned(),
                ..Section::default()
            });
        } else if let Some(s) = sections.last_mut() {
            s.text.push_str(line);
            s.text.push('\n');
        }
    }
    sections
}

/// A shell command as the document writes it: `\` continuations, double quotes.
fn words(command: &str) -> Vec<String> {
    let joined = command.replace("\\\n", " ");
    let mut words = Vec::new();
    let (mut word, mut quoted, mut any) = (String::new(), false, false);
    for c in joined.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_payload_api_body_and_command_in_the_patterns_guide_works() {
    let sections = sections();
    let slugs: Vec<&str> = sections.iter().map(|s| s.slug.as_str()).collect();
    let expected: Vec<&str> = Pattern::ALL
        .iter()
        .filter(|p| !p.is_legacy())
        .map(|p| p.slug())
        .collect();
    assert_eq!(slugs, expected, "one section per 1.0.1 pattern, in order");

    let db = common::db::create(common::db::Kind::Sqlite).await.unwrap();
    let s = common::start(
        &db.url,
        &[
            ("admin_token", TOKEN),
            ("trust", "accept"),
            ("workers", "0"),
        ],
    )
    .await;
    let inbox = s.url("/inbox");
    let dir = std::env::temp_dir().join(format!("coar-patterns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A signed-in dashboard session, as a person's browser has.
    let browser = common::http_session();
    common::sign_in(&s, &browser, TOKEN).await;
    let offer = sections[0].block("json");
    std::fs::write(dir.join("offer.json"), offer).unwrap();

    for section in &sections {
        let slug = section.slug.as_str();
        let pattern = Pattern::from_slug(slug).unwrap();
        // The payload: exactly this pattern, not a problem, not even a warning.
        let payload: Value = serde_json::from_str(section.block("json"))
            .unwrap_or_else(|e| panic!("{slug}: the payload is not JSON: {e}"));
        let n = Notification::from_value(payload.clone()).unwrap();
        assert_eq!(n.pattern(), Some(pattern), "{slug}");
        let report = n.validate();
        assert!(report.problems.is_empty(), "{slug}: {report}");
        // A real inbox takes it.
        let r = s
            .client
            .post(&inbox)
            .header("content-type", "application/ld+json")
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{slug}: {}",
            r.text().await.unwrap()
        );
        // The API body, through the outbox (replies find the Offer received above).
        let body: Value = serde_json::from_str(section.block("json outbox"))
            .unwrap_or_else(|e| panic!("{slug}: the API body is not JSON: {e}"));
        assert_eq!(
            body["pattern"], slug,
            "{slug}: the API body names its pattern"
        );
        let r = s
            .client
            .post(s.url("/api/outbox"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "{slug}: {}",
            r.text().await.unwrap()
        );
        // The command, delivered to this inbox.
        let command = section.block("sh");
        let mut args = words(command);
        assert_eq!(args.remove(0), "coar-notify", "{slug}: {command}");
        args.extend([
            "--to".to_owned(),
            inbox.clone(),
            "--allow-private-targets".to_owned(),
        ]);
        let out = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || {
                let mut c = std::process::Command::new(BIN);
                for (k, _) in std::env::vars() {
                    if k.starts_with("COAR_") {
                        c.env_remove(k);
                    }
                }
                c.current_dir(dir).args(&args).output().unwrap()
            }
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{slug}: {command}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The dashboard's way.
        assert!(
            section
                .text
                .contains(&format!("`/admin/compose?pattern={slug}`")),
            "{slug}: the section names its compose page"
        );
        let r = browser
            .get(s.url(&format!("/admin/compose?pattern={slug}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{slug}: the compose page");
        let page = r.text().await.unwrap();
        assert!(
            page.contains(pattern.title()) && page.contains("name=\"target_inbox\""),
            "{slug}: the compose page shows the pattern's form: {page}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    s.stop().await;
    common::db::drop_db(db).await;
}
