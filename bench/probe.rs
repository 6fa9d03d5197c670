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
        _ => Err("usage: probe terminate URL TOKENS | probe signin URL TOKENS N".into()),
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
