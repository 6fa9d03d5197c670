//! The rules, shared by the pages (web/) and the API (api/).

pub mod admin_users;
pub mod auth;
pub mod model;
pub mod passwords;
pub mod permissions;
pub mod ratelimit;
pub mod sessions;
pub mod sweeper;
pub mod tokens;
pub mod users;
