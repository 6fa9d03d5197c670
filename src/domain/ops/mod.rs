//! Running the service: backups and restore, the sweeper, the operator's command-line
//! tools, the first start, health.

pub mod backup;
pub mod bootstrap;
pub mod health;
pub mod operator;
pub mod restore;
pub mod sweeper;
