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
    Logout { registry: Option<String> },
    /// Run a command in a new container (pulls the image if missing)
    Run(Box<RunArgs>),
    /// List containers
    Ps {
        /// Show all containers, not only running ones
        #[arg(short, long)]
        all: bool,
        /// Print only IDs
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a detached container's output
    Logs {
        container: String,
        /// Keep printing until the container exits
        #[arg(short, long)]
        follow: bool,
    },
    /// Stop containers: SIGTERM, then SIGKILL after a grace period
    Stop {
        #[arg(required = true)]
        containers: Vec<String>,
        /// Seconds to wait before SIGKILL
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
    },
    /// Send a signal to containers
    Kill {
        #[arg(required = true)]
        containers: Vec<String>,
        #[arg(short, long, default_value = "KILL")]
        signal: String,
    },
    /// Remove containers
    Rm {
        #[arg(required = true)]
        containers: Vec<String>,
        /// Kill running containers first
        #[arg(short, long)]
        force: bool,
    },
    /// Run a command in a running container
    Exec {
        #[arg(short, long)]
        interactive: bool,
        #[arg(short, long)]
        tty: bool,
        container: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Show a container's record, or an image's manifest and config
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Wait for containers to exit and print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove image names (blobs go with `image prune`)
    Rmi {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Give an image another name
    Tag { source: String, target: String },
    /// Image maintenance
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Supervises a detached container (internal)
    #[command(name = "__monitor", hide = true)]
    Monitor { id: String },
    /// Print shell completions
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Remove blobs and layers that no image and no container uses
    Prune,
    /// List local images
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to take it from berth's environment)
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind mount, /host/path:/container/path[:ro]
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Bind mount, type=bind,source=…,target=…[,readonly]
    #[arg(long)]
    pub mount: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Override the image's entrypoint ("" clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    /// host or none (bridge networking is not available yet)
    #[arg(long, default_value = "host")]
    pub network: String,
    /// Publish a port (needs bridge networking, not available yet)
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Memory limit, e.g. 512m
    #[arg(short, long)]
    pub memory: Option<String>,
    /// CPUs, e.g. 1.5
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Mount the root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// os/arch[/variant]
    #[arg(long)]
    pub platform: Option<String>,
    /// always, missing or never
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Runtime: embedded (default, built in), or an OCI runtime binary: runc, crun, youki or a path
    #[arg(long)]
    pub runtime: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    pub image: String,
    /// Command and arguments (default: the image's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
