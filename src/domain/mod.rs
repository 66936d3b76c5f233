//! Pure rules of the KYC domain: no IO, no clocks, no randomness.

pub mod binding;
pub mod callback;
pub mod cidr;
pub mod code;
pub mod fields;
pub mod ids;
pub mod kyc;
pub mod rate;
pub mod request;
pub mod sealed;
pub mod state;
pub mod timestamp;
