//! People and accounts: creating users, what admins change, the owners' rules,
//! invitations, a person's profile, privacy and erasure.

pub mod admin_users;
pub mod owners;
pub mod privacy;
pub mod profile;
pub mod recovery;
pub mod team;
pub mod users;
