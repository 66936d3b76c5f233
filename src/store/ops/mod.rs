//! Every store operation, written once for both databases against `db::Conn`. Where the
//! dialects truly differ (row locking, data-modifying `WITH`), the variant for each
//! stands beside the other in the same function.

/// A statement assembled once, from the domain's states and shared column lists (never
/// from input): `statement!(NAME, "format", args…)`.
macro_rules! statement {
    ($name:ident, $($format:tt)+) => {
        static $name: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!($($format)+));
    };
}
pub(crate) use statement;

pub mod audit;
pub mod callbacks;
pub mod clients;
pub mod idempotency;
pub mod kyc;
pub mod retention;
pub mod rows;
pub mod sandbox;
pub mod sealed;
