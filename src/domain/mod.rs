//! The rules, shared by the pages (web/) and the API (api/).

pub mod auth;
pub mod model;
pub mod passwords;
pub mod ratelimit;
pub mod sweeper;
pub mod tokens;
pub mod users;
