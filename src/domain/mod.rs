//! The rules, shared by the pages (web/) and the API (api/).

pub mod access;
pub mod admin_users;
pub mod alerts;
pub mod auth;
pub mod backup;
pub mod bootstrap;
pub mod events;
pub mod health;
pub mod history;
pub mod model;
pub mod operator;
pub mod passwords;
pub mod permissions;
pub mod privacy;
pub mod ratelimit;
pub mod restore;
pub mod session_check;
pub mod sessions;
pub mod sweeper;
pub mod tokens;
pub mod users;
pub mod webhooks;
