//! The SQLite writer commits many requests' writes in one transaction, and PostgreSQL
//! writes inits, and moves of requests, that arrive together in one (group commit). A write that fails inside a
//! shared batch must leave no trace, and must not take the other writes of its batch
//! down with it: on a real database file and a real PostgreSQL, with the writes sent at
//! once so that they share batches.

mod common;

use paycc::domain::state::KycState;
use paycc::store::postgres::{PgSettings, PgStore};
use paycc::store::sqlite::SqliteStore;
use paycc::store::{
    AuditEntry, AuditFilter, AuditNote, CallbackFilter, ClientPk, CustomerLookup, KycRequests,
    MerchantPk, NewCustomer, NewKyc, Settings, Store, StoreError, Transition, Unique, UnixMs,
};
use std::sync::Arc;

const NOW: UnixMs = UnixMs(1_764_600_000_000);

/// `ms` milliseconds after `NOW`.
fn at(ms: i64) -> UnixMs {
    UnixMs(NOW.0 + ms)
}

fn new_kyc(merchant_pk: MerchantPk, n: usize, kid: String) -> NewKyc {
    NewKyc {
        kid,
        reference: format!("REF{n:029}"),
        merchant_pk,
        provider: "sandbox",
        state: KycState::Pending,
        fingerprint: format!("fingerprint-{n}").into_bytes(),
        url_sealed: Some(vec![1, 2, 3]),
        token_hash: Some(format!("token-{n}").into_bytes()),
        redirect_url: None,
        now: NOW,
        expires_at: at(86_400_000),
        customer: NewCustomer {
            cust_id: format!("C{n:011}"),
            pan_hash: format!("pan-{n}").into_bytes(),
            mobile_hash: format!("mobile-{n}").into_bytes(),
            details_sealed: vec![4, 5, 6],
            submitted_sealed: vec![4, 5, 7],
        },
    }
}

fn kid(n: usize) -> String {
    format!("KID261201120000000{n:014}")
}

/// A store on a fresh file with one client and its merchant: (store, client pk, merchant pk).
async fn open_with_merchant(dir: &std::path::Path) -> (Arc<SqliteStore>, ClientPk, MerchantPk) {
    let store = Arc::new(SqliteStore::open(&dir.join("paycc.db"), 2).unwrap());
    let (client_pk, merchant_pk) = with_merchant(store.as_ref()).await;
    (store, client_pk, merchant_pk)
}

/// Gives a fresh store one client and its merchant: (client pk, merchant pk).
async fn with_merchant(store: &dyn Store) -> (ClientPk, MerchantPk) {
    store
        .create_client("client-1", "Partner", b"secret-hash", NOW)
        .await
        .unwrap();
    assert!(
        store
            .create_merchant("client-1", "MID000000001", "Store", NOW)
            .await
            .unwrap()
    );
    let client_pk = store.find_client("client-1").await.unwrap().unwrap().pk;
    let merchant = store
        .merchant_of_client(client_pk, "MID000000001")
        .await
        .unwrap()
        .unwrap();
    (client_pk, merchant.pk)
}

/// The customer of `new_kyc`'s PAN number `n`, at the merchant `with_merchant` made.
async fn customer_by_pan(
    store: &dyn Store,
    client_pk: ClientPk,
    n: usize,
) -> Option<paycc::store::CustomerRecord> {
    let pan_hash = format!("pan-{n}").into_bytes();
    let lookup = CustomerLookup::PanHash(pan_hash);
    store
        .customer(client_pk, "MID000000001", lookup)
        .await
        .unwrap()
}

/// A fresh PostgreSQL store with one client and its merchant, when PostgreSQL is there;
/// the database lives as long as the returned handle.
async fn postgres_with_merchant() -> Option<(common::TestDb, Arc<dyn Store>, ClientPk, MerchantPk)>
{
    common::Backend::postgres()?;
    let db = common::TestDb::create().await;
    let settings = PgSettings {
        pool_size: 4,
        acquire_timeout: std::time::Duration::from_secs(2),
        call_timeout: std::time::Duration::from_secs(5),
    };
    let pg: Arc<dyn Store> = Arc::new(PgStore::open(&db.url, &settings).await.unwrap());
    let (client_pk, merchant_pk) = with_merchant(pg.as_ref()).await;
    Some((db, pg, client_pk, merchant_pk))
}

/// On both databases: the test with a store holding one client and its merchant.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let (store, client_pk, merchant_pk) = open_with_merchant(dir.path()).await;
                super::$name(store, client_pk, merchant_pk).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some((_db, store, client_pk, merchant_pk)) = postgres_with_merchant().await {
                    super::$name(store, client_pk, merchant_pk).await;
                }
            }
        }
    )*};
}

on_both_stores!(
    a_failing_write_leaves_no_trace_and_its_batch_still_commits,
    inits_of_one_customer_sent_together_keep_every_guarantee,
    moves_sent_together_each_land_as_if_alone
);

async fn a_failing_write_leaves_no_trace_and_its_batch_still_commits(
    store: Arc<dyn Store>,
    client_pk: ClientPk,
    merchant_pk: MerchantPk,
) {
    let taken = store
        .init_kyc(new_kyc(merchant_pk, 0, kid(0)))
        .await
        .unwrap();
    assert!(!taken.reused);

    // Every tenth write is a new customer whose request reuses a kid already stored:
    // its customer row is written first, then the request fails on the kid.
    let mut writes = tokio::task::JoinSet::new();
    for n in 1..=300 {
        let store = store.clone();
        let kid = if n % 10 == 0 { kid(0) } else { kid(n) };
        let new = new_kyc(merchant_pk, n, kid);
        writes.spawn(async move { (n, store.init_kyc(new).await) });
    }
    while let Some(done) = writes.join_next().await {
        let (n, result) = done.unwrap();
        if n % 10 == 0 {
            assert!(
                matches!(result, Err(StoreError::Conflict(Unique::Kid))),
                "write {n}: {result:?}"
            );
        } else {
            let stored = result.unwrap_or_else(|e| panic!("write {n}: {e}"));
            assert_eq!(stored.kid, kid(n));
            assert_eq!(stored.cust_id, format!("C{n:011}"));
        }
    }

    for n in 1..=300 {
        let customer = customer_by_pan(store.as_ref(), client_pk, n).await;
        let request = store.kyc(&kid(n), Some(client_pk)).await.unwrap();
        if n % 10 == 0 {
            assert!(customer.is_none(), "the failed write {n} left its customer");
            assert!(request.is_none());
        } else {
            assert_eq!(customer.unwrap().cust_id, format!("C{n:011}"));
            assert_eq!(request.unwrap().state, KycState::Pending);
        }
    }
    let first = store.kyc(&kid(0), Some(client_pk)).await.unwrap().unwrap();
    assert_eq!(first.cust_id, format!("C{:011}", 0));
}

/// Inits sent together for a few customers, many of them identical: each customer is
/// created once, every identical init is answered with the one open request, and the
/// others each open their own, under the customer's one custId.
async fn inits_of_one_customer_sent_together_keep_every_guarantee(
    store: Arc<dyn Store>,
    client_pk: ClientPk,
    merchant_pk: MerchantPk,
) {
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..300 {
        let store = store.clone();
        // Ten customers; of each customer's thirty inits, ten are alike (fingerprint 0).
        let (customer, variant) = (n % 10, (n / 10) % 3);
        let mut new = new_kyc(merchant_pk, n, kid(n));
        new.customer.pan_hash = format!("pan-{customer}").into_bytes();
        new.customer.cust_id = format!("C{customer:011}");
        new.fingerprint = if variant == 0 {
            format!("fingerprint-{customer}-alike").into_bytes()
        } else {
            format!("fingerprint-{n}").into_bytes()
        };
        writes.spawn(async move { (n, customer, variant, store.init_kyc(new).await) });
    }
    let mut alike: std::collections::HashMap<usize, Vec<(String, bool)>> = Default::default();
    while let Some(done) = writes.join_next().await {
        let (n, customer, variant, result) = done.unwrap();
        let stored = result.unwrap_or_else(|e| panic!("init {n}: {e}"));
        assert_eq!(stored.cust_id, format!("C{customer:011}"), "init {n}");
        if variant == 0 {
            alike
                .entry(customer)
                .or_default()
                .push((stored.kid, stored.reused));
        } else {
            assert_eq!((stored.kid, stored.reused), (kid(n), false), "init {n}");
        }
    }
    for (customer, answers) in alike {
        assert_eq!(answers.len(), 10);
        let opened: Vec<_> = answers.iter().filter(|(_, reused)| !reused).collect();
        assert_eq!(opened.len(), 1, "customer {customer}: {answers:?}");
        assert!(
            answers.iter().all(|(kid, _)| kid == &opened[0].0),
            "customer {customer}: {answers:?}"
        );
    }
    for customer in 0..10 {
        let found = customer_by_pan(store.as_ref(), client_pk, customer)
            .await
            .unwrap();
        assert_eq!(found.cust_id, format!("C{customer:011}"));
    }
}

/// Moves of many requests sent at once, several of one request and several approvals of
/// one customer among them: each answers and lands as it would alone (state, reason,
/// result, provider check), every approved customer carries one of its approved KYCs,
/// each announced move queues its one callback, and an operator's decision is audited
/// only when it applies.
async fn moves_sent_together_each_land_as_if_alone(
    store: Arc<dyn Store>,
    client_pk: ClientPk,
    merchant_pk: MerchantPk,
) {
    assert!(
        store
            .set_client_callback("client-1", "http://127.0.0.1:9/callbacks", None)
            .await
            .unwrap()
    );
    // Twenty customers of three requests each (n, n + 20, n + 40), and two of their own.
    let customer = |n: usize| if n < 60 { n % 20 } else { n };
    for n in 0..62 {
        let mut new = new_kyc(merchant_pk, n, kid(n));
        new.customer.pan_hash = format!("pan-{}", customer(n)).into_bytes();
        new.customer.cust_id = format!("C{:011}", customer(n));
        store.init_kyc(new).await.unwrap();
    }
    let approved = |n: usize| Transition {
        result_sealed: Some(vec![n as u8]),
        checked: true,
        ..Transition::new(&kid(n), KycState::Approved, at(1_000))
    };
    assert_eq!(
        store.transition(approved(61)).await.unwrap(),
        Some(KycState::Approved)
    );
    let decided = |n: usize| Transition {
        reason: Some(format!("operator {n}")),
        audit: Some(AuditNote {
            entries: vec![AuditEntry {
                at: at(2_000),
                actor: "operator".into(),
                action: "reject".into(),
                kid: Some(kid(n)),
                cust_id: None,
                client_id: None,
                request_id: None,
                outcome: "ok".into(),
            }],
            link: Arc::new(|prev: &[u8], seq: i64, _: &AuditEntry| {
                [prev, &seq.to_be_bytes()].concat()
            }),
        }),
        ..Transition::new(&kid(n), KycState::Rejected, at(2_000))
    };

    // Each move, with the answers it may get: which one depends on what lands first.
    let mut moves: Vec<(Transition, Vec<Option<KycState>>)> = Vec::new();
    let (pending, in_progress, rejected) = (
        Some(KycState::Pending),
        Some(KycState::InProgress),
        Some(KycState::Rejected),
    );
    for n in 0..60 {
        let moving = |to| Transition::new(&kid(n), to, at(2_000));
        match n % 4 {
            // Approved twice by the provider: one applies, both answer approved.
            0 => {
                for _ in 0..2 {
                    moves.push((approved(n), vec![Some(KycState::Approved)]));
                }
            }
            // Rejected, and a journey step that applies only if it comes first.
            1 => {
                let rejection = Transition {
                    reason: Some(format!("rejected {n}")),
                    ..moving(KycState::Rejected)
                };
                moves.push((rejection, vec![rejected]));
                moves.push((moving(KycState::InProgress), vec![in_progress, rejected]));
            }
            // Checked twice: once moving it on, once with an answer that moves nothing.
            2 => {
                let checked = |to| Transition {
                    checked: true,
                    ..moving(to)
                };
                moves.push((checked(KycState::InProgress), vec![in_progress]));
                moves.push((checked(KycState::Pending), vec![pending, in_progress]));
            }
            // A move that cannot apply, unchecked: nothing changes.
            _ => moves.push((moving(KycState::Pending), vec![pending])),
        }
    }
    moves.push((decided(60), vec![rejected]));
    moves.push((decided(61), vec![Some(KycState::Approved)]));
    for (unknown, checked) in [(1_000, true), (1_001, false)] {
        let t = Transition {
            checked,
            ..Transition::new(&kid(unknown), KycState::Approved, at(2_000))
        };
        moves.push((t, vec![None]));
    }
    let mut sent = tokio::task::JoinSet::new();
    for (t, answers) in moves {
        let store = store.clone();
        sent.spawn(async move {
            let kid = t.kid.clone();
            let answer = store.transition(t).await;
            (kid, answer, answers)
        });
    }
    while let Some(done) = sent.join_next().await {
        let (kid, answer, answers) = done.unwrap();
        let answer = answer.unwrap_or_else(|e| panic!("{kid}: {e}"));
        assert!(
            answers.contains(&answer),
            "{kid}: {answer:?}, not {answers:?}"
        );
    }

    let mut announced = Vec::new();
    for n in 0..62 {
        let r = store.kyc(&kid(n), Some(client_pk)).await.unwrap().unwrap();
        let landed = (
            r.state,
            r.reason,
            r.result_sealed,
            r.checked_at,
            r.updated_at,
        );
        let (first, second) = (Some(at(1_000)), at(2_000));
        let expected = match n {
            60 => (
                KycState::Rejected,
                Some("operator 60".into()),
                None,
                None,
                second,
            ),
            61 => (KycState::Approved, None, Some(vec![61]), first, at(1_000)),
            _ => match n % 4 {
                0 => (
                    KycState::Approved,
                    None,
                    Some(vec![n as u8]),
                    first,
                    at(1_000),
                ),
                1 => (
                    KycState::Rejected,
                    Some(format!("rejected {n}")),
                    None,
                    None,
                    second,
                ),
                2 => (KycState::InProgress, None, None, Some(second), second),
                _ => (KycState::Pending, None, None, None, NOW),
            },
        };
        assert_eq!(landed, expected, "request {n}");
        if matches!(r.state, KycState::Approved | KycState::Rejected) {
            announced.push((kid(n), r.state.as_str()));
        }
    }
    for c in (0..20).chain([60, 61]) {
        let verified = customer_by_pan(store.as_ref(), client_pk, c)
            .await
            .unwrap()
            .verified;
        let approvals: Vec<usize> = [c, c + 20, c + 40]
            .into_iter()
            .filter(|&n| (c < 20 && n % 4 == 0) || (c == 61 && n == 61))
            .collect();
        match verified {
            None => assert!(approvals.is_empty(), "customer {c} was not verified"),
            Some((verified_kid, sealed)) => {
                let n = approvals
                    .into_iter()
                    .find(|&n| kid(n) == verified_kid)
                    .unwrap_or_else(|| panic!("customer {c} verified by {verified_kid}"));
                assert_eq!(sealed, vec![n as u8], "customer {c}");
            }
        }
    }
    let mut queued: Vec<_> = store
        .list_callbacks(CallbackFilter::All, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kid, e.state.as_str()))
        .collect();
    queued.sort();
    announced.sort();
    assert_eq!(queued, announced);
    for (n, entries) in [(60, 1), (61, 0)] {
        let filter = AuditFilter {
            kid: Some(kid(n)),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.audit_entries(&filter).await.unwrap().len(), entries);
    }
}

/// A move PostgreSQL refuses (a reason with a NUL byte, which its text cannot hold) fails
/// its group's statement; the group is replayed move by move, and only that move fails.
#[tokio::test]
async fn a_refused_move_fails_alone_and_its_group_still_commits() {
    let Some((_db, store, client_pk, merchant_pk)) = postgres_with_merchant().await else {
        return;
    };
    for n in 0..100 {
        store
            .init_kyc(new_kyc(merchant_pk, n, kid(n)))
            .await
            .unwrap();
    }
    let mut sent = tokio::task::JoinSet::new();
    for n in 0..100 {
        let store = store.clone();
        let reason = if n % 25 == 7 {
            "bad\0reason"
        } else {
            "rejected"
        };
        let t = Transition {
            reason: Some(reason.into()),
            ..Transition::new(&kid(n), KycState::Rejected, at(1_000))
        };
        sent.spawn(async move { (n, store.transition(t).await) });
    }
    while let Some(done) = sent.join_next().await {
        match done.unwrap() {
            (n, Err(StoreError::Backend { context, .. })) if n % 25 == 7 => {
                assert_eq!(context, "moving a KYC request", "move {n}")
            }
            (n, answer) => {
                assert!(n % 25 != 7, "move {n}: {answer:?}");
                assert_eq!(answer.unwrap(), Some(KycState::Rejected), "move {n}");
            }
        }
    }
    for n in 0..100 {
        let r = store.kyc(&kid(n), Some(client_pk)).await.unwrap().unwrap();
        let expected = if n % 25 == 7 {
            (KycState::Pending, None)
        } else {
            (KycState::Rejected, Some("rejected".to_owned()))
        };
        assert_eq!((r.state, r.reason), expected, "request {n}");
    }
}

/// A move held up by another transaction moving the same request is judged by the
/// state that transaction leaves, not the one it started from: a rejection that waited
/// behind a journey step (pending → in progress) still applies.
#[tokio::test]
async fn a_move_held_up_by_another_is_judged_by_the_state_it_leaves() {
    let Some((db, store, client_pk, merchant_pk)) = postgres_with_merchant().await else {
        return;
    };
    store
        .init_kyc(new_kyc(merchant_pk, 1, kid(1)))
        .await
        .unwrap();
    let (mut step, mut watch) = moved_elsewhere(&db.url, &kid(1), "in_progress").await;
    let rejection = Transition {
        reason: Some("rejected".into()),
        ..Transition::new(&kid(1), KycState::Rejected, at(1_000))
    };
    let moving = {
        let store = store.clone();
        tokio::spawn(async move { store.transition(rejection).await })
    };
    // The move has read the request as pending and waits for the step's row lock.
    wait_for_a_lock(&mut watch, "the move").await;
    sqlx::raw_sql("COMMIT").execute(&mut step).await.unwrap();
    assert_eq!(moving.await.unwrap().unwrap(), Some(KycState::Rejected));
    let r = store.kyc(&kid(1), Some(client_pk)).await.unwrap().unwrap();
    assert_eq!(
        (r.state, r.reason),
        (KycState::Rejected, Some("rejected".into()))
    );
}

/// An init that expires its stale identical request on the way leaves it be when another
/// transaction moved it meanwhile: a request approved while the init waited for its row
/// stays approved, and the init opens a request of its own.
#[tokio::test]
async fn an_init_does_not_expire_a_request_moved_while_it_waited() {
    let Some((db, store, client_pk, merchant_pk)) = postgres_with_merchant().await else {
        return;
    };
    let mut first = new_kyc(merchant_pk, 1, kid(1));
    first.expires_at = at(1_000);
    store.init_kyc(first).await.unwrap();
    let (mut approval, mut watch) = moved_elsewhere(&db.url, &kid(1), "approved").await;
    // Identical to the first (same customer and fingerprint), after its expiry.
    let mut identical = new_kyc(merchant_pk, 1, kid(2));
    identical.reference = format!("REF{:029}", 2);
    identical.now = at(2_000);
    identical.expires_at = at(86_400_000);
    let init = {
        let store = store.clone();
        tokio::spawn(async move { store.init_kyc(identical).await })
    };
    wait_for_a_lock(&mut watch, "the init").await;
    sqlx::raw_sql("COMMIT")
        .execute(&mut approval)
        .await
        .unwrap();
    let stored = init.await.unwrap().unwrap();
    assert_eq!((stored.kid, stored.reused), (kid(2), false));
    let r = store.kyc(&kid(1), Some(client_pk)).await.unwrap().unwrap();
    assert_eq!(r.state, KycState::Approved);
    let events = store.list_callbacks(CallbackFilter::All, 10).await.unwrap();
    assert!(events.is_empty(), "{events:?}");
}

/// Another transaction, on a connection of its own, moves `kid` into `state` and holds
/// the row's lock until it is committed; returns its connection, and one to watch with.
async fn moved_elsewhere(
    url: &str,
    kid: &str,
    state: &str,
) -> (sqlx::PgConnection, sqlx::PgConnection) {
    use sqlx::Connection;
    let mut other = sqlx::PgConnection::connect(url).await.unwrap();
    let watch = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut other).await.unwrap();
    let moved = sqlx::query("UPDATE kyc_requests SET state = $1 WHERE kid = $2")
        .bind(state)
        .bind(kid)
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    (other, watch)
}

/// Waits until a session of the test's database waits on a row lock (`who` names it).
async fn wait_for_a_lock(watch: &mut sqlx::PgConnection, who: &str) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *watch)
        .await
        .unwrap();
        if waiting == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{who} never waited on the row lock");
}

/// Reads queued together share one read transaction; each must still see every write
/// acknowledged before it was asked for, and answer only for its own question.
#[tokio::test]
async fn reads_sent_together_see_every_write_acknowledged_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, client_pk, merchant_pk) = open_with_merchant(dir.path()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 1..=300 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .init_kyc(new_kyc(merchant_pk, n, kid(n)))
                .await
                .unwrap_or_else(|e| panic!("write {n}: {e}"));
            // Asked for only once the write is acknowledged, alongside everyone else's reads.
            let (mine, absent) = (kid(n), kid(n + 1000));
            let (own, foreign, missing) = tokio::join!(
                store.kyc(&mine, Some(client_pk)),
                store.kyc(&mine, Some(ClientPk(client_pk.0 + 1))),
                store.kyc(&absent, Some(client_pk)),
            );
            let own = own
                .unwrap()
                .unwrap_or_else(|| panic!("read {n} missed its write"));
            assert_eq!(own.kid, kid(n));
            assert_eq!(own.cust_id, format!("C{n:011}"));
            assert!(
                foreign.unwrap().is_none(),
                "read {n} answered another client"
            );
            assert!(missing.unwrap().is_none());
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// A custId drawn twice is told apart from a kid taken twice: the first is drawn again by
/// the caller, the second is refused. On both databases.
#[tokio::test]
async fn clashes_name_the_rule_they_broke() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, _, merchant_pk) = open_with_merchant(dir.path()).await;
    assert_clashes(sqlite.as_ref(), merchant_pk).await;
    if let Some((_db, pg, _, merchant_pk)) = postgres_with_merchant().await {
        assert_clashes(pg.as_ref(), merchant_pk).await;
    }
}

async fn assert_clashes(store: &dyn Store, merchant_pk: MerchantPk) {
    store
        .init_kyc(new_kyc(merchant_pk, 1, kid(1)))
        .await
        .unwrap();
    let mut same_cust_id = new_kyc(merchant_pk, 2, kid(2));
    same_cust_id.customer.cust_id = format!("C{:011}", 1);
    assert!(matches!(
        store.init_kyc(same_cust_id).await,
        Err(StoreError::Conflict(Unique::CustId))
    ));
    assert!(matches!(
        store.init_kyc(new_kyc(merchant_pk, 3, kid(1))).await,
        Err(StoreError::Conflict(Unique::Kid))
    ));
    // Neither clash left its request behind.
    for n in [2, 3] {
        assert!(store.kyc(&kid(n), None).await.unwrap().is_none());
    }
    let stored = store
        .init_kyc(new_kyc(merchant_pk, 4, kid(4)))
        .await
        .unwrap();
    assert_eq!((stored.kid, stored.reused), (kid(4), false));
}

/// The writer's queue is bounded: with the writer held up, writes past the bound are
/// refused at once as `Busy` instead of queueing without end, and the queued ones still
/// commit.
#[tokio::test]
async fn a_full_writer_queue_refuses_at_once() {
    use paycc::store::backend::{Access, Backend};
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = open_with_merchant(dir.path()).await;
    let (held, hold) = std::sync::mpsc::channel::<()>();
    let hold = std::sync::Mutex::new(hold);
    let blocker = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .run(Access::Write, (), move |_, ()| {
                    // Holds the writer until the test lets go.
                    let _ = hold.lock().unwrap().recv();
                    Box::pin(async { Ok(()) })
                })
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let writes: Vec<_> = (0..10_000)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.pin_setting(&format!("s{n}"), b"v", NOW).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (answered, queued): (Vec<_>, Vec<_>) = writes.into_iter().partition(|w| w.is_finished());
    assert!(
        !answered.is_empty() && !queued.is_empty(),
        "{} answered",
        answered.len()
    );
    for write in answered {
        let refused = write.await.unwrap();
        assert!(
            matches!(refused, Err(StoreError::Busy("SQLite writer"))),
            "{refused:?}"
        );
    }
    drop(held);
    blocker.await.unwrap().unwrap();
    for write in queued {
        assert_eq!(write.await.unwrap().unwrap(), b"v");
    }
}
