//! Checking a code of a second factor (SPEC §12): authenticator apps (TOTP, RFC 6238)
//! and recovery codes, each check under the sign-in limits. A person's factors are
//! managed in `manage`; the sign-in's second step is in `signin::second_step`.

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::db::second_factors::FactorRow;
use crate::db::{self, DbError};
use crate::domain::alerts::{self, Details};
use crate::domain::attempts::limits::Subject;
use crate::domain::attempts::{Attempt, record_failure, reserve, with_account};
use crate::domain::place::locate;
use crate::error::{Error, Result};
use crate::model::{AuthMethod, ClientInfo, UserId};
use crate::state::AppState;

/// RFC 6238 as every authenticator app does it: SHA-1, 6 digits, 30-second steps.
pub const TOTP_STEP: i64 = 30;
const TOTP_DIGITS: usize = 6;
/// 160 bits, the length RFC 4226 recommends.
pub(crate) const TOTP_KEY_BYTES: usize = 20;
/// Recovery codes given at once.
pub const RECOVERY_CODES: usize = 10;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
// ---- TOTP arithmetic ----

pub(crate) fn totp(secret: &[u8]) -> Option<totp_rs::TOTP> {
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        TOTP_DIGITS,
        0,
        TOTP_STEP as u64,
        secret.to_vec(),
    )
    .ok()
}

/// The time step of a code that `secret` gives within one step of `now` (clock skew
/// either way), the earliest first.
pub(crate) fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let t = totp(secret)?;
    let current = now.div_euclid(TOTP_STEP);
    (current - 1..=current + 1).find(|step| {
        let expected = t.generate((step * TOTP_STEP).max(0) as u64);
        crate::domain::tokens::constant_time_eq(expected.as_bytes(), code.as_bytes())
    })
}

/// `otpauth://totp/Doorman:ann@acme.test?secret=…&issuer=Doorman…`: what the QR code
/// carries.
pub fn otpauth_uri(secret_base32: &str, email: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "otpauth://totp/Doorman:{}?secret={secret_base32}&issuer=Doorman&algorithm=SHA1&digits=6&period=30",
        enc(email).replace('+', "%20")
    )
}

pub(crate) fn base32(bytes: &[u8]) -> String {
    totp_rs::Secret::Raw(bytes.to_vec())
        .to_encoded()
        .to_string()
        .trim_end_matches('=')
        .to_string()
}

/// What a person typed, read as a TOTP code or a recovery code.
pub(crate) enum Code {
    Totp(String),
    Recovery(String),
}

pub(crate) fn parse_code(raw: &str) -> Option<Code> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() == TOTP_DIGITS && compact.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Code::Totp(compact));
    }
    let letters: String = compact
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if letters.len() == 8 && letters.bytes().all(|b| BASE32.contains(&b)) {
        return Some(Code::Recovery(format!(
            "{}-{}",
            &letters[..4],
            &letters[4..]
        )));
    }
    None
}

fn recovery_hash(user: UserId, code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"doorman-recovery\0");
    h.update(user.0.to_be_bytes());
    h.update(code.as_bytes());
    h.finalize().into()
}

fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 8];
            // The OS random source failing is not something a server can continue through.
            #[allow(clippy::expect_used)]
            getrandom::fill(&mut bytes).expect("operating system random source unavailable");
            let s: String = bytes
                .iter()
                .map(|b| BASE32[(b & 31) as usize] as char)
                .collect();
            format!("{}-{}", &s[..4], &s[4..])
        })
        .collect()
}

/// Replaces the user's recovery codes with ten new ones, in the caller's transaction;
/// returns them (shown once).
pub(crate) fn replace_recovery_codes(c: &Connection, user: UserId) -> Result<Vec<String>, DbError> {
    let codes = new_recovery_codes();
    let hashes: Vec<[u8; 32]> = codes.iter().map(|c| recovery_hash(user, c)).collect();
    db::second_factors::replace_recovery_codes(c, user, &hashes)?;
    Ok(codes)
}

// ---- checking a code ----

/// Who is proving it is them with a code, and from where.
pub(crate) struct Prover<'a> {
    pub user: UserId,
    pub email: &'a str,
    pub name: &'a str,
    /// The device the request comes from, when the user has signed in from it before.
    pub known_device: Option<&'a str>,
    pub client: &'a ClientInfo,
}

/// Checks a code (TOTP or recovery) of `p.user` under the sign-in limits: a wrong one
/// counts as a failed attempt of the email and the address, and leaves a login record.
/// A used recovery code is gone, and its owner is emailed.
pub(crate) async fn check_code(state: &AppState, p: &Prover<'_>, raw: &str) -> Result<AuthMethod> {
    let now = crate::clock::now();
    let device = crate::ua::parse(&p.client.user_agent);
    let location = locate(state, p.client.ip);
    let attempt = Attempt::new(p.email, &location, p.client, &device, p.known_device);
    let subject = Subject {
        email: p.email,
        ip: p.client.ip,
        known_device: p.known_device,
    };
    let who = with_account(state, Some(p.user)).await;
    let reservation = reserve(state, &subject, who, &attempt, now).await?;
    let code = parse_code(raw);
    let user = p.user;
    let notice = Details::of_request(
        p.email,
        p.name,
        now,
        &device,
        &p.client.ip.to_string(),
        &location,
    );
    let mail_enabled = state.mailer.is_some();
    let used = match code {
        None => None,
        Some(code) => {
            state
                .db
                .run(move |c| use_code(c, user, &code, now, &notice, mail_enabled))
                .await?
        }
    };
    match used {
        Some(method) => {
            reservation.succeeded();
            if method == AuthMethod::RecoveryCode && mail_enabled {
                state.mail_wakeup.notify_one();
            }
            Ok(method)
        }
        None => {
            reservation.failed();
            state.metrics.count_sign_in("failure");
            record_failure(state, attempt, who, "wrong_code").await;
            Err(Error::InvalidCode)
        }
    }
}

/// Uses the code if it is one of the user's: a TOTP code of an active factor not used
/// before, or an unused recovery code.
fn use_code(
    c: &mut Connection,
    user: UserId,
    code: &Code,
    now: i64,
    notice: &Details,
    mail_enabled: bool,
) -> Result<Option<AuthMethod>, DbError> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let used = match code {
        Code::Totp(digits) => {
            let mut found = false;
            for f in db::second_factors::list_for_user(&tx, user)? {
                if take_totp(&tx, &f, digits, now)? {
                    found = true;
                    break;
                }
            }
            found.then_some(AuthMethod::Totp)
        }
        Code::Recovery(text) => {
            let has_factor = db::second_factors::list_for_user(&tx, user)?
                .iter()
                .any(|f| f.active);
            let hash = recovery_hash(user, text);
            if has_factor && db::second_factors::use_recovery_code(&tx, user, &hash, now)? {
                alerts::enqueue_notice(
                    &tx,
                    alerts::RECOVERY_CODE_USED,
                    user,
                    notice,
                    mail_enabled,
                )?;
                Some(AuthMethod::RecoveryCode)
            } else {
                None
            }
        }
    };
    tx.commit()?;
    Ok(used)
}

/// Accepts `digits` for an active TOTP factor when they match a step within one of now
/// that is later than the last step it accepted.
fn take_totp(c: &Connection, f: &FactorRow, digits: &str, now: i64) -> Result<bool, DbError> {
    if f.kind != "totp" || !f.active {
        return Ok(false);
    }
    let Some(secret) = &f.secret else {
        return Ok(false);
    };
    match matching_step(secret, digits, now) {
        Some(step) if f.last_step.is_none_or(|last| step > last) => {
            db::second_factors::take_step(c, f.id, step, now)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_leniently() {
        assert!(matches!(parse_code(" 123 456 "), Some(Code::Totp(c)) if c == "123456"));
        assert!(matches!(parse_code("ABCD-EF23"), Some(Code::Recovery(c)) if c == "abcd-ef23"));
        assert!(matches!(parse_code("abcdef23"), Some(Code::Recovery(c)) if c == "abcd-ef23"));
        assert!(parse_code("12345").is_none());
        assert!(parse_code("abcd-ef01").is_none(), "0 and 1 are not base32");
    }

    #[test]
    fn recovery_codes_have_the_documented_form() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 9);
            assert_eq!(&c[4..5], "-");
            assert!(
                c.bytes()
                    .filter(|b| *b != b'-')
                    .all(|b| BASE32.contains(&b))
            );
        }
    }

    #[test]
    fn totp_accepts_one_step_of_skew_either_way() {
        let key = [7u8; 20];
        let t = totp(&key).unwrap();
        let now = 1_700_000_015;
        let step = now / TOTP_STEP;
        for (offset, ok) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = t.generate(((step + offset) * TOTP_STEP) as u64);
            assert_eq!(matching_step(&key, &code, now).is_some(), ok, "{offset}");
        }
        assert!(otpauth_uri(&base32(&key), "a b@x").contains("Doorman:a%20b%40x?secret="));
    }
}
