//! Raw command-line arguments. Nothing here does I/O: `commands` resolves them into engine settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "Pull and run containers: no daemon, clear errors")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Store directory (default /var/lib/berth for root, $XDG_DATA_HOME/berth otherwise)
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log every request (credentials are never logged)
    #[arg(long, global = true)]
    pub debug: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// Credentials for this pull, USER:PASSWORD (before every stored login)
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// Certificate directory for the registry (CA *.crt, client.cert + client.key); replaces certs.d lookup
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Allow plain HTTP to this registry (repeatable)
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download an image into the local store
    Pull {
        /// Image name, e.g. nginx, registry.example.com:5000/team/app:1.4, app@sha256:…
        image: String,
        /// Platform to pull, os/arch[/variant] (default: this machine's)
        #[arg(long)]
        platform: Option<String>,
        /// Layers fetched at once
        #[arg(long, value_name = "N")]
        max_concurrent: Option<usize>,
        /// Print only the digest
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// List local images
    Images {
        /// Print only names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Log in to a registry (default: Docker Hub); the login is checked before it is saved
    Login {
        /// Registry host[:port]
        registry: Option<String>,
        #[arg(short, long)]
        username: Option<String>,
        /// Password on the command line (visible to other users: prefer --password-stdin)
        #[arg(short, long)]
        password: Option<String>,
        /// Read the password from standard input
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        registry_args: RegistryArgs,
    },
    /// Remove a stored login (default: Docker Hub)
    Logout {
        registry: Option<String>,
    },
    /// Print shell completions
    Completions {
        shell: clap_complete::Shell,
    },
}
