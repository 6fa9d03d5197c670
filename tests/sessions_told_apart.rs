#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Sessions told apart (SPEC §22): each row says which client it is (a browser, the
//! API, an application), shows the exact sign-in time as text, marks the session that
//! raised an alert, and says how it was signed in only when that is more than a password.
mod common;

use common::*;
use doorman::model::Role;

const PAGE: &str = "/settings/security/sessions";
const USERS: &str = "/settings/security/sessions/users";

async fn get(b: &reqwest::Client, s: &TestServer, path: &str) -> Page {
    read(b.get(s.url(path)).send().await.unwrap()).await
}

/// The table row that holds `id` (a session's public id).
fn row<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("value=\"{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}: {html}"));
    let start = html[..at].rfind("<tr").unwrap();
    let end = at + html[at..].find("</tr>").unwrap();
    &html[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_row_says_what_and_when() {
    let s = start().await;
    s.user("Acme", "ada@acme.test", Role::Admin).await;
    // The same device twice: once through the API, once in a browser.
    let api = login(&s, "ada@acme.test", CHROME_MAC).await;
    let web = browser();
    browser_login(&s, &web, "ada@acme.test").await;
    let (_, me) = status_json(web.get(s.url("/api/v1/me")).send().await.unwrap()).await;
    let web_id = me["session"]["id"].as_str().unwrap().to_string();
    let laptop = browser();
    browser_login(&s, &laptop, "ada@acme.test").await;

    // The API session raised an alert.
    let (pk, created) = {
        let c = rusqlite::Connection::open(&s.db_path).unwrap();
        c.query_row(
            "SELECT id, created_at FROM sessions WHERE public_id = ?1",
            [&api.id],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )
        .unwrap()
    };
    s.sql_exec(&format!(
        "INSERT INTO alerts (user_id, session_id, reasons, status, next_attempt_at, created_at, message_id, details)
         SELECT user_id, id, 'new_device', 'sent', created_at, created_at, 'm-1', '{{}}' FROM sessions WHERE id = {pk}"
    ));

    let p = get(&laptop, &s, PAGE).await;
    assert_eq!(p.status, 200);
    let api_row = row(&p.body, &api.id);
    let web_row = row(&p.body, &web_id);
    assert!(api_row.contains(">API<"), "{api_row}");
    assert!(web_row.contains(">Browser<"), "{web_row}");
    assert!(
        api_row.contains("We emailed you about this sign-in"),
        "{api_row}"
    );
    assert!(!web_row.contains("We emailed you"), "{web_row}");
    // The exact sign-in time is text, not only a tooltip.
    let exact = doorman::clock::utc(created);
    assert!(
        api_row.contains(&format!("<span class=\"exact\">{exact}</span>")),
        "{api_row}"
    );
    // A password alone is not said in every row.
    assert!(!p.body.contains("Signed in with Password<"), "{}", p.body);

    // The admin's view tells them apart the same way.
    let p = get(&laptop, &s, USERS).await;
    assert_eq!(p.status, 200);
    assert!(row(&p.body, &api.id).contains(">API<"));
    assert!(row(&p.body, &api.id).contains("We emailed you about this sign-in"));
    assert!(row(&p.body, &web_id).contains(">Browser<"));
}
