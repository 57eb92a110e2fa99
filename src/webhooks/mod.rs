//! Webhooks: the endpoints applications register (URL, the event types they want, a
//! signing secret of their own), one delivery job per event and matching endpoint, the
//! delivery log with every attempt, replay, and disabling an endpoint that keeps failing.
//! Deliveries are signed the Standard Webhooks way and sent through the guarded client.
//!
//! Nothing lives here yet: the feature lands with events and webhooks. It will import
//! `config`, the stores, `outbound` (the guarded client and `SigningKey`), `jobs` (its
//! delivery handler is one file under `jobs/handlers`) and `events`; never HTTP, a mode,
//! the worker or the process state. Its routes will be `http/webhooks.rs`.
