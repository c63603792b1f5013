//! The `eventfold` command line: one subcommand per stage. Each loads the settings, builds
//! its stage and runs it until Ctrl-C/SIGTERM. Errors here are `anyhow` (the CLI boundary).

mod bench;
mod bench_query;
mod commands;
mod demo;
pub mod loadgen;
pub mod replay;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use commands::run;

/// Real-time interaction analytics on Kafka.
///
/// Apps' events (Avro, versioned in a Confluent-compatible schema registry) flow through a
/// Kafka topic keyed by user; consumer-group workers fold each partition, in order and
/// exactly once in effect, into read models you can query.
///
/// Settings: built-in defaults < eventfold.toml (or --config) < environment variables
/// EVENTFOLD__SECTION__KEY, e.g. EVENTFOLD__KAFKA__BOOTSTRAP_SERVERS=broker:9092.
#[derive(Debug, Parser)]
#[command(name = "eventfold", version, about, long_about)]
pub struct Cli {
    /// A TOML settings file (default: ./eventfold.toml if it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Confluent-compatible schema registry (its log is the Kafka topic `_schemas`).
    Registry,
    /// Run the HTTP collector apps send events to (`POST /v1/events`).
    Collect,
    /// Register the contract's versions, or check a new schema against the pipelines.
    Schema {
        /// What to do.
        #[command(subcommand)]
        what: SchemaWhat,
    },
    /// Check the pipeline files and print what each computes.
    Pipeline {
        /// The folder of pipeline files.
        #[arg(long, default_value = "pipelines")]
        dir: PathBuf,
    },
    /// Produce generated interaction events to Kafka, keyed by user_id.
    Produce(ProduceArgs),
    /// Send a realistic workload (sessions, Zipf items, funnels, late, out-of-order and
    /// duplicate events) through the collector or to Kafka, and write its ground truth.
    Loadgen(loadgen::LoadgenArgs),
    /// Fold the interactions topic into the read store as a consumer-group worker.
    Work,
    /// Rebuild a pipeline's read models from the log into a new database and switch
    /// `store.path` (a symbolic link) to it once caught up (blue/green).
    Replay(replay::ReplayArgs),
    /// Serve the query API over the read store.
    Serve,
    /// Print folded state from the read store.
    Query {
        /// What to print.
        #[command(subcommand)]
        what: QueryWhat,
    },
    /// Run registry, worker, query API and a steady event stream together (local demo).
    Demo(DemoArgs),
    /// Measure throughput side by side (figures are ratios from one run).
    Bench {
        /// What to measure.
        #[command(subcommand)]
        what: bench::BenchWhat,
    },
    /// Print the effective settings (defaults < file < environment) as TOML.
    Config,
    /// Print the SHA-256 (hex) of the secret read from stdin (without its final line break),
    /// for `key_sha256`, `password_sha256` and `read_token_sha256`.
    HashSecret,
}

/// What `eventfold schema` does.
#[derive(Debug, Subcommand)]
pub enum SchemaWhat {
    /// Register every version of the interaction contract (schemas/interaction/) in order.
    Register {
        /// Topic whose value subject (`<topic>-value`) receives the schemas.
        #[arg(long, default_value = "interactions")]
        topic: String,
    },
    /// Before registering a new version: can every pipeline still read events written with
    /// it? Lists each pipeline that breaks, with the field and the rule; exits 2 if any does.
    Check {
        /// The new schema (.avsc).
        schema: PathBuf,
        /// The folder of pipeline files.
        #[arg(long, default_value = "pipelines")]
        pipelines: PathBuf,
    },
}

/// What `eventfold query` prints.
#[derive(Debug, Subcommand)]
pub enum QueryWhat {
    /// One user's event counts by type.
    User {
        /// The user id.
        user_id: String,
    },
    /// Every user's event counts by type.
    Users,
    /// Every partition's last applied offset and accounting (read = folded + duplicates +
    /// dead-lettered).
    Partitions,
}

/// Options of `eventfold produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// How many events.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Distinct users.
    #[arg(long, default_value_t = 100)]
    pub users: u32,
    /// Distinct items.
    #[arg(long, default_value_t = 50)]
    pub items: u32,
    /// Seed: the same seed produces the same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Partitions of the topic, if this creates it.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
}

/// Options of `eventfold demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Events per second of the generated stream.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
}
