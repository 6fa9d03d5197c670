#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The findings of the security review of the running binary (SPEC §18), one test each
//! through the real server. docs/SECURITY.md ("Reviewed") lists them.
mod common;

use std::time::Duration;

use common::smtp::{self, SmtpServer};
use common::*;
use doorman::config::{Application, Cidr};
use doorman::domain::people::users;
use doorman::model::{Role, UserStatus};
use serde_json::{Value, json};

fn loopback_is_a_proxy(c: &mut doorman::Config) {
    c.server.trusted_proxies = vec![Cidr("127.0.0.1/32".parse().unwrap())];
}

fn count(s: &TestServer, sql: &str) -> i64 {
    s.sql_i64(sql)
}

// ---------------------------------------------------------------- 1. /metrics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_and_tell_no_account_facts() {
    let s = start_with(|c| c.metrics.token = "scrape-me-0123456789".into()).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let off = s.user("Acme", "off@acme.test", Role::User).await;
    users::set_status(&s.state, off.id, UserStatus::Disabled, None)
        .await
        .unwrap();
    for (email, password) in [
        ("nobody@acme.test", PASSWORD),
        ("ann@acme.test", "wrong password"),
        ("off@acme.test", PASSWORD),
    ] {
        let (status, _) = s.login_raw(email, password, CHROME_MAC, None, None).await;
        assert_eq!(status, 401, "{email}");
    }
    s.token("ann@acme.test").await;

    let scrape = |auth: Option<&'static str>| {
        let mut req = client().get(s.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    assert_eq!(scrape(None).await.0, 404, "no token, even from loopback");
    assert_eq!(scrape(Some("Bearer wrong")).await.0, 404);
    assert_eq!(scrape(Some("scrape-me-0123456789")).await.0, 404);
    let (status, text) = scrape(Some("Bearer scrape-me-0123456789")).await;
    assert_eq!(status, 200, "{text}");
    let outcomes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("doorman_sign_ins_total{"))
        .collect();
    assert_eq!(
        outcomes,
        [
            r#"doorman_sign_ins_total{outcome="failure"} 3"#,
            r#"doorman_sign_ins_total{outcome="success"} 1"#,
        ],
        "{text}"
    );
    for leak in ["unknown_email", "wrong_password", "user_disabled"] {
        assert!(!text.contains(leak), "{leak} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_metrics_are_for_local_scrapes_only() {
    let s = start().await;
    let get = |forwarded: Option<(&'static str, &'static str)>| {
        let mut req = client().get(s.url("/metrics"));
        if let Some((h, v)) = forwarded {
            req = req.header(h, v);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(None).await, 200, "a loopback scrape");
    // What a proxy on this host forwards comes from loopback too.
    assert_eq!(get(Some(("x-forwarded-for", "203.0.113.7"))).await, 404);
    assert_eq!(get(Some(("forwarded", "for=203.0.113.7"))).await, 404);
    assert_eq!(get(Some(("x-real-ip", "203.0.113.7"))).await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_gauges_are_read_at_most_once_per_cache_period() {
    let s = start().await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let active = || async {
        let text = client()
            .get(s.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("doorman_active_sessions ")?
                    .parse::<i64>()
                    .ok()
            })
            .unwrap()
    };
    assert_eq!(active().await, 0);
    s.token("ann@acme.test").await;
    // Within the default 5 s the scrape answers from the first one's read.
    assert_eq!(active().await, 0, "served from the cache");
}

// ---------------------------------------------------------------- 2. password race

/// Signs in as `email` in a loop from `n` tasks until `stop` is set, counting the
/// answers (`answered`) and the sessions obtained (`signed`); returns every token
/// obtained.
fn sign_in_loops(
    s: &TestServer,
    email: &'static str,
    n: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    signed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    (0..n)
        .map(|_| {
            let url = s.url("/api/v1/login");
            let stop = stop.clone();
            let (answered, signed) = (answered.clone(), signed.clone());
            tokio::spawn(async move {
                let mut tokens = Vec::new();
                let http = client();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let resp = http
                        .post(&url)
                        .json(&json!({"email": email, "password": PASSWORD}))
                        .send()
                        .await
                        .unwrap();
                    let (status, body) = status_json(resp).await;
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    match status {
                        201 => {
                            tokens.push(body["token"].as_str().unwrap().to_string());
                            signed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        401 => {}
                        other => panic!("sign-in answered {other}: {body}"),
                    }
                }
                tokens
            })
        })
        .collect()
}

async fn all_tokens(loops: Vec<tokio::task::JoinHandle<Vec<String>>>) -> Vec<String> {
    let mut all = Vec::new();
    for l in loops {
        all.extend(l.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_racing_a_password_change_or_a_disable_leave_no_session_alive() {
    let s = start_with(|c| c.security.login_rate_limit.failures = 1_000_000).await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    for round in 0..4 {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let answered = std::sync::Arc::new(AtomicUsize::new(0));
        let signed = std::sync::Arc::new(AtomicUsize::new(0));
        let loops = sign_in_loops(
            &s,
            "ann@acme.test",
            6,
            stop.clone(),
            answered.clone(),
            signed.clone(),
        );
        // The change comes while the loops are signing in.
        assert!(
            eventually(Duration::from_secs(20), || async {
                signed.load(SeqCst) >= 6
            })
            .await,
            "round {round}: the loops sign in"
        );
        let (state, id) = (s.state.clone(), ann.id);
        let password_round = round % 2 == 0;
        if password_round {
            tokio::task::spawn_blocking(move || {
                users::set_password_blocking(&state, id, "plum kettle orbit 0", None)
            })
            .await
            .unwrap()
            .unwrap();
        } else {
            users::set_status(&state, id, UserStatus::Disabled, None)
                .await
                .unwrap();
        }
        // And they go on for a while after it.
        let at_change = answered.load(SeqCst);
        assert!(
            eventually(Duration::from_secs(20), || async {
                answered.load(SeqCst) >= at_change + 12
            })
            .await,
            "round {round}: the loops go on after the change"
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let tokens = all_tokens(loops).await;
        assert!(!tokens.is_empty(), "round {round}: the loops signed in");
        if !password_round {
            // Enabled again: nothing signed in before may come back with it.
            users::set_status(&s.state, id, UserStatus::Active, None)
                .await
                .unwrap();
        }
        let mut alive_after = 0;
        for t in &tokens {
            if alive(&s, t).await {
                alive_after += 1;
            }
        }
        assert_eq!(
            alive_after,
            0,
            "round {round}: {alive_after} of {} sessions outlived the change",
            tokens.len()
        );
        if password_round {
            let (state, id) = (s.state.clone(), ann.id);
            tokio::task::spawn_blocking(move || {
                users::set_password_blocking(&state, id, PASSWORD, None)
            })
            .await
            .unwrap()
            .unwrap();
        }
    }
}

// ------------------------------------------------ 3. guessing the current password

async fn password_form(s: &TestServer, b: &reqwest::Client, current: &str, new: &str) -> Page {
    let page = b
        .get(s.url("/settings/profile"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf").expect("csrf on the password page");
    post_form(
        b,
        s,
        "/settings/profile/password",
        &[
            ("csrf", &csrf),
            ("current", current),
            ("new", new),
            ("keep_current", "yes"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_of_the_current_password_share_the_sign_in_limit_and_are_recorded() {
    let s = start_with(|c| c.security.login_rate_limit.failures = 3).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;
    for i in 0..3 {
        let p = password_form(&s, &b, &format!("guess {i}"), "plum kettle orbit 1").await;
        assert_eq!(p.status, 400, "guess {i}");
        assert!(
            p.body.contains("current password is not right"),
            "{}",
            p.body
        );
    }
    let p = password_form(&s, &b, PASSWORD, "plum kettle orbit 1").await;
    assert_eq!(
        p.status, 429,
        "the right password after the limit: {}",
        p.body
    );
    assert!(p.body.contains("Try again"), "{}", p.body);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM login_records WHERE reason = 'wrong_current_password' AND success = 0"
        ),
        3
    );
    // The same budget as sign-in: the email is limited there too.
    let (status, body) = s
        .login_raw("ann@acme.test", PASSWORD, CHROME_MAC, None, None)
        .await;
    assert_eq!(status, 429, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_emails_a_notice() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let s = start_with(move |c| c.mail.smtp_url = url).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let b = browser();
    browser_login(&s, &b, "ann@acme.test").await;
    let p = password_form(&s, &b, PASSWORD, "plum kettle orbit 2").await;
    assert_eq!(p.status, 303, "{}", p.body);
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "one notice");
    let subject = smtp::header(&got[0], "subject").unwrap();
    assert_eq!(subject, "Your Doorman password was changed");
    let text = smtp::text_part(&got[0]);
    assert!(
        text.contains("password of your Doorman account was just changed"),
        "{text}"
    );
    assert!(
        !text.contains("plum kettle orbit 2"),
        "no secret in the mail"
    );
    assert!(
        !text.contains("/alerts/end"),
        "a notice has no end-session link"
    );
}

// ---------------------------------------------------------------- 4. rank

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_see_end_or_read_the_history_of_the_owners_sessions() {
    let s = start().await;
    let boss = s.user("Acme", "boss@acme.test", Role::Owner).await;
    s.user("Acme", "adam@acme.test", Role::Admin).await;
    let ann = s.user("Acme", "ann@acme.test", Role::User).await;
    let owner = login(&s, "boss@acme.test", CHROME_MAC).await;
    let user = login(&s, "ann@acme.test", CHROME_MAC).await;
    let admin = s.token("adam@acme.test").await;

    let (status, list) = s.get("/api/v1/admin/sessions", &admin).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&user.id.as_str()), "{list}");
    assert!(
        !ids.contains(&owner.id.as_str()),
        "the owner's session is listed: {list}"
    );
    let (_, by_user) = s
        .get(
            &format!("/api/v1/admin/sessions?user_id={}", boss.id),
            &admin,
        )
        .await;
    assert_eq!(by_user["items"], json!([]), "{by_user}");
    let (_, by_email) = s.get("/api/v1/admin/sessions?q=boss", &admin).await;
    assert_eq!(by_email["items"], json!([]), "{by_email}");

    let missing = |(status, body): (u16, Value), what: &str| {
        assert_eq!(status, 404, "{what}: {body}");
        assert_eq!(body["error"], "not_found", "{what}: {body}");
    };
    missing(
        s.delete(&format!("/api/v1/admin/sessions/{}", owner.id), &admin)
            .await,
        "end the owner's session",
    );
    missing(
        s.delete(&format!("/api/v1/admin/users/{}/sessions", boss.id), &admin)
            .await,
        "end all the owner's sessions",
    );
    missing(
        s.get(
            &format!("/api/v1/login-records?user_id={}", boss.id),
            &admin,
        )
        .await,
        "the owner's history",
    );
    missing(
        s.patch(
            &format!("/api/v1/admin/users/{}", boss.id),
            &admin,
            json!({"name": "Renamed"}),
        )
        .await,
        "change the owner",
    );
    let (status, ended) = s.delete("/api/v1/admin/sessions?q=acme.test", &admin).await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["ended"], 1, "only ann's session: {ended}");
    assert!(
        alive(&s, &owner.token).await,
        "the owner is still signed in"
    );
    assert!(!alive(&s, &user.token).await);
    // In rank still works.
    let (status, _) = s
        .get(&format!("/api/v1/login-records?user_id={}", ann.id), &admin)
        .await;
    assert_eq!(status, 200);
}

// ---------------------------------------------------------------- 5. flood

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_attempts_leave_one_record_a_minute() {
    let s = start_with(|c| c.security.login_rate_limit.failures = 2).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    for _ in 0..2 {
        let (status, _) = s
            .login_raw("ann@acme.test", "wrong", CHROME_MAC, None, None)
            .await;
        assert_eq!(status, 401);
    }
    for _ in 0..60 {
        let (status, _) = s
            .login_raw("ann@acme.test", "wrong", CHROME_MAC, None, None)
            .await;
        assert_eq!(status, 429);
    }
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM login_records WHERE reason = 'rate_limited'"
        ),
        1
    );
    assert_eq!(count(&s, "SELECT count(*) FROM login_records"), 3);
}

// ---------------------------------------------------------------- 6. setup token

/// The one-time setup token, once the server has made it (at start, in the background).
async fn setup_token(s: &TestServer) -> String {
    let token = || s.state.setup_token.lock().unwrap().clone();
    eventually(Duration::from_secs(20), || async { token().is_some() }).await;
    token().expect("no setup token")
}

fn setup_form(token: &str, email: &str) -> Vec<(&'static str, String)> {
    vec![
        ("token", token.to_string()),
        ("account", "Ops".into()),
        ("name", "Olivia".into()),
        ("email", email.to_string()),
        ("password", "owner password 1".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_token_creates_one_owner_even_under_concurrent_posts() {
    let s = start().await;
    let token = setup_token(&s).await;
    let posts = (0..3).map(|i| {
        let (url, form) = (
            s.url("/setup"),
            setup_form(&token, &format!("o{i}@ops.test")),
        );
        tokio::spawn(async move {
            client()
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for p in posts.collect::<Vec<_>>() {
        statuses.push(p.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [303, 404, 404]);
    assert_eq!(
        count(&s, "SELECT count(*) FROM users WHERE role = 'owner'"),
        1
    );
    let again = client()
        .post(s.url("/setup"))
        .form(&setup_form(&token, "late@ops.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_token_is_refused_once_an_owner_exists() {
    let s = start().await;
    let token = setup_token(&s).await;
    // An owner made another way (the CLI does the same through the domain).
    s.user("Ops", "cli@ops.test", Role::Owner).await;
    let page = client()
        .get(s.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    let post = client()
        .post(s.url("/setup"))
        .form(&setup_form(&token, "second@ops.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 404);
    assert_eq!(
        count(&s, "SELECT count(*) FROM users WHERE role = 'owner'"),
        1
    );
}

// ---------------------------------------------------------------- 7. rate limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_addresses_of_one_slash_64_share_one_budget() {
    let s = start_with(|c| {
        loopback_is_a_proxy(c);
        c.security.login_rate_limit.failures = 3;
    })
    .await;
    for (i, ip) in ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:ffff::3"]
        .into_iter()
        .enumerate()
    {
        let (status, _) = s
            .login_raw(
                &format!("x{i}@acme.test"),
                "wrong",
                CHROME_MAC,
                Some(ip),
                None,
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, _) = s
        .login_raw(
            "y@acme.test",
            "wrong",
            CHROME_MAC,
            Some("2001:db8:5:6::99"),
            None,
        )
        .await;
    assert_eq!(status, 429, "another address of the same /64");
    let (status, _) = s
        .login_raw(
            "y@acme.test",
            "wrong",
            CHROME_MAC,
            Some("2001:db8:5:7::1"),
            None,
        )
        .await;
    assert_eq!(status, 401, "another /64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_device_signs_in_despite_an_attackers_failures() {
    let s = start_with(|c| {
        loopback_is_a_proxy(c);
        c.security.login_rate_limit.failures = 3;
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let first = s
        .api_login_from("ann@acme.test", CHROME_MAC, Some("81.2.69.142"), None)
        .await;
    let device = first["device_id"].as_str().unwrap().to_string();
    for ip in ["9.9.9.1", "9.9.9.2", "9.9.9.3", "9.9.9.4"] {
        let (status, _) = s
            .login_raw("ann@acme.test", "guess", FIREFOX_WIN, Some(ip), None)
            .await;
        assert!(status == 401 || status == 429);
    }
    let (status, _) = s
        .login_raw("ann@acme.test", PASSWORD, CHROME_MAC, Some("8.8.8.8"), None)
        .await;
    assert_eq!(
        status, 429,
        "a new device is refused while the email is limited"
    );
    let (status, body) = s
        .login_raw(
            "ann@acme.test",
            PASSWORD,
            CHROME_MAC,
            Some("8.8.4.4"),
            Some(&device),
        )
        .await;
    assert_eq!(status, 201, "the known device from a new address: {body}");
    // A made-up device id is no way around the limit.
    let fake = "0123456789abcdef0123456789abcdef";
    let (status, _) = s
        .login_raw(
            "ann@acme.test",
            PASSWORD,
            CHROME_MAC,
            Some("8.8.4.4"),
            Some(fake),
        )
        .await;
    assert_eq!(status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_correct_sign_ins_from_one_address_never_refuse_each_other() {
    let s = start_with(|c| c.security.login_rate_limit.failures = 10).await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    let logins = (0..14).map(|_| {
        let url = s.url("/api/v1/login");
        tokio::spawn(async move {
            client()
                .post(url)
                .json(&json!({"email": "ann@acme.test", "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for l in logins.collect::<Vec<_>>() {
        statuses.push(l.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_from_an_untrusted_peer_is_warned_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("doorman.sqlite3");
    let d = process::Doorman::start(&db, &[]).await;
    for _ in 0..3 {
        let resp = client()
            .post(d.url("/api/v1/login"))
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({"email": "a@b.test", "password": "whatever"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    // Each request's log lines are in once its refusal is: they come in order, on one
    // stream, the warning before the refusal.
    let logged = eventually(Duration::from_secs(20), || async {
        d.log_count("sign-in refused") >= 3
    })
    .await;
    assert!(logged, "{}", d.log_text());
    assert_eq!(d.log_count("server.trusted_proxies"), 1, "{}", d.log_text());
}

// ---------------------------------------------------------------- 8. end-session link

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_session_link_works_while_the_session_lives() {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let s = start_with(move |c| {
        c.mail.smtp_url = url;
        c.server.public_url = "http://doorman.test".into();
        c.sessions.idle_timeout = Duration::from_secs(3);
        c.sessions.touch_interval = Duration::from_secs(1);
        c.sessions.max_lifetime = Duration::from_secs(3600);
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    s.token("ann@acme.test").await;
    let other = login(&s, "ann@acme.test", FIREFOX_WIN).await;
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    let text = smtp::text_part(&got[0]);
    let marker = "http://doorman.test/alerts/end?t=";
    let start = text.find(marker).expect("link") + marker.len();
    let t: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    // Kept alive past the idle timeout it was signed in with.
    for _ in 0..5 {
        assert!(alive(&s, &other.token).await);
        // Time is the subject: used once a second, for longer than the idle timeout.
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let page = client()
        .get(s.url(&format!("/alerts/end?t={t}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let resp = client()
        .post(s.url("/alerts/end"))
        .form(&[("t", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Session ended"));
    assert!(!alive(&s, &other.token).await);
}

// ---------------------------------------------------------------- 9. rd

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_address_that_climbs_out_of_the_application_is_not_followed() {
    let s = start_with(|c| {
        c.applications = vec![Application {
            name: "Wiki".into(),
            url: "https://wiki.example.com/app".into(),
            ..Default::default()
        }]
    })
    .await;
    s.user("Acme", "ann@acme.test", Role::User).await;
    for (rd, expected) in [
        (
            "https://wiki.example.com/app/../../../x",
            "/settings/security/sessions",
        ),
        (
            "https://wiki.example.com/app/%2e%2e/admin",
            "/settings/security/sessions",
        ),
        (
            "https://wiki.example.com/app/./page",
            "https://wiki.example.com/app/page",
        ),
    ] {
        let b = browser();
        let page = b
            .get(s.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = form_value(&page, "csrf").unwrap();
        let p = post_form(
            &b,
            &s,
            "/login",
            &[
                ("email", "ann@acme.test"),
                ("password", PASSWORD),
                ("csrf", &csrf),
                ("rd", rd),
            ],
        )
        .await;
        assert_eq!(p.status, 303, "{rd}");
        assert_eq!(p.location, expected, "{rd}");
    }
}

// ---------------------------------------------------------------- 10. file modes

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_its_log_its_directory_and_the_geoip_file_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").join("doorman");
    let db = data.join("doorman.sqlite3");
    // The real binary: the GeoIP file is unpacked once per process. It runs in `dir`
    // and creates `data/doorman` itself.
    let storage = ("DOORMAN_STORAGE__PATH", db.display().to_string());
    let d = process::Doorman::start(&dir.path().join("unused.sqlite3"), &[storage]).await;
    let (status, _) = d.get("/api/v1/me", "no-such-token").await;
    assert_eq!(status, 401);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "directory");
    assert_eq!(mode(data.parent().unwrap()), 0o700, "created parent");
    assert_eq!(mode(&db), 0o600, "database");
    let wal = data.join("doorman.sqlite3-wal");
    assert!(wal.exists(), "WAL mode keeps a log beside the database");
    assert_eq!(mode(&wal), 0o600, "write-ahead log");
    let geo: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".mmdb"))
        .collect();
    assert!(
        !geo.is_empty(),
        "the GeoIP file is unpacked beside the database"
    );
    for g in geo {
        assert_eq!(mode(&g.path()), 0o600, "{:?}", g.path());
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_readable_database_is_made_private_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let s = start().await;
    let db = s.db_path.clone();
    let s = {
        let mut s = s;
        s.stop().await;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        s.restart().await
    };
    let mode = std::fs::metadata(&s.db_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

// ---------------------------------------------------------------- 11. headers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_installs_send_hsts_and_the_docs_get_their_own_policy() {
    let plain = start().await;
    let resp = client().get(plain.url("/login")).send().await.unwrap();
    assert!(resp.headers().get("strict-transport-security").is_none());

    let s = start_with(|c| c.server.public_url = "https://doorman.example.com".into()).await;
    let resp = client().get(s.url("/login")).send().await.unwrap();
    let hsts = resp.headers()["strict-transport-security"]
        .to_str()
        .unwrap();
    assert!(hsts.starts_with("max-age=31536000"), "{hsts}");

    let docs = client().get(s.url("/api/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let csp = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    for part in [
        "default-src 'none'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_fails_closed_when_the_identity_cannot_be_a_header() {
    let s = start().await;
    s.user("Acme", "zoe@acme.test", Role::User).await;
    let t = s.token("zoe@acme.test").await;
    // A line break cannot go into a header; validation keeps such emails out, so the
    // row is changed behind Doorman's back.
    s.sql_exec("UPDATE users SET email = 'zoe@acme.test' || char(10) || 'x-doorman-user: 1'");
    let resp = client()
        .get(s.url("/auth/verify"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("x-doorman-user").is_none());
    assert!(resp.headers().get("x-doorman-email").is_none());
}
