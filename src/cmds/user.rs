//! `sentrix user add|passwd|remove|unlock|list`: dashboard accounts, managed beside a running
//! instance. A password comes from stdin with `--password-stdin`; otherwise one is
//! generated and printed once.

use super::accounts::{AccountsCli, read_password};
use crate::auth::{Role, accounts};
use crate::config::Config;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: UserAction,
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Read the password from the first line of stdin (else one is generated).
    #[arg(long, global = true)]
    password_stdin: bool,
}

#[derive(Subcommand)]
pub enum UserAction {
    /// Add a user: `sentrix user add NAME --role admin|viewer [--password-stdin]`.
    Add {
        name: String,
        #[arg(long, value_enum, default_value_t = Role::Viewer)]
        role: Role,
    },
    /// Change a user's password.
    Passwd { name: String },
    /// Remove a user.
    Remove { name: String },
    /// Lift a lockout of a user name (and of its known devices) at once.
    Unlock { name: String },
    /// List users and roles.
    List,
}

pub fn run(args: Args) -> ExitCode {
    match super::load(args.config) {
        Ok(c) => super::report(user(&c, args.action, args.password_stdin)),
        Err(code) => code,
    }
}

fn user(config: &Config, action: UserAction, password_stdin: bool) -> anyhow::Result<()> {
    let cli = AccountsCli::open(config)?;
    let store = &cli.store;
    let now = crate::base::clock::wall_ms();
    match action {
        UserAction::Add { name, role } => {
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
        UserAction::Unlock { name } => {
            accounts::unlock(store, &name)?;
            cli.audit("user_unlock", &name);
            println!("unlocked user {name}");
        }
        UserAction::List => {
            for u in store.users()? {
                println!(
                    "{}\t{}\tcreated {}",
                    u.name,
                    u.role,
                    crate::base::clock::utc_date(u.created_ms)
                );
            }
        }
    }
    Ok(())
}
