//! The rules, shared by the pages (web/) and the API (api/), in feature rooms. Imports
//! point down (checked by `tests/layering.rs`):
//!
//! ```text
//! ops/                    backup, restore, sweeper, operator tools, bootstrap, health
//! oidc/                   the OpenID Provider: keys, authorization, tokens, claims
//! people/ access sessions users, admin changes, owners' rules, team, profile, erasure;
//!                         forward auth; listing and ending sessions
//! signin/                 the sign-in flow, issuing the session, the second step,
//!                         passkey sign-in, the session check
//! factors/                codes (TOTP, recovery), a person's factors, passkeys
//!                         (registration), step-up, the policy
//! attempts/               failed attempts and the limits they count toward
//! alerts/                 classify, notices (outbox), signed links, "not me", moves, prefs
//! audit/                  record events, the log's queries, webhooks
//! permissions tokens place passwords   small rules every room uses
//! ```
//! Below all of them is `crate::model`, the nouns.

pub mod access;
pub mod alerts;
pub mod attempts;
pub mod audit;
pub mod factors;
pub mod oidc;
pub mod ops;
pub mod passwords;
pub mod people;
pub mod permissions;
pub mod place;
pub mod sessions;
pub mod signin;
pub mod tokens;
