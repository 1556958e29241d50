//! What the account commands (`sentrix init`, `sentrix user …`) share: the index database
//! opened for accounts only (safe beside a running instance, which sees a change at the
//! next request), the audit log, who is running the command, and the password from stdin
//! or generated.

use crate::auth::{accounts, password};
use crate::config::Config;
use crate::store::{Store, StoreConfig};
use anyhow::Context;
use std::io::BufRead;

/// A password from the first line of stdin, or a generated one (then `true`).
pub(super) fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((password::generate().map_err(anyhow::Error::msg)?, true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    accounts::check_password(&pw)?;
    Ok((pw, false))
}

/// What every account command works with: the index database, the audit log, and who
/// (the login running the command, on this box) to write into it.
pub(super) struct AccountsCli {
    pub(super) store: Store,
    audit: crate::audit::Audit,
    by: String,
    local: std::net::IpAddr,
}

impl AccountsCli {
    pub(super) fn open(config: &Config) -> anyhow::Result<Self> {
        // The store first: it creates the database's directory (0700).
        let store = Store::open_accounts(StoreConfig::from_config(config))
            .context("while opening the index database")?;
        let audit = crate::audit::Audit::open(Some(&config.paths.audit_log))
            .context("while opening the audit log")?;
        let by = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "local".into());
        Ok(Self {
            store,
            audit,
            by,
            local: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        })
    }

    pub(super) fn audit(&self, action: &str, object: &str) {
        self.audit.log(Some(&self.by), self.local, action, object);
    }
}
