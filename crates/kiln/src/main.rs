//! The `kiln` binary: `kiln serve` runs the platform; other subcommands are clients of it.

mod client;
mod commands;
mod serve;

use clap::{Parser, Subcommand};

/// Kiln: a self-hosted, AWS Lambda-compatible serverless platform.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Kiln: the Lambda API (and, later, every other API) on one port.
    Serve(Box<serve::ServeArgs>),
    /// Invoke a function on a running Kiln and print its result and log.
    Invoke(commands::InvokeArgs),
    /// Print a function's logs from a running Kiln, optionally following them.
    Logs(commands::LogsArgs),
    /// Show what isolation this machine gives functions and which runtimes can run.
    Doctor(commands::DoctorArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Invoke(args) => commands::invoke(args),
        Command::Logs(args) => commands::logs(args),
        Command::Doctor(args) => commands::doctor(args),
    }
}
