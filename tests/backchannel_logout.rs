#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Back-channel logout (SPEC §21) through the real server: ending a session sends each
//! application with a `backchannel_logout_uri` that holds a grant of it one logout token,
//! verified here against `/oidc/jwks`; failures are retried, a hanging receiver slows
//! nothing, pending logouts survive a restart. The applications are loopback receivers
//! in this test; tests/oidc_express.rs and tests/oidc_apache.rs use real ones.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::oidc::verified;
use common::process::HeldPort;
use common::smtp::{self, SmtpServer};
use common::*;
use doorman::config::{Application, OidcClient, SigningAlg};
use doorman::model::Role;
use poem::web::{Data, Form};
use poem::{EndpointExt, IntoResponse, Response, Route, handler, post};
use serde_json::{Value, json};

const CB: &str = "http://127.0.0.1:9/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Ok,
    Fail,
    Redirect,
    /// Accept the request and never answer (until the mode changes).
    Hang,
}

/// Loopback applications' back-channel endpoints: `/bc/{client}` records each logout
/// token it answers 200 to.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Vec<(String, String)>>>,
    tries: Arc<Mutex<usize>>,
}

impl Receiver {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
    fn url(&self, client: &str) -> String {
        format!("http://{}/bc/{client}", self.addr)
    }
    fn tokens(&self, client: &str) -> Vec<String> {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|(c, _)| c == client)
            .map(|(_, t)| t.clone())
            .collect()
    }
    async fn wait(&self, client: &str, n: usize, within: Duration) -> Vec<String> {
        let until = Instant::now() + within;
        loop {
            let got = self.tokens(client);
            if got.len() >= n || Instant::now() > until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[handler]
async fn receive(
    poem::web::Path(client): poem::web::Path<String>,
    Form(form): Form<HashMap<String, String>>,
    rx: Data<&Receiver>,
) -> Response {
    *rx.tries.lock().unwrap() += 1;
    let mode = *rx.mode.lock().unwrap();
    match mode {
        Mode::Hang => {
            while *rx.mode.lock().unwrap() == Mode::Hang {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            poem::http::StatusCode::GONE.into_response()
        }
        Mode::Fail => poem::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Mode::Redirect => Response::builder()
            .status(poem::http::StatusCode::FOUND)
            .header("location", "/elsewhere")
            .finish(),
        Mode::Ok => {
            let token = form.get("logout_token").cloned().unwrap_or_default();
            rx.got.lock().unwrap().push((client, token));
            poem::http::StatusCode::OK.into_response()
        }
    }
}

async fn receiver_on(port: HeldPort, mode: Mode) -> Receiver {
    let listener = port.listen();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let rx = Receiver {
        addr,
        mode: Arc::new(Mutex::new(mode)),
        got: Arc::default(),
        tries: Arc::default(),
    };
    let app = Route::new()
        .at("/bc/:client", post(receive))
        .data(rx.clone());
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).unwrap();
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    rx
}

fn client_of(id: &str, hash: &str, alg: SigningAlg, backchannel: Option<String>) -> Application {
    Application {
        name: id[..1].to_uppercase() + &id[1..],
        url: format!("https://{id}.example.test"),
        oidc: Some(OidcClient {
            client_id: id.into(),
            client_secret_hash: hash.into(),
            redirect_uris: vec![CB.into()],
            post_logout_redirect_uris: vec![format!("http://127.0.0.1:9/{id}/bye")],
            backchannel_logout_uri: backchannel.unwrap_or_default(),
            id_token_signed_response_alg: alg,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A provider with Grafana (ES256) and Notes (RS256) telling `rx`, and Plain (no
/// back-channel URI).
struct Op {
    s: TestServer,
    secret: String,
}

async fn op_at(port: u16) -> Op {
    let (secret, hash) = oidc_secret();
    let rx = format!("http://127.0.0.1:{port}");
    let s = start_with_port(move |c, p| {
        c.server.public_url = format!("http://127.0.0.1:{p}");
        c.applications = vec![
            client_of(
                "grafana",
                &hash,
                SigningAlg::ES256,
                Some(format!("{rx}/bc/grafana")),
            ),
            client_of(
                "notes",
                &hash,
                SigningAlg::RS256,
                Some(format!("{rx}/bc/notes")),
            ),
            client_of("plain", &hash, SigningAlg::ES256, None),
        ];
    })
    .await;
    Op { s, secret }
}

fn with_cookie(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "cookie",
        format!("doorman_session={token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .user_agent(CHROME_MAC)
        .build()
        .unwrap()
}

/// Signs the session `token` in to `client_id` (code flow with PKCE): its grant exists.
/// The token response.
async fn sign_in_to(o: &Op, token: &str, client_id: &str) -> Value {
    let mut url = url::Url::parse(&o.s.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("state", "st"),
        ("nonce", "n"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let page = read(with_cookie(token).get(url.as_str()).send().await.unwrap()).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let code = url::Url::parse(&page.location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code: {}", page.location));
    let resp = client()
        .post(o.s.url("/oidc/token"))
        .basic_auth(client_id, Some(&o.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Checks a logout token as a relying party would (Back-Channel Logout 1.0 §2.6).
async fn check_token(s: &TestServer, token: &str, client_id: &str, sid: &str) -> Value {
    let (header, c) = verified(s, token).await;
    assert_eq!(header["typ"], "logout+jwt", "{header}");
    let (_, discovery) = status_json(
        client()
            .get(s.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(c["iss"], discovery["issuer"], "{c}");
    assert_eq!(c["aud"], client_id, "{c}");
    assert_eq!(c["sid"], sid, "{c}");
    assert!(c["sub"].as_str().is_some_and(|x| !x.is_empty()), "{c}");
    assert!(c["jti"].as_str().is_some_and(|x| x.len() >= 16), "{c}");
    assert_eq!(
        c["events"],
        json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(c.get("nonce").is_none(), "{c}");
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert!(exp > iat && exp - iat <= 120, "{c}");
    c
}

async fn ann(o: &Op) -> Sess {
    o.s.user("Acme", "ann@acme.test", Role::User).await;
    login(&o.s, "ann@acme.test", CHROME_MAC).await
}

#[tokio::test]
async fn terminate_sends_one_verified_token_to_each_app_with_a_uri() {
    let rx = receiver_on(HeldPort::new(), Mode::Ok).await;
    let o = op_at(rx.addr.port()).await;
    let a = ann(&o).await;
    let other = login(&o.s, "ann@acme.test", CHROME_MAC).await;
    for c in ["grafana", "grafana", "notes", "plain"] {
        sign_in_to(&o, &a.token, c).await;
    }
    let (status, _) =
        o.s.delete(&format!("/api/v1/sessions/{}", a.id), &other.token)
            .await;
    assert!(status == 200 || status == 204, "{status}");
    let g = rx.wait("grafana", 1, Duration::from_secs(10)).await;
    let n = rx.wait("notes", 1, Duration::from_secs(10)).await;
    assert_eq!((g.len(), n.len()), (1, 1));
    let gc = check_token(&o.s, &g[0], "grafana", &a.id).await;
    let nc = check_token(&o.s, &n[0], "notes", &a.id).await;
    assert_eq!(gc["sub"], nc["sub"], "one person, one sub");
    let (gh, _) = verified(&o.s, &g[0]).await;
    let (nh, _) = verified(&o.s, &n[0]).await;
    assert_eq!(
        (gh["alg"].as_str(), nh["alg"].as_str()),
        (Some("ES256"), Some("RS256"))
    );
    // Two grants of Grafana, one token; Plain has no URI and gets none (it has no row).
    assert_eq!(o.s.sql_i64("SELECT count(*) FROM oidc_logouts"), 2);
    assert!(
        eventually(Duration::from_secs(5), || async {
            o.s.sql_i64("SELECT count(*) FROM events WHERE type = 'app.signed_out'") == 2
        })
        .await
    );
    let metrics = read(client().get(o.s.url("/metrics")).send().await.unwrap()).await;
    assert!(
        metrics
            .body
            .contains("doorman_logout_deliveries{status=\"pending\"} 0"),
        "{}",
        metrics.body
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.tokens("grafana").len(), 1, "delivered once");
}

#[tokio::test]
async fn failures_and_redirects_are_retried_with_a_fresh_token() {
    let rx = receiver_on(HeldPort::new(), Mode::Redirect).await;
    let o = op_at(rx.addr.port()).await;
    let a = ann(&o).await;
    sign_in_to(&o, &a.token, "grafana").await;
    let (status, _) = o.s.post("/api/v1/logout", &a.token, json!({})).await;
    assert!(status == 200 || status == 204, "{status}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            o.s.sql_i64(
                "SELECT count(*) FROM oidc_logouts WHERE attempts >= 1 AND last_error LIKE '%302%'",
            ) == 1
        })
        .await,
        "a redirect is a failure, not followed"
    );
    assert_eq!(
        o.s.sql_i64(
            "SELECT count(*) FROM events WHERE type = 'app.logout_failed' AND details LIKE '%302%'"
        ),
        1
    );
    assert_metric(&o, "doorman_logout_deliveries{status=\"pending\"} 1").await;
    rx.set(Mode::Fail);
    // Due again after the 5 s backoff; 503 is another failure.
    assert!(
        eventually(Duration::from_secs(15), || async {
            o.s.sql_i64(
                "SELECT count(*) FROM oidc_logouts WHERE attempts >= 2 AND last_error LIKE '%503%'",
            ) == 1
        })
        .await
    );
    rx.set(Mode::Ok);
    o.s.sql_exec("UPDATE oidc_logouts SET next_attempt_at = 0");
    let got = rx.wait("grafana", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    check_token(&o.s, &got[0], "grafana", &a.id).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            o.s.sql_i64("SELECT count(*) FROM oidc_logouts WHERE status = 'delivered'") == 1
        })
        .await
    );
    // Given up a day after the session ended.
    let b = login(&o.s, "ann@acme.test", CHROME_MAC).await;
    sign_in_to(&o, &b.token, "notes").await;
    rx.set(Mode::Fail);
    o.s.post("/api/v1/logout", &b.token, json!({})).await;
    o.s.sql_exec(
        "UPDATE oidc_logouts SET created_at = created_at - 86400 WHERE status = 'pending'",
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            o.s.sql_i64("SELECT count(*) FROM oidc_logouts WHERE status = 'failed'") == 1
        })
        .await
    );
    assert_metric(&o, "doorman_logout_deliveries{status=\"failed\"} 1").await;
}

/// Waits until `/metrics` shows `line`: its database gauges are read at most once per
/// `metrics.gauge_cache` (5 s), so a scrape soon after another shows the older figures.
async fn assert_metric(o: &Op, line: &str) {
    let scrape = || async {
        read(client().get(o.s.url("/metrics")).send().await.unwrap())
            .await
            .body
    };
    let shown = eventually(Duration::from_secs(15), || async {
        scrape().await.contains(line)
    })
    .await;
    assert!(shown, "{line} not in:\n{}", scrape().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_slows_nothing() {
    let rx = receiver_on(HeldPort::new(), Mode::Hang).await;
    let good = receiver_on(HeldPort::new(), Mode::Ok).await;
    let (secret, hash) = oidc_secret();
    let (hang_url, good_url) = (rx.url("grafana"), good.url("notes"));
    let s = start_with_port(move |c, p| {
        c.server.public_url = format!("http://127.0.0.1:{p}");
        c.applications = vec![
            client_of("grafana", &hash, SigningAlg::ES256, Some(hang_url)),
            client_of("notes", &hash, SigningAlg::ES256, Some(good_url)),
        ];
    })
    .await;
    let o = Op { s, secret };
    for i in 0..20 {
        o.s.user("Acme", &format!("u{i}@acme.test"), Role::User)
            .await;
    }
    // Twenty sessions, each signed in to both; all twenty end.
    let mut ids = Vec::new();
    for i in 0..20 {
        let sess = login(&o.s, &format!("u{i}@acme.test"), CHROME_MAC).await;
        sign_in_to(&o, &sess.token, "grafana").await;
        sign_in_to(&o, &sess.token, "notes").await;
        o.s.post("/api/v1/logout", &sess.token, json!({})).await;
        ids.push(sess.id);
    }
    // The other application hears of every one of them while Grafana hangs.
    let got = good.wait("notes", 20, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 20);
    // Sign-ins and the session check stay quick meanwhile.
    for i in 0..20 {
        let started = Instant::now();
        let sess = login(&o.s, &format!("u{i}@acme.test"), CHROME_MAC).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "sign-in took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let resp = client()
            .get(o.s.url("/auth/verify"))
            .bearer_auth(&sess.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "check took {:?}",
            started.elapsed()
        );
    }
    assert!(*rx.tries.lock().unwrap() >= 1, "Grafana was tried");
    assert_eq!(
        o.s.sql_i64(
            "SELECT count(*) FROM oidc_logouts WHERE client_id = 'grafana' AND status = 'delivered'"
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_logouts_survive_a_restart() {
    let port = HeldPort::new();
    let o = op_at(port.port()).await;
    let a = ann(&o).await;
    sign_in_to(&o, &a.token, "grafana").await;
    o.s.post("/api/v1/logout", &a.token, json!({})).await;
    assert_eq!(
        o.s.sql_i64("SELECT count(*) FROM oidc_logouts WHERE status = 'pending'"),
        1
    );
    let Op { s, secret } = o;
    let s = s.restart().await;
    let o = Op { s, secret };
    let rx = receiver_on(port, Mode::Ok).await;
    o.s.sql_exec("UPDATE oidc_logouts SET next_attempt_at = 0");
    let got = rx.wait("grafana", 1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1);
    check_token(&o.s, &got[0], "grafana", &a.id).await;
}

/// Waits for Grafana's logout token for the session `sid` and checks it.
async fn expect_logout(o: &Op, rx: &Receiver, sid: &str, way: &str) {
    let until = Instant::now() + Duration::from_secs(40);
    loop {
        for t in rx.tokens("grafana") {
            let (_, c) = verified(&o.s, &t).await;
            if c["sid"] == sid {
                check_token(&o.s, &t, "grafana", sid).await;
                return;
            }
        }
        assert!(Instant::now() < until, "{way}: no logout token for {sid}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A person's session signed in to Grafana.
async fn signed_in(o: &Op, email: &str) -> Sess {
    let sess = login(&o.s, email, CHROME_MAC).await;
    sign_in_to(o, &sess.token, "grafana").await;
    sess
}

/// A provider with Grafana (telling `rx`), a sweeper that runs every second, mail to
/// `smtp` when given, an admin of Acme (their session) and the people `who` of Acme
/// (`{who}@acme.test`, by name: their user ids).
async fn grafana_op(
    rx: &Receiver,
    smtp: Option<String>,
    who: &[&'static str],
) -> (Op, Sess, HashMap<&'static str, i64>) {
    let port = rx.addr.port();
    let (secret, hash) = oidc_secret();
    let s = start_with_port(move |c, p| {
        c.server.public_url = format!("http://127.0.0.1:{p}");
        c.privacy.sweep_interval = Duration::from_secs(1);
        if let Some(url) = smtp {
            c.mail.smtp_url = url;
        }
        c.applications = vec![client_of(
            "grafana",
            &hash,
            SigningAlg::ES256,
            Some(format!("http://127.0.0.1:{port}/bc/grafana")),
        )];
    })
    .await;
    let o = Op { s, secret };
    o.s.user("Acme", "admin@acme.test", Role::Admin).await;
    let admin = login(&o.s, "admin@acme.test", CHROME_MAC).await;
    let mut users = HashMap::new();
    for w in who {
        let u =
            o.s.user("Acme", &format!("{w}@acme.test"), Role::User)
                .await;
        users.insert(*w, u.id.0);
    }
    (o, admin, users)
}

fn ok(status: u16, way: &str) {
    assert!((200..300).contains(&status), "{way}: {status}");
}

// Every way a session ends (SPEC §21's list) sends Grafana a logout token for it: the
// person's own ways, an admin's, the sweeper's, and the links of emails.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_a_person_ends_a_session_sends_a_logout_token() {
    let rx = receiver_on(HeldPort::new(), Mode::Ok).await;
    let (o, _, _) = grafana_op(&rx, None, &["ann", "bob", "fay"]).await;

    // Sign-out.
    let a = signed_in(&o, "ann@acme.test").await;
    ok(
        o.s.post("/api/v1/logout", &a.token, json!({})).await.0,
        "sign-out",
    );
    expect_logout(&o, &rx, &a.id, "sign-out").await;

    // Terminate, from another session.
    let keep = login(&o.s, "ann@acme.test", CHROME_MAC).await;
    let a = signed_in(&o, "ann@acme.test").await;
    ok(
        o.s.delete(&format!("/api/v1/sessions/{}", a.id), &keep.token)
            .await
            .0,
        "terminate",
    );
    expect_logout(&o, &rx, &a.id, "terminate").await;

    // End all other sessions.
    let a = signed_in(&o, "ann@acme.test").await;
    ok(
        o.s.delete("/api/v1/sessions", &keep.token).await.0,
        "end all other sessions",
    );
    expect_logout(&o, &rx, &a.id, "end all other sessions").await;

    // A password change ends the other sessions.
    let b_keep = login(&o.s, "bob@acme.test", CHROME_MAC).await;
    let b = signed_in(&o, "bob@acme.test").await;
    ok(
        o.s.post(
            "/api/v1/me/password",
            &b_keep.token,
            json!({"current_password": PASSWORD, "new_password": "violet tractor umbrella"}),
        )
        .await
        .0,
        "password change",
    );
    expect_logout(&o, &rx, &b.id, "password change").await;

    // RP-initiated logout: asked once, then the session ends.
    let f = login(&o.s, "fay@acme.test", CHROME_MAC).await;
    let t = sign_in_to(&o, &f.token, "grafana").await;
    let b = with_cookie(&f.token);
    let mut url = url::Url::parse(&o.s.url("/oidc/end_session")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", t["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:9/grafana/bye")
        .append_pair("state", "bye");
    let page = read(b.get(url.as_str()).send().await.unwrap()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Sign out of Doorman and every app?"));
    let form: Vec<(String, String)> = [
        "id_token_hint",
        "post_logout_redirect_uri",
        "state",
        "confirm",
        "csrf",
    ]
    .iter()
    .map(|k| (k.to_string(), form_value(&page.body, k).unwrap()))
    .collect();
    let done = read(
        b.post(o.s.url("/oidc/end_session"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location, "http://127.0.0.1:9/grafana/bye?state=bye");
    expect_logout(&o, &rx, &f.id, "RP-initiated logout").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_an_admin_ends_a_session_sends_a_logout_token() {
    let rx = receiver_on(HeldPort::new(), Mode::Ok).await;
    let (o, admin, users) = grafana_op(&rx, None, &["ann", "cat", "dan", "eve"]).await;

    // An admin's end, the bulk end, and the end of one person's sessions.
    let a = signed_in(&o, "ann@acme.test").await;
    ok(
        o.s.delete(&format!("/api/v1/admin/sessions/{}", a.id), &admin.token)
            .await
            .0,
        "admin end",
    );
    expect_logout(&o, &rx, &a.id, "admin end").await;
    let a = signed_in(&o, "ann@acme.test").await;
    ok(
        o.s.delete("/api/v1/admin/sessions?q=ann%40acme.test", &admin.token)
            .await
            .0,
        "admin bulk end",
    );
    expect_logout(&o, &rx, &a.id, "admin bulk end").await;
    let a = signed_in(&o, "ann@acme.test").await;
    ok(
        o.s.delete(
            &format!("/api/v1/admin/users/{}/sessions", users["ann"]),
            &admin.token,
        )
        .await
        .0,
        "admin ends a person's sessions",
    );
    expect_logout(&o, &rx, &a.id, "admin ends a person's sessions").await;

    // Disable.
    let c = signed_in(&o, "cat@acme.test").await;
    ok(
        o.s.patch(
            &format!("/api/v1/admin/users/{}", users["cat"]),
            &admin.token,
            json!({"status": "disabled"}),
        )
        .await
        .0,
        "disable",
    );
    expect_logout(&o, &rx, &c.id, "disable").await;

    // Second-factor reset.
    let e = signed_in(&o, "eve@acme.test").await;
    ok(
        o.s.delete(
            &format!("/api/v1/admin/users/{}/second-factors", users["eve"]),
            &admin.token,
        )
        .await
        .0,
        "second-factor reset",
    );
    expect_logout(&o, &rx, &e.id, "second-factor reset").await;

    // Deletion: the person is gone, their apps are still told.
    let d = signed_in(&o, "dan@acme.test").await;
    ok(
        o.s.delete(
            &format!("/api/v1/admin/users/{}", users["dan"]),
            &admin.token,
        )
        .await
        .0,
        "deletion",
    );
    expect_logout(&o, &rx, &d.id, "deletion").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_lifetime_expiry_send_a_logout_token() {
    let rx = receiver_on(HeldPort::new(), Mode::Ok).await;
    let (o, _, _) = grafana_op(&rx, None, &["fay"]).await;
    // Ended by the sweeper.
    let f = signed_in(&o, "fay@acme.test").await;
    o.s.sql_exec(&format!(
        "UPDATE sessions SET expires_at = strftime('%s','now') - 1 WHERE public_id = '{}'",
        f.id
    ));
    expect_logout(&o, &rx, &f.id, "idle expiry").await;
    let f = signed_in(&o, "fay@acme.test").await;
    o.s.sql_exec(&format!(
        "UPDATE sessions SET created_at = created_at - 90 * 86400, expires_at = strftime('%s','now') - 1
         WHERE public_id = '{}'",
        f.id
    ));
    expect_logout(&o, &rx, &f.id, "lifetime expiry").await;
    assert_eq!(
        o.s.sql_i64(
            "SELECT count(*) FROM sessions WHERE end_reason IN ('idle_timeout', 'max_lifetime')"
        ),
        2
    );
}

/// The token of the newest link `…{marker}TOKEN` in a mail to `to`, once it is mailed.
async fn mailed_token(smtp: &SmtpServer, to: &str, marker: &str) -> String {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let found = smtp
            .messages()
            .iter()
            .rev()
            .filter(|m| smtp::header(m, "To").is_some_and(|t| t.contains(to)))
            .map(|m| smtp::text_part(m))
            .find_map(|text| {
                let at = text.find(marker)? + marker.len();
                Some(
                    text[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect::<String>(),
                )
            });
        if let Some(token) = found {
            return token;
        }
        assert!(Instant::now() < until, "no {marker} mailed to {to}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A session on a new device of someone who signed in before: its sign-in is alerted.
async fn alerted_sign_in(o: &Op, email: &str) -> Sess {
    login(&o.s, email, FIREFOX_WIN).await;
    signed_in(o, email).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_in_emails_that_end_sessions_send_a_logout_token() {
    let rx = receiver_on(HeldPort::new(), Mode::Ok).await;
    let smtp = SmtpServer::start().await;
    let (o, admin, users) = grafana_op(&rx, Some(smtp.url()), &["gus", "hal", "ivy"]).await;

    // "Was this you?" → "This wasn't me — secure my account" ends every session.
    let g = alerted_sign_in(&o, "gus@acme.test").await;
    let t = mailed_token(&smtp, "gus@acme.test", "/alerts/secure?t=").await;
    let resp = client()
        .post(o.s.url("/alerts/secure"))
        .form(&[("t", t.as_str())])
        .send()
        .await
        .unwrap();
    ok(resp.status().as_u16(), "not me");
    expect_logout(&o, &rx, &g.id, "not me").await;

    // "Not you? End this session" (a moved-session alert's link) ends that session.
    let h = alerted_sign_in(&o, "hal@acme.test").await;
    mailed_token(&smtp, "hal@acme.test", "/alerts/secure?t=").await;
    let t = end_link_token(&o.s, "hal@acme.test");
    let resp = client()
        .post(o.s.url("/alerts/end"))
        .form(&[("t", t.as_str())])
        .send()
        .await
        .unwrap();
    ok(resp.status().as_u16(), "end link");
    expect_logout(&o, &rx, &h.id, "end link").await;

    // A password reset by the emailed link (an admin sent it) ends every session.
    let i = signed_in(&o, "ivy@acme.test").await;
    ok(
        o.s.post(
            &format!("/api/v1/admin/users/{}/password-reset", users["ivy"]),
            &admin.token,
            json!({}),
        )
        .await
        .0,
        "reset link sent",
    );
    let token = mailed_token(&smtp, "ivy@acme.test", "/reset?token=").await;
    assert!(alive(&o.s, &i.token).await, "sending the link ends nothing");
    let b = browser();
    let page = read(
        b.get(o.s.url(&format!("/reset?token={token}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = form_value(&page.body, "csrf").unwrap();
    let done = post_form(
        &b,
        &o.s,
        "/reset",
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("password", "violet tractor umbrella"),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    expect_logout(&o, &rx, &i.id, "password reset by link").await;
    assert_eq!(
        o.s.sql_i64(&format!(
            "SELECT count(*) FROM sessions WHERE public_id = '{}' AND end_reason = 'password_reset'",
            i.id
        )),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_app_at_a_time_ends_that_grant_only() {
    let rx = receiver_on(HeldPort::new(), Mode::Ok).await;
    let o = op_at(rx.addr.port()).await;
    let a = ann(&o).await;
    o.s.user("Acme", "admin@acme.test", Role::Admin).await;
    o.s.user("Bravo", "boss@bravo.test", Role::Admin).await;
    o.s.user("Acme", "bob@acme.test", Role::User).await;
    let admin = login(&o.s, "admin@acme.test", CHROME_MAC).await;
    let other_admin = login(&o.s, "boss@bravo.test", CHROME_MAC).await;
    let bob = login(&o.s, "bob@acme.test", CHROME_MAC).await;
    let grafana = sign_in_to(&o, &a.token, "grafana").await;
    sign_in_to(&o, &a.token, "notes").await;
    sign_in_to(&o, &a.token, "plain").await;
    assert_eq!(
        app_states(&o, &a).await,
        json!({"grafana": ["signed_in", false], "notes": ["signed_in", false], "plain": ["signed_in", false]})
    );

    // Someone else's session, an unknown app: not found, nothing ends.
    let mine = format!("/api/v1/sessions/{}/apps/grafana", a.id);
    assert_eq!(o.s.delete(&mine, &bob.token).await.0, 404);
    let admin_path = |c: &str| format!("/api/v1/admin/sessions/{}/apps/{c}", a.id);
    assert_eq!(
        o.s.delete(&admin_path("notes"), &other_admin.token).await.0,
        404
    );
    assert_eq!(
        o.s.delete(&admin_path("notes"), &bob.token).await.0,
        404,
        "not an admin"
    );
    assert_eq!(
        o.s.delete(&format!("/api/v1/sessions/{}/apps/nope", a.id), &a.token)
            .await
            .0,
        404
    );
    assert_eq!(o.s.sql_i64("SELECT count(*) FROM oidc_logouts"), 0);

    // The person signs their current session out of Grafana: Grafana is told, its
    // tokens die, Notes and the Doorman session stay.
    let (status, body) = o.s.delete(&mine, &a.token).await;
    assert_eq!(status, 204, "{body}");
    let got = rx.wait("grafana", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    check_token(&o.s, &got[0], "grafana", &a.id).await;
    assert!(alive(&o.s, &a.token).await, "the Doorman session stays");
    let info = client()
        .get(o.s.url("/oidc/userinfo"))
        .bearer_auth(grafana["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 401, "Grafana's tokens ended");
    assert_eq!(
        o.s.sql_i64(
            "SELECT count(*) FROM oidc_grants WHERE client_id = 'notes' AND ended_at IS NULL"
        ),
        1
    );
    assert_eq!(
        o.s.delete(&mine, &a.token).await.0,
        404,
        "signed out already"
    );

    // An admin in scope signs the session out of Notes.
    let (status, body) = o.s.delete(&admin_path("notes"), &admin.token).await;
    assert_eq!(status, 204, "{body}");
    let got = rx.wait("notes", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    check_token(&o.s, &got[0], "notes", &a.id).await;
    assert!(alive(&o.s, &a.token).await);

    // Plain has no back-channel URI: its tokens are dead, it learns at its next check.
    let plain = format!("/api/v1/sessions/{}/apps/plain", a.id);
    assert_eq!(o.s.delete(&plain, &a.token).await.0, 204);
    // The listing says per app where its sign-out stands, once the worker has marked
    // Notes's delivery.
    let want = json!({"grafana": ["signed_out", true], "notes": ["signed_out", true], "plain": ["at_next_check", true]});
    let told = eventually(Duration::from_secs(10), || async {
        app_states(&o, &a).await == want
    })
    .await;
    assert!(told, "{} != {want}", app_states(&o, &a).await);
    assert_eq!(rx.tokens("grafana").len(), 1, "Grafana is not told twice");
}

/// Each app of the session `a` in its own listing: client id → [status, has a
/// `signed_out_at`].
async fn app_states(o: &Op, a: &Sess) -> Value {
    let (status, list) = o.s.get("/api/v1/sessions", &a.token).await;
    assert_eq!(status, 200, "{list}");
    let me = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == a.id.as_str())
        .unwrap();
    let mut out = serde_json::Map::new();
    for app in me["signed_in_to"].as_array().unwrap() {
        out.insert(
            app["client_id"].as_str().unwrap().to_string(),
            json!([app["status"], !app["signed_out_at"].is_null()]),
        );
    }
    Value::Object(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_sessions_page_signs_a_session_out_of_one_app() {
    let rx = receiver_on(HeldPort::new(), Mode::Ok).await;
    let o = op_at(rx.addr.port()).await;
    let a = ann(&o).await;
    sign_in_to(&o, &a.token, "grafana").await;
    sign_in_to(&o, &a.token, "notes").await;
    let b = browser();
    browser_login(&o.s, &b, "ann@acme.test").await;
    let page = read(
        b.get(o.s.url("/settings/security/sessions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out of Grafana"), "{}", page.body);
    assert!(page.body.contains("Sign out of Notes"), "{}", page.body);
    let csrf = form_value(&page.body, "csrf").unwrap();
    let done = read(
        b.post(o.s.url("/settings/security/sessions/apps/sign-out"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("id", a.id.as_str()),
                ("client_id", "grafana"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let got = rx.wait("grafana", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    check_token(&o.s, &got[0], "grafana", &a.id).await;
    assert!(alive(&o.s, &a.token).await);
    // The page says what happened, once the delivery is marked: Grafana signed out
    // just now, the session stays; the listing says it too, and offers Notes only.
    let notice = o.s.url(&done.location);
    let told = eventually(Duration::from_secs(10), || async {
        let p = read(b.get(&notice).send().await.unwrap()).await;
        p.body.contains("Signed out of Grafana just now.")
            && p.body.contains("The session stays signed in to Doorman.")
    })
    .await;
    let page = read(b.get(&notice).send().await.unwrap()).await;
    assert!(told, "{}", page.body);
    assert!(!page.body.contains("Sign out of Grafana"), "{}", page.body);
    assert!(page.body.contains("Sign out of Notes"));
    assert!(
        page.body
            .contains(r#"data-status="signed_out">Signed out of Grafana just now<"#),
        "{}",
        page.body
    );

    // Terminate from another session: the notice tells where each app stands.
    let other = login(&o.s, "ann@acme.test", CHROME_MAC).await;
    sign_in_to(&o, &other.token, "grafana").await;
    sign_in_to(&o, &other.token, "plain").await;
    let page = read(
        b.get(o.s.url("/settings/security/sessions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let csrf = form_value(&page.body, "csrf").unwrap();
    let done = read(
        b.post(o.s.url("/settings/security/sessions/terminate"))
            .form(&[("csrf", csrf.as_str()), ("id", other.id.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = read(b.get(o.s.url(&done.location)).send().await.unwrap()).await;
    assert!(page.body.contains("1 session ended."), "{}", page.body);
    assert!(
        page.body.contains("Signed out of Grafana")
            || page.body.contains("Signing out of Grafana…"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Plain: will sign out at its next check."),
        "{}",
        page.body
    );
}

/// Runs a command of the binary on the server's database as an operator would: with the
/// storage path and nothing of the server's configuration (no applications). A command
/// never rewrites what the running server mirrored of its configuration, so the server
/// still tells the apps.
fn doorman_cli(s: &TestServer, args: &[&str]) -> String {
    let toml = String::new();
    let config = s.dir.path().join("cli.toml");
    std::fs::write(&config, toml).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"));
    c.arg("--config")
        .arg(&config)
        .args(args)
        .current_dir(s.dir.path());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DOORMAN_") {
            c.env_remove(key);
        }
    }
    let out = c
        .env_remove("RUST_LOG")
        .env("DOORMAN_STORAGE__PATH", &s.db_path)
        .env("DOORMAN_SECURITY__ARGON2__M", "1024")
        .env("DOORMAN_SECURITY__ARGON2__T", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "doorman {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_commands_that_end_sessions_send_a_logout_token() {
    let rx = receiver_on(HeldPort::new(), Mode::Ok).await;
    let (o, _, _) = grafana_op(&rx, None, &["jon", "kim", "lou"]).await;

    let j = signed_in(&o, "jon@acme.test").await;
    let out = doorman_cli(&o.s, &["sessions", "end", &j.id]);
    assert!(out.contains("ended"), "{out}");
    expect_logout(&o, &rx, &j.id, "doorman sessions end").await;

    let k = signed_in(&o, "kim@acme.test").await;
    let out = doorman_cli(&o.s, &["user", "passwd", "--email", "kim@acme.test"]);
    assert!(out.contains("1 session(s) ended"), "{out}");
    expect_logout(&o, &rx, &k.id, "doorman user passwd").await;

    let l = signed_in(&o, "lou@acme.test").await;
    let out = doorman_cli(&o.s, &["user", "disable", "--email", "lou@acme.test"]);
    assert!(out.contains("1 session(s) ended"), "{out}");
    expect_logout(&o, &rx, &l.id, "doorman user disable").await;
}
