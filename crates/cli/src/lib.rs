//! The `scanwatch` command: argument parsing at the edge and the commands themselves.
//! Library form so the end-to-end benches and tests can call the commands directly.

pub mod admin;
pub mod analyze;
pub mod block;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod demo_live;
pub mod incidents;
pub mod input;
pub mod intel;
pub mod sensor;
pub mod server;
