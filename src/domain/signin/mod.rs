//! Signing in (SPEC §3, §12): the flow, issuing the session, the second step, passkey
//! sign-in, and the check every authenticated request makes.

pub mod check;
pub mod flow;
pub mod issue;
pub mod passkey;
pub mod second_step;
