//! The `reactor` binary: parse the command line, run the subcommand, and turn any error into
//! one line on stderr and a non-zero exit status.

use std::process::ExitCode;

use clap::Parser;
use reactor::cli::{self, Cli, Command};

fn main() -> ExitCode {
    // `info` by default, so the server says "Connection from ..." like the article's;
    // RUST_LOG=debug shows every state transition of every connection. rustls only from
    // `error` by default: its warnings are one line per connection about what the peer sent
    // (a plaintext client on a TLS port, or `load --tls` against a plaintext server), which
    // our own lines already say once; RUST_LOG=rustls=warn brings them back.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,rustls=error")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cli::serve(args),
        Command::Send(args) => cli::send(args),
        Command::Load(args) => reactor::load::cli::load(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reactor: {e}");
            ExitCode::FAILURE
        }
    }
}
