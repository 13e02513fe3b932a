//! The server's side of the web admin's ports: the live state ([`Live`]) and the login's
//! place in the security guard ([`LoginGuard`]), so that failed web logins count and ban
//! exactly like failed SIP authentications.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pbx_store::{BanStore, Binding, Store, StoreError};
use pbx_web_admin::live::{
    Live, LiveCall, LoginGuard, LoginRefusal, LoginSettled, LoginTicket, MailHealth, SecurityEvent,
    SecurityKind,
};

use crate::config::Config;
use crate::plan::PlanHandle;
use crate::security::events::SecurityLog;
use crate::security::{Admission, CheckOutcome, Gated, Guard, Ticket};

/// The devices registered now, from the engine's location service.
pub type Registrations = Box<dyn Fn(u64) -> Vec<Binding> + Send + Sync>;

/// The running engine as the web admin sees it: its live calls and the way to its shards.
pub struct Engine {
    pub calls: Arc<crate::engine::live_calls::LiveCalls>,
    pub dispatcher: Arc<crate::engine::Dispatcher>,
    /// The recent security events (the engine's, the transports' and the web logins').
    pub security_log: Arc<SecurityLog>,
    /// The outgoing mail, when `[smtp]` is configured.
    pub mailer: Option<Arc<crate::mail::Mailer>>,
    /// The message lamps of the phones.
    pub mwi: crate::engine::mwi::MwiNotifier,
    /// The trunks' loader (re-read at once when the admin changes one).
    pub trunks: Arc<crate::engine::trunks::Trunks>,
    /// The admin's mail when a source is banned (`[security] alert_email` with `[smtp]`).
    pub ban_alerts: Option<crate::mail::BanAlerts>,
}

pub struct ServerLive {
    pub registrations: Registrations,
    pub engine: Engine,
    pub plan: Arc<PlanHandle>,
    pub config: Config,
    pub store: Arc<Store>,
    pub guard: Arc<Guard>,
}

#[async_trait]
impl Live for ServerLive {
    fn registrations(&self, now_unix: u64) -> Vec<Binding> {
        let mut all = (self.registrations)(now_unix);
        all.sort_by(|a, b| (&a.aor, a.contact()).cmp(&(&b.aor, b.contact())));
        all
    }

    fn contexts(&self) -> Option<Vec<String>> {
        self.plan
            .current()
            .map(|plan| plan.context_names().map(str::to_string).collect())
    }

    async fn reload_dialplan(&self) -> Result<(), Vec<String>> {
        // As `serve` loads and reloads it: with the contexts the store assigns.
        let plan = crate::plan::load_with_store(&self.config, &self.store).await?;
        self.plan.replace(plan);
        Ok(())
    }

    async fn check_dialplan(
        &self,
        path: &std::path::Path,
        text: &str,
    ) -> Result<Arc<pbx_dialplan::Plan>, Vec<pbx_web_admin::dialplan_file::Problem>> {
        let assigned = crate::plan::assigned_contexts(&self.store)
            .await
            .unwrap_or_default();
        let shown = path.display().to_string();
        crate::plan::check_text(&self.config, &shown, text, &assigned)
            .map(Arc::new)
            .map_err(|problems| {
                problems
                    .iter()
                    .map(|d| pbx_web_admin::dialplan_file::Problem {
                        line: d.line,
                        col: d.col,
                        message: d.message.clone(),
                    })
                    .collect()
            })
    }

    async fn lift_ban(&self, addr: IpAddr) -> Result<bool, StoreError> {
        let lifted = self.store.remove_ban(addr).await?;
        // The guard re-reads the bans every 2 s; read them now so the lift is immediate.
        let now_unix = crate::transport::now_unix();
        let bans: Vec<_> = self
            .store
            .active_bans(now_unix)
            .await?
            .into_iter()
            .map(|b| crate::security::guard::Ban {
                address: b.address,
                reason: b.reason,
                until: b.until,
            })
            .collect();
        self.guard.sync_bans(&bans, Instant::now());
        Ok(lifted)
    }

    fn calls(&self) -> Vec<LiveCall> {
        self.engine
            .calls
            .list()
            .into_iter()
            .map(|c| LiveCall {
                id: c.id(),
                call_id: c.call_id,
                caller: c.caller,
                called: c.called,
                started_at: c.started_at,
                answered_at: c.answered_at,
                codec: c.codec,
                caller_encrypted: c.caller_encrypted,
                callee_encrypted: c.callee_encrypted,
            })
            .collect()
    }

    fn hang_up(&self, id: &str) -> bool {
        match self.engine.calls.find(id) {
            Some((shard, call)) => self.engine.dispatcher.hang_up(shard, call),
            None => false,
        }
    }

    fn sip_running(&self) -> bool {
        self.engine.dispatcher.running()
    }

    fn dialplan_file(&self) -> Option<PathBuf> {
        self.config.dialplan.file.clone()
    }

    fn mailbox_changed(&self, mailbox: &str) {
        // The lamps follow at once (the store's change watch would within seconds).
        let mwi = self.engine.mwi.clone();
        let mailbox = mailbox.to_string();
        tokio::spawn(async move {
            if let Err(error) = mwi.mailbox_changed(&mailbox).await {
                tracing::warn!(%error, %mailbox, "message lamps not updated");
            }
        });
    }

    fn security_events(&self, limit: usize) -> Vec<SecurityEvent> {
        self.engine.security_log.recent(limit)
    }

    fn mail_health(&self) -> Option<MailHealth> {
        self.engine.mailer.as_ref().map(|m| m.health())
    }

    fn trunks_changed(&self) {
        // The loader would see the change within seconds; now is better for the admin.
        let trunks = self.engine.trunks.clone();
        tokio::spawn(async move { trunks.reload().await });
    }
}

pub struct GuardLogin {
    pub guard: Arc<Guard>,
    pub store: Arc<Store>,
    pub security_log: Arc<SecurityLog>,
    pub ban_alerts: Option<crate::mail::BanAlerts>,
}

impl LoginGuard for GuardLogin {
    fn admit(&self, source: IpAddr) -> Result<Box<dyn LoginTicket>, LoginRefusal> {
        match self
            .guard
            .admit_credential(source, Instant::now(), crate::transport::now_unix())
        {
            Admission::Granted(ticket) => Ok(Box::new(GuardTicket {
                guard: self.guard.clone(),
                store: self.store.clone(),
                security_log: self.security_log.clone(),
                ticket,
                source,
                ban_alerts: self.ban_alerts.clone(),
            })),
            Admission::Banned => Err(LoginRefusal::Banned),
            Admission::Busy => Err(LoginRefusal::Busy),
        }
    }
}

struct GuardTicket {
    guard: Arc<Guard>,
    store: Arc<Store>,
    security_log: Arc<SecurityLog>,
    ticket: Ticket,
    source: IpAddr,
    ban_alerts: Option<crate::mail::BanAlerts>,
}

#[async_trait]
impl LoginTicket for GuardTicket {
    async fn settle(self: Box<Self>, ok: bool) -> LoginSettled {
        let GuardTicket {
            guard,
            store,
            security_log,
            ticket,
            source,
            ban_alerts,
        } = *self;
        let now_unix = crate::transport::now_unix();
        let gated = guard.check_credential(ticket, Instant::now(), now_unix, || CheckOutcome {
            result: (),
            failed: !ok,
        });
        match gated {
            Gated::Refused => LoginSettled::Banned,
            Gated::Checked { ban: None, .. } if ok => LoginSettled::Accepted,
            Gated::Checked { ban: None, .. } => {
                metrics::counter!("pbx_auth_failures_total").increment(1);
                security_log.push(now_unix, SecurityKind::LoginFailed, source, "", "");
                LoginSettled::Rejected
            }
            Gated::Checked { ban: Some(ban), .. } => {
                metrics::counter!("pbx_auth_failures_total").increment(1);
                security_log.push(now_unix, SecurityKind::LoginFailed, source, "", "");
                security_log.push(
                    now_unix,
                    SecurityKind::Banned,
                    source,
                    "",
                    &format!("until {}", pbx_web_admin::views::when(ban.until)),
                );
                metrics::counter!("pbx_bans_total").increment(1);
                tracing::warn!(address = %source, until = ban.until, "banned after repeated authentication failures (web login)");
                if let Err(error) = store.add_ban(ban.address, &ban.reason, ban.until).await {
                    tracing::error!(%error, "could not save a ban");
                }
                // The guard hands out each ban once: one mail per source per ban, as for SIP.
                if let Some(alerts) = &ban_alerts {
                    alerts.banned(ban.address, ban.until);
                }
                LoginSettled::RejectedAndBanned
            }
        }
    }
}

/// The web admin's state for a running server.
pub fn state(
    config: &Config,
    store: Arc<Store>,
    guard: Arc<Guard>,
    plan: Arc<PlanHandle>,
    registrations: Registrations,
    engine: Engine,
) -> Arc<pbx_web_admin::AdminState> {
    let mut settings = pbx_web_admin::Settings::new(
        config.sip.domain.clone(),
        config
            .sip
            .listen
            .iter()
            .map(|l| (l.transport, l.addr))
            .collect(),
    );
    settings.voicemail_storage = Some(config.voicemail.storage.clone());
    settings.secure_cookies = config.web.tls;
    let live = ServerLive {
        registrations,
        engine,
        plan,
        config: config.clone(),
        store: store.clone(),
        guard: guard.clone(),
    };
    let login = GuardLogin {
        guard,
        store: store.clone(),
        security_log: live.engine.security_log.clone(),
        ban_alerts: live.engine.ban_alerts.clone(),
    };
    Arc::new(pbx_web_admin::AdminState::new(
        store,
        Arc::new(live),
        Arc::new(login),
        settings,
    ))
}
