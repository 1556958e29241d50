//! `sentrix certs generate`: a new self-signed certificate for the dashboard.

use crate::config::Config;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: CertsAction,
}

#[derive(Subcommand)]
enum CertsAction {
    /// Write a new self-signed certificate for localhost, this host and its addresses.
    Generate {
        /// Extra names or addresses the certificate should cover (repeatable).
        #[arg(long)]
        hostname: Vec<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> ExitCode {
    let CertsAction::Generate { hostname, config } = args.action;
    match super::load(config) {
        Ok(c) => super::report(generate(&c, &hostname)),
        Err(code) => code,
    }
}

/// Writes a new self-signed certificate (and key) where the config says, for the default
/// names plus `hostnames`.
fn generate(config: &Config, hostnames: &[String]) -> anyhow::Result<()> {
    let (cert, key) = (&config.paths.tls_cert, &config.paths.tls_key);
    let names = crate::tls::default_names(hostnames);
    let fp = crate::tls::generate(cert, key, &names)?;
    println!("certificate {} (key {})", cert.display(), key.display());
    println!("names: {}", names.join(", "));
    println!("SHA-256 fingerprint: {fp}");
    Ok(())
}
