//! Every store operation, written once for both databases against `db::Conn`. Where the
//! dialects truly differ (row locking, data-modifying `WITH`), the variant for each
//! stands beside the other in the same function.

pub mod callbacks;
pub mod clients;
pub mod idempotency;
pub mod kyc;
pub mod rows;
pub mod sandbox;
