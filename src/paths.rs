//! Every page path, in one place: the pages route them, and emails, the API and the CLI
//! link to them.

pub const LOGIN: &str = "/login";
/// The second step of a sign-in (a code or a passkey).
pub const LOGIN_VERIFY: &str = "/login/verify";
/// Setting up a required second factor, right after the password.
pub const LOGIN_ENROL: &str = "/login/enrol";
/// Settings › Security › Second factors.
pub const SECOND_FACTORS: &str = "/settings/security/second-factors";
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
/// Where the password page was; it redirects to the Profile page.
pub const PASSWORD: &str = "/settings/security/password";
/// Settings › Profile: name, email, password (and, later, second factors and
/// notification preferences).
pub const PROFILE: &str = "/settings/profile";
/// The page behind an email-change confirmation link.
pub const EMAIL_CONFIRM: &str = "/settings/profile/email";
/// The page behind the old address's link that cancels an email change.
pub const EMAIL_CANCEL: &str = "/settings/profile/email/cancel";
/// Settings › Team › Users (admins and the owner).
pub const TEAM_USERS: &str = "/settings/team/users";
/// Settings › Team › Accounts (the owner).
pub const TEAM_ACCOUNTS: &str = "/settings/team/accounts";
/// Accepting an invitation.
pub const INVITE: &str = "/invite";
pub const FORGOT: &str = "/forgot";
pub const RESET: &str = "/reset";
/// Which sign-in alerts a person gets (a section of the Profile page, and a page of its
/// own).
pub const NOTIFICATIONS: &str = "/settings/notifications";
/// The page behind an alert email's "Not you? End this session" link.
pub const ALERT_END: &str = "/alerts/end";
/// "Yes, it was me" and "No, secure my account" (SPEC §14).
pub const ALERT_CONFIRM: &str = "/alerts/confirm";
pub const ALERT_SECURE: &str = "/alerts/secure";
pub const SETUP: &str = "/setup";
/// Where a proxy sends a signed-in person an application's rules do not let in.
pub const DENIED: &str = "/denied";

/// Doorman's own forward-auth verdict (SPEC §16).
pub const VERIFY: &str = "/auth/verify";
/// Authelia's nginx endpoint.
pub const AUTH_REQUEST: &str = "/api/authz/auth-request";
/// Authelia's Traefik and Caddy endpoint.
pub const FORWARD_AUTH: &str = "/api/authz/forward-auth";
/// Authelia's legacy endpoint.
pub const LEGACY_VERIFY: &str = "/api/verify";
/// oauth2-proxy's endpoint.
pub const OAUTH2_AUTH: &str = "/oauth2/auth";
/// Every forward-auth verdict path. A proxy reads their "yes" and forwards the original
/// request; no browser ever sees that answer.
pub const VERDICTS: [&str; 5] = [
    VERIFY,
    AUTH_REQUEST,
    FORWARD_AUTH,
    LEGACY_VERIFY,
    OAUTH2_AUTH,
];

/// The caller's own session and user (`GET`, the API's `me`).
pub const API_ME: &str = "/api/v1/me";
/// The caller's own sessions (`GET`, the API's `listMySessions`).
pub const API_MY_SESSIONS: &str = "/api/v1/sessions";
/// The API reads a script polls most, answered ahead of the router on `GET`.
pub const READS_FIRST: [&str; 2] = [API_ME, API_MY_SESSIONS];
