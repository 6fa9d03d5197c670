//! Passkeys and security keys (WebAuthn, SPEC §12).

use crate::state::AppState;

/// Whether passkeys can be used on this install.
pub fn enabled(_state: &AppState) -> bool {
    false
}
