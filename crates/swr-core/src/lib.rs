//! swr-core: the engine of swr. Config, specs and tasks.md, providers, process supervision,
//! retry policy, the state store and the runner loop. It has no terminal dependencies: the
//! binary crate renders what this crate emits as events.

pub mod bounded_read;
pub mod config;
pub mod cost;
pub mod event;
pub mod outcome;
pub mod procinfo;
pub mod prompt;
pub mod provider;
pub mod retry;
pub mod runner;
pub mod slots;
pub mod spec;
pub mod store;
pub mod supervise;
pub mod webhook;
