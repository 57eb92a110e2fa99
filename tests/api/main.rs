//! Black-box tests of the HTTP API, served in-process on a loopback port against the real
//! Postgres and Redis, each test with its own database and key prefix.

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod browse;
mod browser;
mod connections;
mod console;
mod databases;
mod errors;
mod events;
mod files;
mod handlers;
mod harness;
mod health;
mod jobs;
mod keys;
mod limits;
mod operations;
mod outages;
mod queue;
mod realtime;
mod schedules;
mod upgrade;
mod uploads;
mod webhooks;
mod worker;
