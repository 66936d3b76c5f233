//! paycc: the Paycc customer-KYC API (IPAYMENT-compatible).
//!
//! Data flows one way: `http` → `service` (using the pure `domain`) → `store` /
//! `provider`, and back out through one envelope.

pub mod app;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod provider;
pub mod sandbox;
pub mod service;
pub mod store;
pub mod workers;
