//! The signed links of an alert email (SPEC §5, §14): "Not you? End this session",
//! "Yes, it was me" and "No, secure my account". Each is an HMAC over the alert, its
//! user and the expiry, signed for its purpose alone, and verified in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rusqlite::Connection;
use sha2::Sha256;

use crate::db::{self, DbError};
use crate::model::UserId;

type HmacSha256 = Hmac<Sha256>;

/// What an alert link does; each is signed for its purpose alone, so one link's token
/// never works as another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// "Not you? End this session" (SPEC §5).
    End,
    /// "Yes, it was me" (SPEC §14).
    Confirm,
    /// "No, secure my account" (SPEC §14).
    Secure,
}

impl LinkPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            LinkPurpose::End => b"doorman-end-session\0",
            LinkPurpose::Confirm => b"doorman-confirm-sign-in\0",
            LinkPurpose::Secure => b"doorman-secure-account\0",
        }
    }
}

fn mac(key: &[u8], purpose: LinkPurpose, link: AlertLink, expires: i64) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(key).ok()?;
    m.update(purpose.label());
    m.update(&link.alert.to_be_bytes());
    m.update(&link.user.0.to_be_bytes());
    m.update(&expires.to_be_bytes());
    Some(m)
}

/// What an alert link names: the alert, and the person it was sent to. Both are signed
/// together (SPEC §19), so a link acts only while its alert belongs to that person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertLink {
    pub alert: i64,
    pub user: UserId,
}

impl AlertLink {
    /// The alert this link names, if it still belongs to the person the link was sent
    /// to; `None` otherwise, and the link does nothing.
    pub fn find(self, c: &Connection) -> Result<Option<db::alerts::AlertRow>, DbError> {
        Ok(db::alerts::find_by_id(c, self.alert)?.filter(|a| a.user_id == self.user))
    }
}

/// The token of an alert's end-session link: alert, person and expiry, signed.
pub fn sign_link(key: &[u8], link: AlertLink, expires: i64) -> String {
    sign_link_for(key, LinkPurpose::End, link, expires)
}

/// The token of one of an alert's links.
pub fn sign_link_for(key: &[u8], purpose: LinkPurpose, link: AlertLink, expires: i64) -> String {
    let mut bytes = Vec::with_capacity(LINK_BYTES);
    bytes.extend_from_slice(&link.alert.to_be_bytes());
    bytes.extend_from_slice(&link.user.0.to_be_bytes());
    bytes.extend_from_slice(&expires.to_be_bytes());
    if let Some(m) = mac(key, purpose, link, expires) {
        bytes.extend_from_slice(&m.finalize().into_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Alert id, user id and expiry (8 bytes each), then the HMAC-SHA256. Links made before
/// the user id was signed (48 bytes) are no longer accepted: nothing in them says whose
/// alert they were for.
const LINK_BYTES: usize = 56;

/// Checks an end-session link token's signature and expiry.
pub fn verify_link(key: &[u8], token: &str, now: i64) -> Option<AlertLink> {
    verify_link_for(key, LinkPurpose::End, token, now)
}

/// Checks a link token for `purpose`; returns what it names.
pub fn verify_link_for(
    key: &[u8],
    purpose: LinkPurpose,
    token: &str,
    now: i64,
) -> Option<AlertLink> {
    if token.len() > 128 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() != LINK_BYTES {
        return None;
    }
    let word = |i: usize| -> Option<i64> {
        Some(i64::from_be_bytes(
            bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    let link = AlertLink {
        alert: word(0)?,
        user: UserId(word(1)?),
    };
    let expires = word(2)?;
    mac(key, purpose, link, expires)?
        .verify_slice(&bytes[24..])
        .ok()?;
    (expires > now).then_some(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn links_are_signed_and_expire() {
        let key = [7u8; 32];
        let link = AlertLink {
            alert: 42,
            user: UserId(9),
        };
        let t = sign_link(&key, link, 1000);
        assert_eq!(verify_link(&key, &t, 999), Some(link));
        assert_eq!(verify_link(&key, &t, 1000), None, "expired");
        assert_eq!(verify_link(&[8u8; 32], &t, 999), None, "other key");
        let mut forged = URL_SAFE_NO_PAD.decode(&t).unwrap();
        forged[7] = 43;
        assert_eq!(
            verify_link(&key, &URL_SAFE_NO_PAD.encode(&forged), 999),
            None
        );
        let mut other_user = URL_SAFE_NO_PAD.decode(&t).unwrap();
        other_user[15] = 10;
        assert_eq!(
            verify_link(&key, &URL_SAFE_NO_PAD.encode(other_user), 999),
            None,
            "the person is signed with the alert"
        );
        assert_eq!(verify_link(&key, "garbage!", 0), None);
        let confirm = sign_link_for(&key, LinkPurpose::Confirm, link, 1000);
        assert_eq!(
            verify_link_for(&key, LinkPurpose::Confirm, &confirm, 999),
            Some(link)
        );
        assert_eq!(verify_link(&key, &confirm, 999), None, "one purpose only");
        assert_eq!(
            verify_link_for(&key, LinkPurpose::Secure, &confirm, 999),
            None
        );
    }

    #[test]
    fn links_from_before_the_user_was_signed_do_nothing() {
        // The old layout: alert id, expiry, HMAC over purpose, alert and expiry.
        let key = [7u8; 32];
        let mut m = HmacSha256::new_from_slice(&key).unwrap();
        m.update(LinkPurpose::End.label());
        m.update(&42i64.to_be_bytes());
        m.update(&1000i64.to_be_bytes());
        let mut bytes = 42i64.to_be_bytes().to_vec();
        bytes.extend_from_slice(&1000i64.to_be_bytes());
        bytes.extend_from_slice(&m.finalize().into_bytes());
        assert_eq!(verify_link(&key, &URL_SAFE_NO_PAD.encode(bytes), 999), None);
    }
}
