//! `sentrix token create|list|revoke`: API tokens for scripts and integrations, managed
//! beside a running instance (revocation takes effect at the token's next request). A new
//! token is printed once; only its hash is stored.

use super::accounts::AccountsCli;
use crate::auth::Role;
use crate::auth::tokens::{self, Scope, TokenRequest};
use crate::config::Config;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: TokenAction,
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum TokenAction {
    /// Make a token: `sentrix token create NAME --role viewer|admin [--expires DAYS]
    /// [--scope events:read --scope live ...]`.
    Create {
        name: String,
        #[arg(long, value_enum, default_value_t = Role::Viewer)]
        role: Role,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires: Option<f64>,
        /// A scope (events:read, clips:read, live, admin); repeat for several. Default:
        /// all the role may hold.
        #[arg(long = "scope", value_parser = parse_scope)]
        scopes: Vec<Scope>,
    },
    /// List tokens: name, role, scopes, expiry, last use and use count.
    List,
    /// Revoke a token at once.
    Revoke { name: String },
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s)
        .ok_or_else(|| format!("unknown scope {s:?}: events:read, clips:read, live or admin"))
}

pub fn run(args: Args) -> ExitCode {
    match super::load(args.config) {
        Ok(c) => super::report(token(&c, args.action)),
        Err(code) => code,
    }
}

fn token(config: &Config, action: TokenAction) -> anyhow::Result<()> {
    let cli = AccountsCli::open(config)?;
    let store = &cli.store;
    let now = crate::base::clock::wall_ms();
    match action {
        TokenAction::Create {
            name,
            role,
            expires,
            scopes,
        } => {
            let req = TokenRequest {
                name,
                role,
                scopes: (!scopes.is_empty()).then_some(scopes),
                expires_days: expires,
            };
            let (token, row) = tokens::create(store, &req, now).map_err(anyhow::Error::msg)?;
            cli.audit(
                "token_create",
                &format!("{} ({}; {})", row.name, row.role, row.scopes),
            );
            println!(
                "created {} token {} with scopes {}",
                row.role, row.name, row.scopes
            );
            if let Some(exp) = row.expires_ms {
                println!("expires {}", crate::base::clock::utc_date(exp));
            }
            println!("token (shown once; send it as 'Authorization: Bearer TOKEN'):");
            println!("{token}");
        }
        TokenAction::List => {
            for t in store.tokens()? {
                let date =
                    |ms: Option<i64>| ms.map_or("never".into(), crate::base::clock::utc_date);
                println!(
                    "{}\t{}\t{}\texpires {}\tlast used {} from {}\t{} uses",
                    t.name,
                    t.role,
                    t.scopes,
                    date(t.expires_ms),
                    date(t.last_used_ms),
                    if t.last_address.is_empty() {
                        "-"
                    } else {
                        &t.last_address
                    },
                    t.uses
                );
            }
        }
        TokenAction::Revoke { name } => {
            if !store.remove_token(&name)? {
                anyhow::bail!("no token {name:?}");
            }
            cli.audit("token_revoke", &name);
            println!("revoked token {name}");
        }
    }
    Ok(())
}
