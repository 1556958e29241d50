//! The `sentrix` binary: parses the command line and hands over to `sentrix::cmds`, where
//! each command lives in a file of its own.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = sentrix::cmds::Cli::parse();
    sentrix::base::logging::init();
    cli.run()
}
