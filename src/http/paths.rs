//! Every page path, in one place: the pages route them, and emails, the API and the CLI
//! link to them.

pub const LOGIN: &str = "/login";
/// Settings › Security › Active Sessions, tab My Sessions.
pub const SESSIONS: &str = "/settings/security/sessions";
/// The Users Sessions tab (admins and the owner).
pub const USERS_SESSIONS: &str = "/settings/security/sessions/users";
/// The My Sessions tab's "Download my data": the data export as a JSON file.
pub const EXPORT: &str = "/settings/security/sessions/export";
pub const HISTORY: &str = "/settings/security/history";
/// The Security log tab: one's own security events.
pub const SECURITY_LOG: &str = "/settings/security/log";
/// The team's security log (admins: their account; the owner: every account).
pub const TEAM_LOG: &str = "/settings/team/log";
pub const PASSWORD: &str = "/settings/security/password";
/// The page behind an alert email's "Not you? End this session" link.
pub const ALERT_END: &str = "/alerts/end";
pub const SETUP: &str = "/setup";
/// Where a proxy sends a signed-in person an application's rules do not let in.
pub const DENIED: &str = "/denied";
