//! The admin's e-mail when a source is banned (the intrusion alert of the seed paper): one
//! per ban, since the engine (for SIP and voicemail PINs) and the security guard (for web
//! logins, `web/admin.rs`) each report a ban once.

use std::net::IpAddr;
use std::sync::Arc;

use super::{Mail, Mailer};

#[derive(Clone)]
pub struct BanAlerts {
    mailer: Arc<Mailer>,
    to: String,
    domain: String,
}

impl BanAlerts {
    pub fn new(mailer: Arc<Mailer>, to: String, domain: String) -> BanAlerts {
        BanAlerts { mailer, to, domain }
    }

    /// `address` is banned until `until` (Unix seconds).
    pub fn banned(&self, address: IpAddr, until: u64) {
        let until = crate::cli::table::format_unix(until);
        let mail = Mail {
            to: self.to.clone(),
            subject: format!("[{}] {address} banned", self.domain),
            text: format!(
                "The PBX {domain} banned {address} after repeated failed authentications \
                 (SIP digest, voicemail PIN or web login).\n\n\
                 Banned until: {until}\n\n\
                 Nothing from that address reaches the PBX until then. If it is one of your \
                 own phones with a wrong password, fix the phone, then lift the ban:\n\n\
                 \x20   pbx ban remove {address} --config pbx.toml\n\n\
                 or on the web admin's Bans page.\n",
                domain = self.domain,
            ),
            attachment: None,
        };
        if let Err(error) = self.mailer.send(mail) {
            tracing::error!(%error, %address, "could not queue the ban alert");
        }
    }
}
