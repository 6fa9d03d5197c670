//! Sign-in alerts (SPEC §5, §14) and the security notices that share their outbox:
//! deciding *new device* / *new country* / *impossible journey* (`classify`), queueing
//! exactly one email in the sign-in's own transaction under the hourly limit
//! (`notices`), the signed single-use links of an alert email (`signed`), what those
//! links do (`end_link`, `responses`), a session that moves (`moves`), which alerts a
//! person gets (`prefs`), and the single-use links of SPEC §11 (`links`).

pub mod classify;
pub mod end_link;
pub mod links;
pub mod moves;
pub mod notices;
pub mod prefs;
pub mod responses;
pub mod signed;
