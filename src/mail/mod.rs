//! Email: the SMTP transport from `mail.smtp_url`, the outbox worker, and one typed
//! function per email.

pub mod layout;
pub mod team;
pub mod templates;
pub mod worker;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::MailConfig;

#[derive(Clone)]
pub struct Mailer {
    /// Checked when the state opens, built on first use: building starts lettre's pool
    /// task, which needs a Tokio runtime, and CLI commands open the state without one.
    builder: AsyncSmtpTransportBuilder,
    transport: Arc<OnceLock<AsyncSmtpTransport<Tokio1Executor>>>,
    pub from: Mailbox,
    /// `mail.timeout`: bounds one whole conversation.
    timeout: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Mailer {
    /// None when email is off (no `mail.smtp_url`).
    pub fn from_config(cfg: &MailConfig) -> Result<Option<Mailer>, String> {
        if cfg.smtp_url.is_empty() {
            return Ok(None);
        }
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&cfg.smtp_url)
            .map_err(|e| format!("mail.smtp_url: {e}"))?
            .timeout(Some(cfg.timeout));
        let from = cfg
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("mail.from: {e}"))?;
        Ok(Some(Mailer {
            builder,
            transport: Arc::new(OnceLock::new()),
            from,
            timeout: cfg.timeout,
        }))
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport
            .get_or_init(|| self.builder.clone().build::<Tokio1Executor>())
    }

    pub async fn send(&self, message: Message) -> Result<(), String> {
        // lettre's async timeout covers only the TCP connect; a server that accepts and
        // then says nothing (no greeting, no reply) is bounded here, over the whole exchange.
        match tokio::time::timeout(self.timeout, self.transport().send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the SMTP server did not answer within {}",
                humantime::format_duration(self.timeout)
            )),
        }
    }
}
