//! Tests of the built `app` binary as a process: exit codes, signals, logs, concurrent
//! migrations and start-up against unreachable dependencies.

#[path = "../common/mod.rs"]
mod common;

mod all;
mod browser;
mod cli;
mod cluster;
mod console;
mod dashboard;
mod events;
mod jobs;
mod keys;
mod lifecycle;
mod migrate;
mod realtime;
mod scheduler;
mod startup;
mod tls;
