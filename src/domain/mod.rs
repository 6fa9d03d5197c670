//! The rules, shared by the pages (web/) and the API (api/).

pub mod access;
pub mod admin_users;
pub mod alert_response;
pub mod alerts;
pub mod auth;
pub mod backup;
pub mod bootstrap;
pub mod health;
pub mod history;
pub mod model;
pub mod moves;
pub mod operator;
pub mod passwords;
pub mod permissions;
pub mod preferences;
pub mod privacy;
pub mod ratelimit;
pub mod restore;
pub mod session_check;
pub mod sessions;
pub mod sweeper;
pub mod tokens;
pub mod users;
