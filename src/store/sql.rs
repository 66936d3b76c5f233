//! SQL fragments both backends share, built from the domain's rules so the SQL and
//! the rules cannot drift apart.

use crate::domain::state::KycState;

/// `'a','b'` for the states matching `keep`.
pub fn state_list(keep: impl Fn(KycState) -> bool) -> String {
    KycState::ALL
        .into_iter()
        .filter(|s| keep(*s))
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The condition for an open request that an identical init may reuse at time `now`:
/// waiting on the customer and not yet expired, or already finished by the customer.
pub fn reusable(alias: &str, now: &str) -> String {
    format!(
        "(({alias}.state IN ({waiting}) AND {alias}.expires_at > {now}) OR {alias}.state IN ({finished}))",
        waiting = state_list(KycState::expires_by_time),
        finished = state_list(|s| s.is_open() && !s.expires_by_time()),
    )
}
