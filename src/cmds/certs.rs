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
        /// Days the certificate is valid from now (default 825: what scanners and Apple's
        /// platforms accept for a certificate trusted by hand).
        #[arg(long, default_value_t = crate::tls::DEFAULT_VALID_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> ExitCode {
    let CertsAction::Generate {
        hostname,
        days,
        config,
    } = args.action;
    match super::load(config) {
        Ok(c) => super::report(generate(&c, &hostname, days)),
        Err(code) => code,
    }
}

/// Writes a new self-signed certificate (and key) where the config says, for the default
/// names plus `hostnames`.
fn generate(config: &Config, hostnames: &[String], days: u32) -> anyhow::Result<()> {
    let (cert, key) = (&config.paths.tls_cert, &config.paths.tls_key);
    let names = crate::tls::default_names(hostnames);
    let fp = crate::tls::generate_for(cert, key, &names, days)?;
    println!("valid for {days} days");
    println!("certificate {} (key {})", cert.display(), key.display());
    println!("names: {}", names.join(", "));
    println!("SHA-256 fingerprint: {fp}");
    Ok(())
}
