//! `sentrix user add|passwd|remove|list` and `sentrix certs generate`. Account commands
//! open only the index database (safe beside a running instance, which sees the change at
//! the next login). A password comes from stdin with `--password-stdin`; otherwise one is
//! generated and printed once.

use super::{Role, password};
use crate::config::Config;
use crate::store::{Store, StoreConfig};
use anyhow::{Context, bail};
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
    if pw.chars().count() < password::MIN_LENGTH {
        bail!(
            "the password must have at least {} characters",
            password::MIN_LENGTH
        );
    }
    Ok((pw, false))
}

fn valid_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if !ok {
        bail!("user name {name:?} must be 1-64 letters, digits or - _ . @");
    }
    Ok(())
}

pub fn user(config: &Config, action: UserAction, password_stdin: bool) -> anyhow::Result<()> {
    let store_config = StoreConfig::from_config(config);
    let audit_path = store_config.database.with_file_name("audit.log");
    // The store first: it creates the database's directory (0700).
    let store = Store::open_accounts(store_config).context("while opening the index database")?;
    let audit =
        crate::web::audit::Audit::open(Some(&audit_path)).context("while opening the audit log")?;
    let local = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let by = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "local".into());
    let now = crate::store::now_ms();
    match action {
        UserAction::Add { name, role } => {
            valid_name(&name)?;
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("role {role:?} is not admin or viewer"))?;
            let (pw, generated) = read_password(password_stdin)?;
            let phc = password::hash(&pw).map_err(anyhow::Error::msg)?;
            store.add_user(&name, role.as_str(), &phc, now)?;
            audit.log(
                Some(&by),
                local,
                "user_add",
                &format!("{name} ({})", role.as_str()),
            );
            println!("added {} user {name}", role.as_str());
            if generated {
                println!("password (shown once): {pw}");
            }
        }
        UserAction::Passwd { name } => {
            let (pw, generated) = read_password(password_stdin)?;
            let phc = password::hash(&pw).map_err(anyhow::Error::msg)?;
            store.set_user_password(&name, &phc)?;
            audit.log(Some(&by), local, "user_passwd", &name);
            println!("password of {name} changed");
            if generated {
                println!("password (shown once): {pw}");
            }
        }
        UserAction::Remove { name } => {
            store.remove_user(&name)?;
            audit.log(Some(&by), local, "user_remove", &name);
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
