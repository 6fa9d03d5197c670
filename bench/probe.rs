//! The load benchmark's checks that wrk cannot make (bench/run.sh runs them):
//!
//! - `probe terminate URL TOKENS`: for every `pair` in the tokens file, end the victim
//!   session with `DELETE /api/v1/sessions/{id}` (as the actor, another session of the same
//!   user), then present the victim's token to `/auth/verify` and `/api/v1/me`: both must
//!   refuse it. Prints how many were wrongly accepted (must be 0) and the latencies.
//! - `probe signin URL TOKENS N`: N sequential sign-ins through `POST /api/v1/login`. The
//!   server's `/metrics` before and after each one give the time its argon2 verification
//!   took (`doorman_password_check_seconds`) and the time of the whole sign-in
//!   (`doorman_sign_in_seconds`); subtracting the first from the second gives what that
//!   sign-in cost beyond the hash, exactly (no comparison of two noisy runs of argon2).
//!   Prints the median, p90 and mean of that, and the mean seen by the client.
//! - `probe logouts URL TOKENS PORT_A PORT_B SECONDS`: back-channel logout (SPEC §21).
//!   Starts the receivers of the two OpenID clients bench/run.sh registers (`bench-a`
//!   at `http://127.0.0.1:PORT_A/bc/bench-a`, `bench-b` at PORT_B), then ends, as the
//!   owner, every session of a `logout` line (each holds a grant of both clients) with
//!   `DELETE /api/v1/admin/sessions/{id}`, spread evenly over SECONDS. A receiver reads
//!   the `sid` of each logout token (unverified: the tests verify them) and answers 200.
//!   Prints how many tokens arrived and the times from the start of each DELETE to the
//!   arrival of its session's token at each receiver (the 200 follows at once).

use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("terminate") if args.len() == 4 => terminate(&args[2], Path::new(&args[3])),
        Some("signin") if args.len() == 5 => match args[4].parse() {
            Ok(n) => signin(&args[2], Path::new(&args[3]), n),
            Err(_) => Err("N must be a number".into()),
        },
        Some("logouts") if args.len() == 7 => {
            match (args[4].parse(), args[5].parse(), args[6].parse::<f64>()) {
                (Ok(a), Ok(b), Ok(secs)) if secs > 0.0 => {
                    logouts::run(&args[2], Path::new(&args[3]), [a, b], secs)
                }
                _ => Err("PORT_A and PORT_B must be ports, SECONDS a positive number".into()),
            }
        }
        _ => Err(
            "usage: probe terminate URL TOKENS | probe signin URL TOKENS N | \
                  probe logouts URL TOKENS PORT_A PORT_B SECONDS"
                .into(),
        ),
    };
    if let Err(err) = result {
        eprintln!("probe: {err}");
        std::process::exit(1);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// Lines of the tokens file starting with `kind`, split into their fields.
fn entries(tokens: &Path, kind: &str) -> Result<Vec<Vec<String>>, String> {
    let text = std::fs::read_to_string(tokens)
        .map_err(|e| format!("cannot read {}: {e}", tokens.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(kind)).then(|| parts.map(str::to_string).collect())
        })
        .collect())
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    millis(sorted[i])
}

fn terminate(base: &str, tokens: &Path) -> Result<(), String> {
    let pairs = entries(tokens, "pair")?;
    if pairs.is_empty() {
        return Err("no `pair` lines in the tokens file".into());
    }
    let client = reqwest::Client::new();
    runtime()?.block_on(async {
        let (mut ended, mut accepted, mut errors) = (0usize, 0usize, 0usize);
        let mut end_times = Vec::with_capacity(pairs.len());
        for p in &pairs {
            let [actor, victim_id, victim] = &p[..] else {
                return Err("a `pair` line needs three fields".to_string());
            };
            // The victim is in use (and touched) right before it is ended.
            let before = get(&client, &format!("{base}/auth/verify"), victim).await?;
            let started = Instant::now();
            let resp = client
                .delete(format!("{base}/api/v1/sessions/{victim_id}"))
                .bearer_auth(actor)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            end_times.push(started.elapsed());
            if before != 200 || resp.status().as_u16() != 204 {
                errors += 1;
                continue;
            }
            ended += 1;
            for path in ["/auth/verify", "/api/v1/me"] {
                if get(&client, &format!("{base}{path}"), victim).await? != 401 {
                    accepted += 1;
                }
            }
        }
        end_times.sort();
        println!(
            "terminate: ended {ended}, ended token accepted afterwards {accepted} times, \
             setup errors {errors}; DELETE p50 {:.2} ms p99 {:.2} ms",
            percentile(&end_times, 0.5),
            percentile(&end_times, 0.99)
        );
        if accepted > 0 || ended == 0 {
            return Err("an ended session was accepted".to_string());
        }
        Ok(())
    })
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> Result<u16, String> {
    let resp = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

fn signin(base: &str, tokens: &Path, n: usize) -> Result<(), String> {
    let password = entries(tokens, "password")?
        .into_iter()
        .next()
        .and_then(|p| p.into_iter().next())
        .ok_or("no `password` line in the tokens file")?;
    let emails: Vec<String> = entries(tokens, "signin")?
        .into_iter()
        .filter_map(|e| e.into_iter().next())
        .collect();
    if emails.is_empty() {
        return Err("no `signin` lines in the tokens file".into());
    }
    let client = reqwest::Client::new();
    // Per sign-in: the client's latency, the server's whole sign-in and its hash alone.
    let mut logins = Vec::with_capacity(n);
    let mut extra_server = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    runtime()?.block_on(async {
        for i in 0..n {
            let before = timings(&client, base).await?;
            let body = serde_json::json!({"email": emails[i % emails.len()], "password": password});
            let started = Instant::now();
            let resp = client
                .post(format!("{base}/api/v1/login"))
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            let took = started.elapsed();
            if status != 201 {
                return Err(format!("sign-in answered {status}"));
            }
            let after = timings(&client, base).await?;
            if after.check_count - before.check_count != 1.0
                || after.sign_in_count - before.sign_in_count != 1.0
            {
                return Err("other sign-ins during the probe (see /metrics)".into());
            }
            let hash = after.check_sum - before.check_sum;
            let whole = after.sign_in_sum - before.sign_in_sum;
            logins.push(took);
            hashes.push(Duration::from_secs_f64(hash));
            extra_server.push(Duration::from_secs_f64((whole - hash).max(0.0)));
        }
        Ok::<_, String>(())
    })?;
    let mean =
        |v: &[Duration]| v.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / n as f64;
    let (client_mean, hash_mean, extra_mean) = (mean(&logins), mean(&hashes), mean(&extra_server));
    logins.sort();
    extra_server.sort();
    println!(
        "signin: {n} sign-ins, mean {client_mean:.2} ms (median {:.2}, p90 {:.2}); argon2 hash mean \
         {hash_mean:.2} ms; beyond the hash: median {:.2} ms, p90 {:.2} ms, mean {extra_mean:.2} ms \
         in the server, mean {:.2} ms seen by the client",
        percentile(&logins, 0.5),
        percentile(&logins, 0.9),
        percentile(&extra_server, 0.5),
        percentile(&extra_server, 0.9),
        client_mean - hash_mean,
    );
    Ok(())
}

/// The sign-in summaries of the server's `/metrics`.
#[derive(Default)]
struct Timings {
    sign_in_sum: f64,
    sign_in_count: f64,
    check_sum: f64,
    check_count: f64,
}

async fn timings(client: &reqwest::Client, base: &str) -> Result<Timings, String> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let mut t = Timings::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        match name {
            "doorman_sign_in_seconds_sum" => t.sign_in_sum = value,
            "doorman_sign_in_seconds_count" => t.sign_in_count = value,
            "doorman_password_check_seconds_sum" => t.check_sum = value,
            "doorman_password_check_seconds_count" => t.check_count = value,
            _ => {}
        }
    }
    if t.check_count == 0.0 && !text.contains("doorman_password_check_seconds_count") {
        return Err("/metrics has no doorman_password_check_seconds".into());
    }
    Ok(t)
}

mod logouts {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use base64::Engine as _;
    use poem::http::StatusCode;
    use poem::web::{Data, Form};
    use poem::{EndpointExt, Route, handler, post};

    use super::{entries, percentile};

    /// The clients bench/run.sh registers, in the order of the ports.
    const CLIENTS: [&str; 2] = ["bench-a", "bench-b"];
    /// How long the last logout tokens may take to arrive after the last end.
    const GRACE: Duration = Duration::from_secs(30);

    /// When each (client, sid) logout token first arrived.
    type Arrivals = Arc<Mutex<HashMap<(String, String), Instant>>>;

    /// The `sid` claim of a JWS, read without checking the signature.
    fn sid_of(jws: &str) -> Option<String> {
        let payload = jws.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        claims.get("sid")?.as_str().map(str::to_string)
    }

    #[handler]
    fn receive(
        poem::web::Path(client): poem::web::Path<String>,
        Form(form): Form<HashMap<String, String>>,
        arrivals: Data<&Arrivals>,
    ) -> StatusCode {
        let at = Instant::now();
        let Some(sid) = form.get("logout_token").and_then(|t| sid_of(t)) else {
            return StatusCode::BAD_REQUEST;
        };
        if let Ok(mut got) = arrivals.lock() {
            got.entry((client, sid)).or_insert(at);
        }
        StatusCode::OK
    }

    fn receiver(port: u16, arrivals: &Arrivals) -> Result<(), String> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let acceptor =
            poem::listener::TcpAcceptor::from_std(listener).map_err(|e| e.to_string())?;
        let app = Route::new()
            .at("/bc/:client", post(receive))
            .data(arrivals.clone());
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Ok(())
    }

    pub fn run(base: &str, tokens: &Path, ports: [u16; 2], secs: f64) -> Result<(), String> {
        let owner = entries(tokens, "owner")?
            .into_iter()
            .next()
            .and_then(|o| o.into_iter().next())
            .ok_or("no `owner` line in the tokens file")?;
        let sids: Vec<String> = entries(tokens, "logout")?
            .into_iter()
            .filter_map(|l| l.into_iter().next())
            .collect();
        if sids.is_empty() {
            return Err("no `logout` lines in the tokens file (reseed: BENCH_RESEED=1)".into());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let arrivals: Arrivals = Arc::default();
            for port in ports {
                receiver(port, &arrivals)?;
            }
            let client = reqwest::Client::new();
            let gap = Duration::from_secs_f64(secs / sids.len() as f64);
            let start = tokio::time::Instant::now();
            let mut tasks = Vec::with_capacity(sids.len());
            for (i, sid) in sids.iter().enumerate() {
                tokio::time::sleep_until(start + gap * i as u32).await;
                let (client, url, owner) = (
                    client.clone(),
                    format!("{base}/api/v1/admin/sessions/{sid}"),
                    owner.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let ended = Instant::now();
                    let resp = client.delete(url).bearer_auth(owner).send().await;
                    let ok = resp.is_ok_and(|r| r.status().is_success());
                    (ended, ok)
                }));
            }
            let mut ends = HashMap::with_capacity(sids.len());
            let mut errors = 0usize;
            for (sid, task) in sids.iter().zip(tasks) {
                match task.await {
                    Ok((at, true)) => {
                        ends.insert(sid.clone(), at);
                    }
                    _ => errors += 1,
                }
            }
            let ended_in = start.elapsed();
            let expected = ends.len() * CLIENTS.len();
            let deadline = Instant::now() + GRACE;
            let delivered = |a: &Arrivals| {
                a.lock().map_or(0, |got| {
                    got.keys().filter(|(_, sid)| ends.contains_key(sid)).count()
                })
            };
            while delivered(&arrivals) < expected && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut times: Vec<Duration> = {
                let got = arrivals.lock().map_err(|_| "poisoned".to_string())?;
                got.iter()
                    .filter_map(|((_, sid), at)| {
                        ends.get(sid)
                            .map(|ended| at.saturating_duration_since(*ended))
                    })
                    .collect()
            };
            times.sort();
            println!(
                "logouts: {} sessions ended in {:.1} s ({errors} errors), {} of {expected} \
                 logout tokens delivered; end to 200: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                ends.len(),
                ended_in.as_secs_f64(),
                times.len(),
                percentile(&times, 0.5),
                percentile(&times, 0.99),
                times.last().map_or(f64::NAN, |d| super::millis(*d)),
            );
            if times.len() < expected || ends.is_empty() {
                return Err("logout tokens missing".to_string());
            }
            Ok(())
        })
    }
}
