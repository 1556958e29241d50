//! `sentrix init`, `sentrix user add|passwd|remove|list` and `sentrix certs generate`.
//! Account commands
//! open only the index database (safe beside a running instance, which sees the change at
//! the next login). A password comes from stdin with `--password-stdin`; otherwise one is
//! generated and printed once.

use super::{Role, accounts, password};
use crate::config::Config;
use crate::store::{Store, StoreConfig};
use anyhow::Context;
use std::io::BufRead;

pub enum UserAction {
    Add { name: String, role: String },
    Passwd { name: String },
    Remove { name: String },
    List,
}

fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
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
struct AccountsCli {
    store: Store,
    audit: crate::web::audit::Audit,
    by: String,
    local: std::net::IpAddr,
}

impl AccountsCli {
    fn open(config: &Config) -> anyhow::Result<Self> {
        // The store first: it creates the database's directory (0700).
        let store = Store::open_accounts(StoreConfig::from_config(config))
            .context("while opening the index database")?;
        let audit = crate::web::audit::Audit::open(Some(&crate::web::audit::path_for(config)))
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

    fn audit(&self, action: &str, object: &str) {
        self.audit.log(Some(&self.by), self.local, action, object);
    }
}

pub fn user(config: &Config, action: UserAction, password_stdin: bool) -> anyhow::Result<()> {
    let cli = AccountsCli::open(config)?;
    let store = &cli.store;
    let now = crate::store::now_ms();
    match action {
        UserAction::Add { name, role } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("role {role:?} is not admin or viewer"))?;
            let (pw, generated) = read_password(password_stdin)?;
            accounts::add(store, &name, role, &pw, now)?;
            cli.audit("user_add", &format!("{name} ({})", role.as_str()));
            println!("added {} user {name}", role.as_str());
            if generated {
                println!("password (shown once): {pw}");
            }
        }
        UserAction::Passwd { name } => {
            let (pw, generated) = read_password(password_stdin)?;
            accounts::set_password(store, &name, &pw)?;
            cli.audit("user_passwd", &name);
            println!("password of {name} changed");
            if generated {
                println!("password (shown once): {pw}");
            }
        }
        UserAction::Remove { name } => {
            accounts::remove(store, &name)?;
            cli.audit("user_remove", &name);
            println!("removed user {name}");
        }
        UserAction::List => {
            for u in store.users()? {
                println!(
                    "{}\t{}\tcreated {}",
                    u.name,
                    u.role,
                    crate::store::utc_date(u.created_ms)
                );
            }
        }
    }
    Ok(())
}

/// `sentrix init`: on a box with no user yet, adds the first admin with a generated
/// password (printed once, never stored in clear) and makes sure the dashboard has a
/// certificate, then prints where to log in and the fingerprint to compare.
/// With `if_needed`, a box that already has users is left as it is and that is success
/// (`make run` calls it so a first start prints a login).
pub fn init(config: &Config, name: &str, if_needed: bool) -> anyhow::Result<()> {
    let cli = AccountsCli::open(config)?;
    let existing = cli.store.users()?;
    if !existing.is_empty() && if_needed {
        println!(
            "dashboard users exist already ({}): log in as one of them; `sentrix user list` shows them",
            existing.len()
        );
        return Ok(());
    }
    if !existing.is_empty() {
        anyhow::bail!(
            "already set up: {} user(s) exist ({}); manage them with `sentrix user add|passwd|remove`",
            existing.len(),
            existing
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let pw = password::generate().map_err(anyhow::Error::msg)?;
    accounts::add(&cli.store, name, Role::Admin, &pw, crate::store::now_ms())?;
    cli.audit("user_add", &format!("{name} (admin, init)"));
    let sec = &config.security;
    let scheme = if sec.use_tls { "https" } else { "http" };
    let host = match config.network.bind {
        std::net::IpAddr::V4(a) if a.is_unspecified() => "THIS-BOX".to_string(),
        std::net::IpAddr::V6(a) if a.is_unspecified() => "THIS-BOX".to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    println!("dashboard: {scheme}://{host}:{}/", config.network.api_port);
    println!("user: {name} (admin)");
    println!("password (shown once, write it down): {pw}");
    if sec.use_tls {
        let files = crate::web::tls::ensure(config)?;
        println!(
            "certificate {}{}",
            files.cert.display(),
            if files.generated { " (generated)" } else { "" }
        );
        println!("SHA-256 fingerprint: {}", files.fingerprint);
    }
    Ok(())
}

/// Writes a new self-signed certificate (and key) where the config says, for the default
/// names plus `hostnames`.
pub fn certs_generate(config: &Config, hostnames: &[String]) -> anyhow::Result<()> {
    let cert = config.resolve(&config.security.tls_cert);
    let key = config.resolve(&config.security.tls_key);
    let names = crate::web::tls::default_names(hostnames);
    let fp = crate::web::tls::generate(&cert, &key, &names)?;
    println!("certificate {} (key {})", cert.display(), key.display());
    println!("names: {}", names.join(", "));
    println!("SHA-256 fingerprint: {fp}");
    Ok(())
}
