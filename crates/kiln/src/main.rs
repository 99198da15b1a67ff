//! The `kiln` binary: `kiln serve` runs the platform; other subcommands are clients of it.

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
    Serve(serve::ServeArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
    }
}
