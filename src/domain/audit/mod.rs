//! The record of what happened: security events, the sign-in history, webhooks.

pub mod events;
pub mod history;
pub mod webhooks;
