//! Forward auth (SPEC §16): which protected application a proxied request is for, and
//! whether the person signed in may use it. Empty lists allow everyone signed in;
//! several lists must all allow.

use crate::address::Target;
use crate::config::Application;
use crate::db;
use crate::domain::audit::events::{self, NewEvent};
use crate::domain::signin::check::{authenticate_for_app, authenticate_from};
use crate::error::{Error, Result};
use crate::model::Authed;
use crate::model::{EventType, Role};
use crate::state::AppState;

/// The verdict on a request a reverse proxy forwards: the session of `token`, allowed
/// to use the application `target` belongs to (if it belongs to one). Not signed in is
/// `Unauthenticated`; signed in but not allowed is `AccessDenied`. An address that cannot
/// be matched safely is refused whenever any application has rules (SPEC §19): the
/// denial then names no application.
pub async fn verify(
    state: &AppState,
    token: Option<&str>,
    target: &Target,
    from: impl FnOnce() -> Option<std::net::IpAddr>,
) -> Result<Authed> {
    let Some(token) = token else {
        return Err(Error::Unauthenticated(None));
    };
    // A session held at enrolment is signed out as far as applications are concerned:
    // the proxy sends the person to sign in, where they add a factor (SPEC §19).
    let at = match target {
        Target::At(address) => state.config.application_at(address),
        _ => None,
    };
    let checked = if at.is_some() {
        authenticate_for_app(state, token, from).await
    } else {
        authenticate_from(state, token, from).await
    };
    let authed = match checked {
        Err(Error::EnrolmentRequired) => return Err(Error::Unauthenticated(None)),
        other => other?,
    };
    let app = match target {
        Target::At(_) => at,
        Target::Unknown => None,
        Target::Ambiguous if !state.config.any_rules() => None,
        Target::Ambiguous => {
            tracing::info!(
                user_id = %authed.principal.user_id,
                "access refused: the original address cannot be matched safely"
            );
            note_denial(state, &authed, "", "ambiguous_url");
            return Err(Error::AccessDenied {
                application: String::new(),
            });
        }
    };
    if let Some(app) = app {
        if !allows(app, &authed) {
            tracing::info!(
                user_id = %authed.principal.user_id,
                application = %app.name,
                "access refused by the application's rules"
            );
            note_denial(state, &authed, &app.name, "rules");
            return Err(Error::AccessDenied {
                application: app.name.clone(),
            });
        }
        note_use(state, &authed, &app.name);
    }
    Ok(authed)
}

/// Records that the session is used with `application`, at most once per touch
/// interval (the session row read for the check says when it was last recorded), off
/// the request path: the answer never waits for the write.
fn note_use(state: &AppState, authed: &Authed, application: &str) {
    let now = crate::clock::now();
    let every = state.config.sessions.touch_interval.as_secs() as i64;
    let last = authed
        .session
        .applications_used
        .iter()
        .flatten()
        .find(|u| u.name == application)
        .map(|u| u.last_used_at);
    if last.is_some_and(|t| now - t < every) {
        return;
    }
    let (st, pk, name) = (state.clone(), authed.session.pk, application.to_string());
    tokio::spawn(async move {
        let recorded = st
            .db
            .run(move |c| db::sessions::record_application_use(c, pk, &name, now))
            .await;
        if let Err(err) = recorded {
            tracing::warn!(%err, "could not record an application's use");
        }
    });
}

/// Records `access.denied` with its reason (`rules`, `ambiguous_url`), at most once per
/// touch interval per session and application, off the request path: the refusal never
/// waits for the write.
pub(crate) fn note_denial(state: &AppState, authed: &Authed, application: &str, reason: &str) {
    let now = crate::clock::now();
    let every = state.config.sessions.touch_interval.as_secs() as i64;
    let key = (authed.session.pk, application.to_string());
    if !state.denials.first_since(key, now, every) {
        return;
    }
    let event = NewEvent::new(EventType::AccessDenied, now)
        .actor(Some(authed.principal.user_id))
        .detail("application", application)
        .detail("reason", reason);
    let (st, pk) = (state.clone(), authed.session.pk);
    tokio::spawn(async move {
        let recorded = st
            .db
            .run(move |c| -> Result<()> {
                let Some(session) = db::sessions::find_by_pk(c, pk)? else {
                    return Ok(());
                };
                events::record(c, event.session(&session))?;
                Ok(())
            })
            .await;
        if let Err(err) = recorded {
            tracing::warn!(%err, "could not record a refused access");
        }
    });
}

/// Whether `who` may use `app`.
pub fn allows(app: &Application, who: &Authed) -> bool {
    allows_person(app, who) && (!app.require_second_factor || second_factor(who))
}

/// Whether `app`'s lists allow `who`, whatever the session's second factor (the
/// OpenID authorization asks for the second step when only that is missing).
pub fn allows_person(app: &Application, who: &Authed) -> bool {
    let p = &who.principal;
    let account_ok = app.allow_accounts.is_empty()
        || app
            .allow_accounts
            .iter()
            .any(|a| a.trim().eq_ignore_ascii_case(&p.account_name));
    let role_ok = app.allow_roles.is_empty()
        || app
            .allow_roles
            .iter()
            .filter_map(|r| Role::parse(r))
            .any(|r| p.role.rank() >= r.rank());
    let email = p.email.to_lowercase();
    // An address an admin typed is no proof (SPEC §19): only a proven one matches.
    let email_ok = app.allow_emails.is_empty()
        || (p.email_verified
            && app
                .allow_emails
                .iter()
                .any(|g| glob(g.trim().to_lowercase().as_bytes(), email.as_bytes())));
    account_ok && role_ok && email_ok
}

/// Whether the session was signed in with a second factor (or a passkey alone): read
/// from the session row the check has just read, so it costs nothing more.
pub fn second_factor(who: &Authed) -> bool {
    who.session.auth_methods.has_second_factor()
}

/// `*` matches any run of bytes (none too), `?` exactly one; everything else itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Principal;
    use crate::model::{AccountId, CurrentSession, SessionId, UserId};

    fn who(role: Role, email: &str, account: &str) -> Authed {
        Authed {
            principal: Principal {
                user_id: UserId(1),
                email: email.into(),
                name: "n".into(),
                role,
                account_id: AccountId(1),
                account_name: account.into(),
                email_verified: true,
            },
            session: CurrentSession {
                pk: 1,
                id: SessionId("s".into()),
                user_id: UserId(1),
                account_id: AccountId(1),
                device_id: "d".into(),
                created_at: 0,
                last_active_at: 0,
                expires_at: i64::MAX,
                ended_at: None,
                end_reason: None,
                auth_methods: crate::model::AuthMethods::PASSWORD,
                verified_at: 0,
                applications_used: None,
            },
            enrolment_pending: false,
        }
    }

    fn app(f: impl FnOnce(&mut Application)) -> Application {
        let mut a = Application {
            name: "Grafana".into(),
            url: "https://grafana.example.com".into(),
            ..Default::default()
        };
        f(&mut a);
        a
    }

    #[test]
    fn globs() {
        for (p, t, ok) in [
            ("*@acme.test", "ann@acme.test", true),
            ("*@acme.test", "ann@acme.test.evil", false),
            ("a?n@*", "ann@x", true),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("ann@acme.test", "ann@acme.test", true),
        ] {
            assert_eq!(glob(p.as_bytes(), t.as_bytes()), ok, "{p} ~ {t}");
        }
    }

    #[test]
    fn every_list_must_allow_and_owner_satisfies_admin() {
        let open = app(|_| {});
        assert!(allows(&open, &who(Role::User, "a@x.test", "Acme")));
        let admins = app(|a| a.allow_roles = vec!["admin".into()]);
        assert!(!allows(&admins, &who(Role::User, "a@x.test", "Acme")));
        assert!(allows(&admins, &who(Role::Admin, "a@x.test", "Acme")));
        assert!(allows(&admins, &who(Role::Owner, "a@x.test", "Acme")));
        let acme_staff = app(|a| {
            a.allow_accounts = vec!["acme".into()];
            a.allow_emails = vec!["*@ACME.test".into()];
        });
        assert!(allows(
            &acme_staff,
            &who(Role::User, "Ann@acme.test", "Acme")
        ));
        assert!(!allows(
            &acme_staff,
            &who(Role::User, "ann@other.test", "Acme")
        ));
        assert!(!allows(
            &acme_staff,
            &who(Role::User, "ann@acme.test", "Hooli")
        ));
        let mfa = app(|a| a.require_second_factor = true);
        assert!(!allows(&mfa, &who(Role::Owner, "a@x.test", "Acme")));
        let mut with_code = who(Role::User, "a@x.test", "Acme");
        with_code.session.auth_methods = crate::model::AuthMethods::of(&[
            crate::model::AuthMethod::Password,
            crate::model::AuthMethod::Totp,
        ]);
        assert!(allows(&mfa, &with_code));
    }
}
