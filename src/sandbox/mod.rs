//! The sandbox, in one place: paycc plays the provider so integrators can build and
//! test without an account. A tester decides each KYC, in the hosted journey or through
//! the helper API, and an approval comes back with synthetic DigiLocker data.
//!
//! - `provider`: the sandbox as a `KycProvider`; it needs no store, only its own port
//!   (`journey::JourneyLog`), which `stored::StoredJourneys` fills from the store.
//! - `journey`: the journey's steps and the outcomes a tester can choose.
//! - `people`: the synthetic records, and the other person DigiLocker can return.
//!
//! The use cases that drive it are the service's `Journeys` room (`service/journey.rs`,
//! `service/sandbox.rs`); its pages are `http/gateway`, its helper route
//! `http/sandbox.rs`. Nothing else asks for the sandbox by name: the provider's
//! `Offers` say whether a simulated journey exists.

mod journey;
mod people;
mod provider;
mod stored;

pub use journey::{JourneyEnd, JourneyLog, Outcome, Step};
pub use people::{other_person_than, synthetic_identity};
pub use provider::Sandbox;
pub use stored::StoredJourneys;

pub const NAME: &str = "sandbox";
