//! `sentrix init`: the first admin (with a generated password, printed once) and the
//! dashboard's certificate. Refuses when a user already exists.

use super::accounts::AccountsCli;
use crate::auth::{Role, accounts, password};
use crate::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: Option<PathBuf>,
    /// Name of the first admin.
    #[arg(long, default_value = "admin")]
    user: String,
    /// Succeed without changing anything when users exist already.
    #[arg(long)]
    if_needed: bool,
}

pub fn run(args: Args) -> ExitCode {
    match super::load(args.config) {
        Ok(c) => super::report(init(&c, &args.user, args.if_needed)),
        Err(code) => code,
    }
}

/// `sentrix init`: on a box with no user yet, adds the first admin with a generated
/// password (printed once, never stored in clear) and makes sure the dashboard has a
/// certificate, then prints where to log in and the fingerprint to compare.
/// With `if_needed`, a box that already has users is left as it is and that is success
/// (`make run` calls it so a first start prints a login).
fn init(config: &Config, name: &str, if_needed: bool) -> anyhow::Result<()> {
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
    accounts::add(
        &cli.store,
        name,
        Role::Admin,
        &pw,
        crate::base::clock::wall_ms(),
    )?;
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
        let files = crate::tls::ensure(config)?;
        println!(
            "certificate {}{}",
            files.cert.display(),
            if files.generated { " (generated)" } else { "" }
        );
        println!("SHA-256 fingerprint: {}", files.fingerprint);
    }
    Ok(())
}
