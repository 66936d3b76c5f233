//! Moves of requests in groups (`group`): one statement moves every request whose move
//! applies, marks the provider checks, marks approved customers verified and queues the
//! callbacks, for all of a group's moves at once. A kid moved again later in the group, and
//! an operator's decision (its audit entry is written only if it applies), are moved one by
//! one after the others, in the same transaction, since one statement may not change a
//! row twice.

use super::Ctx;
use super::group::{Grouped, by_position, each};
use crate::domain::callback::KycEvent;
use crate::domain::state::KycState;
use crate::store::StoreResult;
use crate::store::Transition;
use crate::store::backend::Run;
use crate::store::ops::{kyc, rows, statement};
use crate::store::sql::{insert_callback_events, state_list};
use sqlx::PgConnection;
use std::collections::HashSet;

/// For the target state `to` (an SQL expression), the states a request may move to it
/// from, as a `TEXT[]`.
fn allowed_from(to: &str) -> String {
    let arms: String = KycState::ALL
        .into_iter()
        .map(|target| {
            let from = state_list(|s| s.can_move_to(target));
            format!(" WHEN '{}' THEN ARRAY[{from}]::TEXT[]", target.as_str())
        })
        .collect();
    format!("CASE {to}{arms} ELSE ARRAY[]::TEXT[] END")
}

// The guard is the same as `kyc::transition`'s, for each row against its own target. A
// row another transaction changes meanwhile is waited for and the guard checked again
// on its new version: so the guard is an expression of the row and its move, never a
// join (PostgreSQL rechecks a changed row only against the rows it was joined with;
// joined with the allowed pairs, a move the new state allows was refused). A move that
// does not apply is still marked checked, in a second update that leaves out the rows
// the first moved (each row changes once). Of several approvals of one customer's
// requests, the last in the group marks it verified, as they would one by one. Rows
// carry the state each move leaves its request in; a request neither moved nor checked
// is not in them.
statement!(
    MOVE_GROUP,
    "WITH w AS (
       SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::BIGINT[],
         $6::BIGINT[]) WITH ORDINALITY AS w (kid, to_state, reason, result_sealed, at, checked_at, i)),
     moved AS (
       UPDATE kyc_requests k SET state = w.to_state, reason = COALESCE(w.reason, k.reason),
         result_sealed = COALESCE(w.result_sealed, k.result_sealed), updated_at = w.at,
         checked_at = COALESCE(w.checked_at, k.checked_at)
       FROM w
       WHERE k.kid = w.kid AND k.state = ANY({allowed})
       RETURNING w.i, k.kid, k.merchant_pk, k.customer_pk, w.to_state, w.at),
     checked AS (
       UPDATE kyc_requests k SET checked_at = w.checked_at
       FROM w
       WHERE k.kid = w.kid AND w.checked_at IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM moved WHERE moved.i = w.i)
       RETURNING w.i, k.state),
     verified AS (
       UPDATE customers c SET verified_kid = v.kid, updated_at = v.at
       FROM (SELECT DISTINCT ON (customer_pk) customer_pk, kid, at FROM moved
             WHERE to_state = '{approved}' ORDER BY customer_pk, i DESC) AS v
       WHERE c.pk = v.customer_pk),
     queued AS ({queue})
     SELECT w.i, COALESCE(moved.to_state, checked.state) AS t
     FROM w LEFT JOIN moved ON moved.i = w.i LEFT JOIN checked ON checked.i = w.i
     WHERE moved.i IS NOT NULL OR checked.i IS NOT NULL",
    allowed = allowed_from("w.to_state"),
    approved = KycState::Approved.as_str(),
    queue = insert_callback_events(
        &format!(
            "(SELECT kid, merchant_pk, customer_pk, to_state, at FROM moved WHERE to_state IN ({}))",
            state_list(|s| KycEvent::on_entering(s).is_some())
        ),
        "x.to_state",
        "x.at"
    )
);

/// Moves of requests, grouped.
pub(super) struct Moves;

impl Grouped for Moves {
    type Write = Transition;
    type Done = Option<KycState>;
    const QUEUE: &'static str = "postgres_move_groups";
    // A group's commit releases its requests at once, and each then builds a reply that
    // carries the identity: at most 256 a group, peak RSS rose 43 → 51–65 MiB with 64
    // completions in flight; at most 16 (what the pool used to let through), 44.6–46.9 MiB,
    // with as many completions a second (`BENCHMARKS.md`).
    const MOST: usize = 16;

    fn observe(size: usize) {
        crate::metrics::postgres_group_moves(size);
    }

    fn together<'c>(
        tx: &'c mut PgConnection,
        moves: &'c [Transition],
    ) -> Run<'c, Vec<Option<KycState>>> {
        Box::pin(together(tx, moves))
    }

    fn alone<'c>(conn: &'c mut PgConnection, t: &'c Transition) -> Run<'c, Option<KycState>> {
        Box::pin(kyc::transition(conn, t))
    }
}

/// The statement over the first move of each kid, then the rest one by one.
async fn together(
    tx: &mut PgConnection,
    moves: &[Transition],
) -> StoreResult<Vec<Option<KycState>>> {
    let mut seen = HashSet::with_capacity(moves.len());
    let (mut firsts, rest): (Vec<usize>, Vec<usize>) = (0..moves.len())
        .partition(|&i| moves[i].audit.is_none() && seen.insert(moves[i].kid.as_str()));
    // Sent in kid order: the generic plan walks the moves in order and finds each row by
    // its key (EXPLAIN over 100,000 rows; a nearly empty table is scanned instead, in the
    // same order for every group), so two groups (or nodes) moving the same requests lock
    // them in the same order. A deadlock would still fail only the statement, and the
    // group be replayed.
    firsts.sort_unstable_by(|&a, &b| moves[a].kid.cmp(&moves[b].kid));
    let group: Vec<&Transition> = firsts.iter().map(|&i| &moves[i]).collect();
    let rows = sqlx::query(MOVE_GROUP.as_str())
        .bind(each(&group, |t| &t.kid))
        .bind(each(&group, |t| t.to.as_str()))
        .bind(each(&group, |t| &t.reason))
        .bind(each(&group, |t| &t.result_sealed))
        .bind(each(&group, |t| t.now.0))
        .bind(each(&group, |t| t.checked.then_some(t.now.0)))
        .fetch_all(&mut *tx)
        .await
        .ctx("moving a group of KYC requests")?;
    let found = by_position(
        &rows,
        group.len(),
        "moving a group of KYC requests",
        rows::state,
    )?;
    let mut after = vec![None; moves.len()];
    for (i, state) in firsts.into_iter().zip(found) {
        after[i] = match state {
            Some(state) => Some(state),
            // Neither moved nor checked (or no such kid): its state as committed now,
            // not as the statement's snapshot had it.
            None => kyc::unmoved(&mut *tx, &moves[i]).await?,
        };
    }
    for i in rest {
        after[i] = kyc::transition(&mut *tx, &moves[i]).await?;
    }
    Ok(after)
}
