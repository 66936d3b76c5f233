//! The store contract, tested once and run on both databases: every `Store` operation is
//! called through the trait with the same assertions on SQLite and PostgreSQL, including
//! where the two once drifted (the latest request's tie-break, clashes, callback leases,
//! expiry).

mod common;

use paycc::domain::state::KycState;
use paycc::store::postgres::{PgSettings, PgStore};
use paycc::store::sqlite::SqliteStore;
use paycc::store::*;
use std::time::Duration;

const NOW: UnixMs = UnixMs(1_764_600_000_000);

/// `ms` milliseconds after `NOW`.
fn at(ms: i64) -> UnixMs {
    UnixMs(NOW.0 + ms)
}
const DAY: i64 = 86_400_000;

/// Runs each `async fn(&dyn Store)` on a fresh SQLite file and a fresh PostgreSQL database.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let store: std::sync::Arc<dyn super::Store> = std::sync::Arc::new(
                    super::SqliteStore::open(&dir.path().join("paycc.db"), 2).unwrap(),
                );
                super::$name(&*store).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if crate::common::Backend::postgres().is_none() {
                    return;
                }
                let db = crate::common::TestDb::create().await;
                let store: std::sync::Arc<dyn super::Store> = std::sync::Arc::new(
                    super::PgStore::open(&db.url, &super::pg_settings()).await.unwrap(),
                );
                super::$name(&*store).await;
            })*
        }
    };
}

fn pg_settings() -> PgSettings {
    PgSettings {
        pool_size: 4,
        acquire_timeout: Duration::from_secs(5),
        call_timeout: Duration::from_secs(10),
    }
}

fn kid(n: usize) -> String {
    format!("KID261201120000000{n:014}")
}

/// An init of customer `customer` (its PAN hash) whose fingerprint is `n`.
fn new_kyc(merchant_pk: MerchantPk, customer: usize, n: usize) -> NewKyc {
    NewKyc {
        kid: kid(n),
        reference: format!("REF{n:029}"),
        merchant_pk,
        provider: "sandbox",
        state: KycState::Pending,
        fingerprint: format!("fingerprint-{n}").into_bytes(),
        url_sealed: Some(format!("url-{n}").into_bytes()),
        token_hash: Some(format!("token-{n}").into_bytes()),
        redirect_url: Some("https://shop.example/back".into()),
        now: NOW,
        expires_at: at(DAY),
        customer: NewCustomer {
            cust_id: format!("C{n:011}"),
            pan_hash: format!("pan-{customer}").into_bytes(),
            mobile_hash: format!("mobile-{customer}").into_bytes(),
            details_sealed: format!("details-{n}").into_bytes(),
            submitted_sealed: format!("submitted-{n}").into_bytes(),
        },
    }
}

/// A client with one merchant: (client pk, merchant pk).
async fn client_with_merchant(
    store: &dyn Store,
    client: &str,
    code: &str,
) -> (ClientPk, MerchantPk) {
    store
        .create_client(client, "Partner", b"hash", NOW)
        .await
        .unwrap();
    assert!(
        store
            .create_merchant(client, code, "Shop", NOW)
            .await
            .unwrap()
    );
    let client_pk = store.find_client(client).await.unwrap().unwrap().pk;
    let merchant = store
        .merchant_of_client(client_pk, code)
        .await
        .unwrap()
        .unwrap();
    (client_pk, merchant.pk)
}

/// An audit note that links entries by a plain (unkeyed) hash of the previous link and
/// the sequence number: enough to check the store's ordering.
fn note(actor: &str) -> AuditNote {
    AuditNote {
        entries: vec![AuditEntry {
            at: NOW,
            actor: actor.into(),
            action: "test".into(),
            kid: None,
            cust_id: None,
            client_id: None,
            request_id: None,
            outcome: "ok".into(),
        }],
        link: std::sync::Arc::new(|prev: &[u8], seq: i64, _: &AuditEntry| {
            let mut next = prev.to_vec();
            next.extend_from_slice(&seq.to_be_bytes());
            next
        }),
    }
}

async fn clients_and_merchants(store: &dyn Store) {
    assert_eq!(store.count_clients().await.unwrap(), 0);
    let (client_pk, merchant_pk) = client_with_merchant(store, "PCCA", "MID1").await;
    let found = store.find_client("PCCA").await.unwrap().unwrap();
    assert_eq!(
        (
            found.pk,
            found.client_id.as_str(),
            found.name.as_str(),
            found.secret_hash.as_slice(),
            found.active
        ),
        (client_pk, "PCCA", "Partner", b"hash".as_slice(), true)
    );
    assert!(store.find_client("PCCNONE").await.unwrap().is_none());
    assert!(matches!(
        store.create_client("PCCA", "Again", b"x", NOW).await,
        Err(StoreError::Conflict(Unique::ClientId))
    ));
    assert!(
        store
            .set_client_secret("PCCA", b"hash2", NOW)
            .await
            .unwrap()
    );
    assert!(!store.set_client_secret("PCCNONE", b"x", NOW).await.unwrap());
    assert!(store.set_client_active("PCCA", Switch::Off).await.unwrap());
    let found = store.find_client("PCCA").await.unwrap().unwrap();
    assert_eq!(
        (found.secret_hash.as_slice(), found.active),
        (b"hash2".as_slice(), false)
    );
    assert!(
        !store
            .set_client_active("PCCNONE", Switch::Off)
            .await
            .unwrap()
    );

    assert!(
        !store
            .create_merchant("PCCNONE", "MID2", "X", NOW)
            .await
            .unwrap()
    );
    assert!(matches!(
        store.create_merchant("PCCA", "MID1", "Dup", NOW).await,
        Err(StoreError::Conflict(Unique::MerchantCode))
    ));
    let (other_pk, _) = client_with_merchant(store, "PCCB", "MID3").await;
    assert_eq!(store.count_clients().await.unwrap(), 2);
    assert!(
        store
            .merchant_of_client(other_pk, "MID1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .set_merchant_active("MID1", Switch::Off)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_merchant_active("MIDNONE", Switch::Off)
            .await
            .unwrap()
    );
    let listed: Vec<(String, bool, String)> = store
        .list_merchants()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.code, m.active, m.client_id))
        .collect();
    assert_eq!(
        listed,
        [
            ("MID1".into(), false, "PCCA".into()),
            ("MID3".into(), true, "PCCB".into())
        ]
    );
    let m = store
        .merchant_of_client(client_pk, "MID1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.pk, m.name.as_str(), m.active),
        (merchant_pk, "Shop", false)
    );
    let found = store.find_merchant("MID3").await.unwrap().unwrap();
    assert_eq!(
        (found.code.as_str(), found.client_id.as_str()),
        ("MID3", "PCCB")
    );
    assert!(store.find_merchant("MIDNONE").await.unwrap().is_none());
}

async fn settings_are_kept_once(store: &dyn Store) {
    assert_eq!(
        store.pin_setting("s", b"first", NOW).await.unwrap(),
        b"first"
    );
    assert_eq!(
        store.pin_setting("s", b"second", NOW).await.unwrap(),
        b"first"
    );
}

async fn inits_reads_and_customers(store: &dyn Store) {
    let (client_pk, merchant_pk) = client_with_merchant(store, "PCCA", "MID1").await;
    let (other_pk, _) = client_with_merchant(store, "PCCB", "MID2").await;
    let first = store.init_kyc(new_kyc(merchant_pk, 1, 1)).await.unwrap();
    assert_eq!(
        (first.kid.as_str(), first.cust_id.as_str(), first.reused),
        (kid(1).as_str(), "C00000000001", false)
    );
    // The identical init answers the open request.
    let mut again = new_kyc(merchant_pk, 1, 1);
    again.kid = kid(99);
    again.reference = "REF-again".into();
    let reused = store.init_kyc(again).await.unwrap();
    assert_eq!(
        (reused.kid, reused.reused, reused.url_sealed),
        (kid(1), true, Some(b"url-1".to_vec()))
    );
    // Another init of the same customer in the same millisecond: the greater kid is the
    // latest, on both databases.
    let second = store.init_kyc(new_kyc(merchant_pk, 1, 2)).await.unwrap();
    assert_eq!(
        (second.cust_id.as_str(), second.reused),
        ("C00000000001", false)
    );

    // The first request keeps what was submitted with it, though the second brought
    // the customer's details up to date.
    let record = store.kyc(&kid(1), Some(client_pk)).await.unwrap().unwrap();
    assert_eq!(
        (
            record.merchant_code.as_str(),
            record.client_id.as_str(),
            record.cust_id.as_str(),
            record.state,
            record.merchant_active,
            record.redirect_url.as_deref(),
            record.submitted_sealed.as_deref(),
            record.expires_at,
            record.checked_at
        ),
        (
            "MID1",
            "PCCA",
            "C00000000001",
            KycState::Pending,
            true,
            Some("https://shop.example/back"),
            Some(b"submitted-1".as_slice()),
            at(DAY),
            None
        )
    );
    let latest = store.kyc(&kid(2), None).await.unwrap().unwrap();
    assert_eq!(
        latest.submitted_sealed.as_deref(),
        Some(b"submitted-2".as_slice())
    );
    assert!(store.kyc(&kid(1), Some(other_pk)).await.unwrap().is_none());
    assert!(store.kyc(&kid(1), None).await.unwrap().is_some());
    assert!(store.kyc(&kid(7), None).await.unwrap().is_none());

    for key in [
        CustomerLookup::PanHash(b"pan-1".to_vec()),
        CustomerLookup::MobileHash(b"mobile-1".to_vec()),
    ] {
        let c = store
            .customer(client_pk, "MID1", key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.cust_id.as_str(), c.active, c.verified.is_none()),
            ("C00000000001", true, true)
        );
        assert_eq!(c.latest.unwrap().kid, kid(2));
    }
    assert!(
        store
            .customer(other_pk, "MID1", CustomerLookup::PanHash(b"pan-1".to_vec()))
            .await
            .unwrap()
            .is_none()
    );

    // The guarded moves, and the verified identity an approval gives the customer.
    assert_eq!(
        store
            .transition(Transition::new(&kid(1), KycState::InProgress, at(1)))
            .await
            .unwrap(),
        Some(KycState::InProgress)
    );
    assert_eq!(
        store
            .transition(Transition::new(&kid(1), KycState::Pending, at(2)))
            .await
            .unwrap(),
        Some(KycState::InProgress)
    );
    let mut approve = Transition::new(&kid(1), KycState::Approved, at(3));
    approve.result_sealed = Some(b"identity".to_vec());
    assert_eq!(
        store.transition(approve).await.unwrap(),
        Some(KycState::Approved)
    );
    let mut reject = Transition::new(&kid(1), KycState::Rejected, at(4));
    reject.reason = Some("too late".into());
    assert_eq!(
        store.transition(reject).await.unwrap(),
        Some(KycState::Approved)
    );
    assert_eq!(
        store
            .transition(Transition::new(&kid(7), KycState::Approved, NOW))
            .await
            .unwrap(),
        None
    );
    let c = store
        .customer(
            client_pk,
            "MID1",
            CustomerLookup::PanHash(b"pan-1".to_vec()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.verified, Some((kid(1), b"identity".to_vec())));
    let record = store.kyc(&kid(1), None).await.unwrap().unwrap();
    assert_eq!(
        (record.result_sealed, record.reason, record.updated_at),
        (Some(b"identity".to_vec()), None, at(3))
    );
}

async fn clashes_name_their_rule(store: &dyn Store) {
    let (_, merchant_pk) = client_with_merchant(store, "PCCA", "MID1").await;
    store.init_kyc(new_kyc(merchant_pk, 1, 1)).await.unwrap();
    let mut same_cust_id = new_kyc(merchant_pk, 2, 2);
    same_cust_id.customer.cust_id = "C00000000001".into();
    assert!(matches!(
        store.init_kyc(same_cust_id).await,
        Err(StoreError::Conflict(Unique::CustId))
    ));
    let mut same_kid = new_kyc(merchant_pk, 3, 3);
    same_kid.kid = kid(1);
    assert!(matches!(
        store.init_kyc(same_kid).await,
        Err(StoreError::Conflict(Unique::Kid))
    ));
    for n in [2, 3] {
        assert!(
            store.kyc(&kid(n), None).await.unwrap().is_none(),
            "nothing of the clash is left"
        );
    }
}

async fn expiry_and_provider_bookkeeping(store: &dyn Store) {
    let (_, merchant_pk) = client_with_merchant(store, "PCCA", "MID1").await;
    let receiver = "https://partner.example/hooks";
    assert!(
        store
            .set_client_callback("PCCA", receiver, Some(b"secret"))
            .await
            .unwrap()
    );
    let mut short = new_kyc(merchant_pk, 1, 1);
    short.expires_at = at(10);
    store.init_kyc(short).await.unwrap();
    store.init_kyc(new_kyc(merchant_pk, 2, 2)).await.unwrap();
    assert_eq!(store.expire_due(at(5), 10).await.unwrap(), 0);
    assert_eq!(store.expire_due(at(10), 10).await.unwrap(), 1);
    assert_eq!(store.expire_due(at(10), 10).await.unwrap(), 0);
    let expired = store.kyc(&kid(1), None).await.unwrap().unwrap();
    assert_eq!(
        (expired.state, expired.reason.is_some()),
        (KycState::Expired, true)
    );
    // An identical init after the expiry opens a new request.
    let mut identical = new_kyc(merchant_pk, 1, 1);
    identical.kid = kid(3);
    identical.reference = "REF-3".into();
    identical.now = at(20);
    identical.expires_at = at(DAY);
    assert!(!store.init_kyc(identical).await.unwrap().reused);

    // A request stored before the provider named it, activated; another, failed.
    for (n, state) in [(4, KycState::Created), (5, KycState::Created)] {
        let mut created = new_kyc(merchant_pk, n, n);
        created.state = state;
        created.kid = format!("REF{n:029}");
        created.url_sealed = None;
        created.token_hash = None;
        store.init_kyc(created).await.unwrap();
    }
    let session = ActivatedKyc {
        kid: kid(4),
        url_sealed: b"url".to_vec(),
        token_hash: b"token".to_vec(),
        now: at(30),
    };
    store
        .activate_kyc(&format!("REF{:029}", 4), &session)
        .await
        .unwrap();
    let active = store.kyc(&kid(4), None).await.unwrap().unwrap();
    assert_eq!(
        (active.state, active.token_hash),
        (KycState::Pending, Some(b"token".to_vec()))
    );
    store
        .fail_kyc(&format!("REF{:029}", 5), "provider down", at(30))
        .await
        .unwrap();
    let failed = store
        .kyc(&format!("REF{:029}", 5), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (failed.state, failed.reason.as_deref()),
        (KycState::Failed, Some("provider down"))
    );

    // Re-checks: each open request claimed once until it is stale again.
    let claimed = store
        .claim_for_recheck("sandbox", at(100), at(100), 10)
        .await
        .unwrap();
    let mut claimed_sorted = claimed.clone();
    claimed_sorted.sort();
    assert_eq!(claimed_sorted, [kid(2), kid(3), kid(4)]);
    assert!(
        store
            .claim_for_recheck("sandbox", at(100), at(101), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_for_recheck("digio", at(1000), at(1000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Asking the provider marks the request checked, whether the answer moves it or not;
    // a move made without asking (a journey step, an operator) leaves the mark as it was.
    let state_and_check = |n| {
        let store = &store;
        async move {
            let r = store.kyc(&kid(n), None).await.unwrap().unwrap();
            (r.state, r.checked_at)
        }
    };
    let checked = |to, t| Transition {
        checked: true,
        ..Transition::new(&kid(2), to, at(t))
    };
    let moved = store.transition(checked(KycState::InProgress, 500)).await;
    assert_eq!(moved.unwrap(), Some(KycState::InProgress));
    assert_eq!(
        state_and_check(2).await,
        (KycState::InProgress, Some(at(500)))
    );
    let unasked = Transition::new(&kid(2), KycState::Pending, at(600));
    assert_eq!(
        store.transition(unasked).await.unwrap(),
        Some(KycState::InProgress)
    );
    assert_eq!(
        state_and_check(2).await,
        (KycState::InProgress, Some(at(500)))
    );
    let kept = store.transition(checked(KycState::Pending, 700)).await;
    assert_eq!(kept.unwrap(), Some(KycState::InProgress));
    assert_eq!(
        state_and_check(2).await,
        (KycState::InProgress, Some(at(700)))
    );
    let unknown = Transition {
        checked: true,
        ..Transition::new(&kid(9), KycState::Approved, at(800))
    };
    assert_eq!(store.transition(unknown).await.unwrap(), None);

    assert!(
        store
            .record_webhook_event("digio", "EVT1", NOW)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_webhook_event("digio", "EVT1", NOW)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_webhook_event("other", "EVT1", NOW)
            .await
            .unwrap()
    );

    // The expiry was announced: the client takes callbacks.
    let events = store.list_callbacks(CallbackFilter::All, 10).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kid.clone(), e.state))
            .collect::<Vec<_>>(),
        [(kid(1), KycState::Expired)]
    );
}

/// What claiming this key gives.
async fn take(store: &dyn Store, claim: &IdempotencyClaim) -> KeyState {
    store.claim_idempotency_key(claim).await.unwrap()
}

async fn idempotency_keys(store: &dyn Store) {
    let (client_pk, _) = client_with_merchant(store, "PCCA", "MID1").await;
    let claim = |hash: &[u8], now: UnixMs| IdempotencyClaim {
        client_pk,
        key: "order-1".into(),
        request_hash: hash.to_vec(),
        now,
        stale_before: UnixMs(now.0 - 60_000),
    };
    assert_eq!(take(store, &claim(b"a", NOW)).await, KeyState::Taken);
    assert_eq!(take(store, &claim(b"a", at(1))).await, KeyState::InFlight);
    assert_eq!(take(store, &claim(b"b", at(1))).await, KeyState::Mismatch);
    // Its holder died without a reply: taken again once stale.
    assert_eq!(
        take(store, &claim(b"a", at(120_000))).await,
        KeyState::Taken
    );
    store
        .complete_idempotency_key(client_pk, "order-1", b"reply")
        .await
        .unwrap();
    assert_eq!(
        take(store, &claim(b"a", at(130_000))).await,
        KeyState::Done(b"reply".to_vec())
    );
    // A completed key is not released; a taken one is.
    store
        .release_idempotency_key(client_pk, "order-1")
        .await
        .unwrap();
    assert_eq!(
        take(store, &claim(b"a", at(130_000))).await,
        KeyState::Done(b"reply".to_vec())
    );
    let mut other = claim(b"c", NOW);
    other.key = "order-2".into();
    assert_eq!(take(store, &other).await, KeyState::Taken);
    store
        .release_idempotency_key(client_pk, "order-2")
        .await
        .unwrap();
    assert_eq!(take(store, &other).await, KeyState::Taken);
    assert_eq!(store.purge_idempotency_keys(at(1)).await.unwrap(), 1);
    assert_eq!(store.purge_idempotency_keys(at(200_000)).await.unwrap(), 1);
}

/// Records how an attempt on event `pk` ended.
async fn finish(
    store: &dyn Store,
    pk: EventPk,
    result: AttemptResult,
    error: Option<String>,
    now: UnixMs,
) {
    let attempt = CallbackAttempt {
        pk,
        result,
        error,
        now,
    };
    store.finish_callback_attempt(&attempt).await.unwrap();
}

async fn the_callback_outbox(store: &dyn Store) {
    let (_, merchant_pk) = client_with_merchant(store, "PCCA", "MID1").await;
    assert!(store.client_callback("PCCNONE").await.unwrap().is_none());
    let none = store.client_callback("PCCA").await.unwrap().unwrap();
    assert_eq!((none.url, none.secret_sealed), (None, None));
    assert!(
        store
            .set_client_callback("PCCA", "https://a.example", Some(b"s1"))
            .await
            .unwrap()
    );
    assert!(
        store
            .set_client_callback("PCCA", "https://b.example", None)
            .await
            .unwrap()
    );
    let set = store.client_callback("PCCA").await.unwrap().unwrap();
    assert_eq!(
        (set.url.as_deref(), set.secret_sealed),
        (Some("https://b.example"), Some(b"s1".to_vec()))
    );
    assert!(
        !store
            .set_client_callback("PCCNONE", "https://x.example", None)
            .await
            .unwrap()
    );

    store.init_kyc(new_kyc(merchant_pk, 1, 1)).await.unwrap();
    store
        .transition(Transition::new(&kid(1), KycState::AwaitingApproval, at(1)))
        .await
        .unwrap();
    store
        .transition(Transition::new(&kid(1), KycState::Approved, at(2)))
        .await
        .unwrap();
    // A kid's events go out in order: the second waits for the first.
    let due = store
        .claim_callbacks(at(10), at(1_000), 4, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    let first = &due[0];
    assert_eq!(
        (
            first.kid.as_str(),
            first.state,
            first.cust_id.as_str(),
            first.merchant_code.as_str(),
            first.attempts
        ),
        (
            kid(1).as_str(),
            KycState::AwaitingApproval,
            "C00000000001",
            "MID1",
            0
        )
    );
    assert_eq!(first.event_id, format!("evt_{}_awaiting_approval", kid(1)));
    assert_eq!(first.callback.url.as_deref(), Some("https://b.example"));
    // Leased: no other claim takes it before the lease ends.
    assert!(
        store
            .claim_callbacks(at(20), at(2_000), 4, 10)
            .await
            .unwrap()
            .is_empty()
    );
    finish(store, first.pk, AttemptResult::Delivered, None, at(30)).await;
    let next = store
        .claim_callbacks(at(40), at(1_040), 4, 10)
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|d| d.state).collect::<Vec<_>>(),
        [KycState::Approved]
    );
    finish(
        store,
        next[0].pk,
        AttemptResult::RetryAt(at(5_000)),
        Some("HTTP 500".into()),
        at(50),
    )
    .await;
    // Not due before its retry, due after it (the lease was given back).
    assert!(
        store
            .claim_callbacks(at(60), at(1_060), 4, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_callbacks(at(5_000), at(6_000), 4, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    finish(
        store,
        next[0].pk,
        AttemptResult::Dead,
        Some("HTTP 500".into()),
        at(5_010),
    )
    .await;
    let listed = store.list_callbacks(CallbackFilter::All, 10).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|e| (e.state, e.status.as_str(), e.attempts))
            .collect::<Vec<_>>(),
        [
            (KycState::Approved, "dead", 2),
            (KycState::AwaitingApproval, "delivered", 1)
        ]
    );
    assert_eq!(listed[1].delivered_at, Some(at(30)));
    let failed = store
        .list_callbacks(CallbackFilter::Failed, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("HTTP 500"));
    let event_id = failed[0].event_id.clone();
    assert!(store.retry_callback(&event_id, at(6_000)).await.unwrap());
    assert!(!store.retry_callback("evt_none", NOW).await.unwrap());
    let retried = store
        .claim_callbacks(at(6_000), at(7_000), 4, 10)
        .await
        .unwrap();
    assert_eq!((retried.len(), retried[0].attempts), (1, 0));
    // Delivered and dead events past retention go; pending ones stay.
    assert_eq!(store.purge_callbacks(at(100_000)).await.unwrap(), 1);
    assert_eq!(
        store
            .list_callbacks(CallbackFilter::All, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn sandbox_sessions(store: &dyn Store) {
    let (_, merchant_pk) = client_with_merchant(store, "PCCA", "MID1").await;
    store.init_kyc(new_kyc(merchant_pk, 1, 1)).await.unwrap();
    assert!(store.sandbox_session(&kid(1)).await.unwrap().is_none());
    let at = |step: &str, selfie: Option<&[u8]>, person: Option<&[u8]>| SandboxSession {
        step: step.into(),
        outcome: None,
        face_match: Some(97),
        selfie_sealed: selfie.map(<[u8]>::to_vec),
        person_sealed: person.map(<[u8]>::to_vec),
    };
    store
        .save_sandbox_session(&kid(1), &at("selfie", Some(b"jpeg"), Some(b"someone")), NOW)
        .await
        .unwrap();
    // Saving without a selfie keeps the stored one; the person is replaced.
    store
        .save_sandbox_session(&kid(1), &at("done", None, None), NOW)
        .await
        .unwrap();
    let s = store.sandbox_session(&kid(1)).await.unwrap().unwrap();
    assert_eq!(
        (
            s.step.as_str(),
            s.face_match,
            s.selfie_sealed,
            s.person_sealed
        ),
        ("done", Some(97), Some(b"jpeg".to_vec()), None)
    );
}

/// Clients take turns at the outbox, and none has more than its share in flight: a
/// client with a long backlog cannot hold every delivery slot.
async fn clients_take_turns_at_the_callback_outbox(store: &dyn Store) {
    let mut kids = Vec::new();
    for (client, code, first, count, due) in
        [("PCCA", "MIDA", 1, 6, 1), ("PCCB", "MIDB", 101, 2, 50)]
    {
        let (_, merchant_pk) = client_with_merchant(store, client, code).await;
        store
            .set_client_callback(client, "https://hooks.example", None)
            .await
            .unwrap();
        for n in first..first + count {
            store.init_kyc(new_kyc(merchant_pk, n, n)).await.unwrap();
            let mut rejected = Transition::new(&kid(n), KycState::Rejected, at(due + n as i64));
            rejected.reason = Some("no".into());
            store.transition(rejected).await.unwrap();
            kids.push((client, kid(n)));
        }
    }
    // Which kids a claim took (in no particular order: they go out side by side).
    let claimed = |due: &[DueCallback]| {
        let mut kids: Vec<_> = due.iter().map(|d| d.kid.clone()).collect();
        kids.sort();
        kids
    };
    // Two each at most.
    let due = store
        .claim_callbacks(at(1_000), at(9_000), 2, 10)
        .await
        .unwrap();
    assert_eq!(claimed(&due), [kid(1), kid(2), kid(101), kid(102)]);
    // With two of each in flight, nothing more for either.
    assert!(
        store
            .claim_callbacks(at(1_001), at(9_000), 2, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // One of A's is done: A may have one more in flight, B has nothing left.
    let first = due.iter().find(|d| d.kid == kid(1)).unwrap();
    finish(store, first.pk, AttemptResult::Delivered, None, at(1_002)).await;
    let next = store
        .claim_callbacks(at(1_003), at(9_000), 2, 10)
        .await
        .unwrap();
    assert_eq!(claimed(&next), [kid(3)]);
    // Once the leases run out, the share is free again.
    // The first of each client before the second of any: with room for three, A's
    // first and B's first (of what is left) and then A's second, due before B's.
    let later = store
        .claim_callbacks(at(9_001), at(20_000), 2, 3)
        .await
        .unwrap();
    assert_eq!(claimed(&later), [kid(2), kid(3), kid(101)]);
}

/// Claims made at the same moment (workers on several nodes) never take one event twice,
/// and together keep each client's share.
async fn simultaneous_claims_share_without_overlap(store: &dyn Store) {
    let (_, merchant_pk) = client_with_merchant(store, "PCCA", "MIDA").await;
    store
        .set_client_callback("PCCA", "https://hooks.example", None)
        .await
        .unwrap();
    for n in 1..=12 {
        store.init_kyc(new_kyc(merchant_pk, n, n)).await.unwrap();
        let mut rejected = Transition::new(&kid(n), KycState::Rejected, at(n as i64));
        rejected.reason = Some("no".into());
        store.transition(rejected).await.unwrap();
    }
    let claim =
        |now, per_client, limit| store.claim_callbacks(at(now), at(9_000), per_client, limit);
    let taken = |claims: [StoreResult<Vec<DueCallback>>; 4]| {
        let mut kids: Vec<String> = claims
            .into_iter()
            .flat_map(|c| c.unwrap())
            .map(|d| d.kid)
            .collect();
        kids.sort();
        kids
    };
    // A share of five: four claims of up to three each take five events between them.
    let (a, b, c, d) = tokio::join!(
        claim(100, 5, 3),
        claim(100, 5, 3),
        claim(100, 5, 3),
        claim(100, 5, 3)
    );
    let first = taken([a, b, c, d]);
    assert_eq!(first, (1..=5).map(kid).collect::<Vec<_>>());
    // A share large enough for all: the other seven, each once.
    let (a, b, c, d) = tokio::join!(
        claim(200, 50, 3),
        claim(200, 50, 3),
        claim(200, 50, 3),
        claim(200, 50, 3)
    );
    assert_eq!(taken([a, b, c, d]), (6..=12).map(kid).collect::<Vec<_>>());
}

/// Ended requests past their retention lose their identity data and keep a tombstone;
/// open ones are never purged; a customer with nothing left can no longer be found.
async fn retention_purges_what_has_ended(store: &dyn Store) {
    let (client_pk, merchant_pk) = client_with_merchant(store, "PCCA", "MID1").await;
    // Customer 1: one approved request (ends at 10) and a later open one. Customer 2:
    // one rejected request (ends at 20).
    store.init_kyc(new_kyc(merchant_pk, 1, 1)).await.unwrap();
    store.init_kyc(new_kyc(merchant_pk, 2, 2)).await.unwrap();
    let mut approve = Transition::new(&kid(1), KycState::Approved, at(10));
    approve.result_sealed = Some(b"identity".to_vec());
    store.transition(approve).await.unwrap();
    let mut reject = Transition::new(&kid(2), KycState::Rejected, at(20));
    reject.reason = Some("no".into());
    store.transition(reject).await.unwrap();
    store.init_kyc(new_kyc(merchant_pk, 1, 3)).await.unwrap();
    let session = SandboxSession {
        step: "done".into(),
        outcome: Some("approved".into()),
        face_match: Some(97),
        selfie_sealed: Some(b"jpeg".to_vec()),
        person_sealed: None,
    };
    store
        .save_sandbox_session(&kid(1), &session, at(10))
        .await
        .unwrap();

    // Ended before 15: only the approved one.
    assert_eq!(
        store
            .purge_ended_kycs(at(15), at(100), 10, note("sweep"))
            .await
            .unwrap(),
        1
    );
    let tomb = store.kyc(&kid(1), None).await.unwrap().unwrap();
    assert_eq!(
        (
            tomb.state,
            tomb.cust_id.as_str(),
            tomb.purged_at,
            tomb.updated_at,
            tomb.result_sealed,
            tomb.submitted_sealed,
            tomb.url_sealed,
            tomb.token_hash,
            tomb.redirect_url
        ),
        (
            KycState::Approved,
            "C00000000001",
            Some(at(100)),
            at(10),
            None,
            None,
            None,
            None,
            None
        )
    );
    assert!(store.sandbox_session(&kid(1)).await.unwrap().is_none());
    // The customer still has an open request: found, but no longer verified.
    let by_pan = |n: usize| CustomerLookup::PanHash(format!("pan-{n}").into_bytes());
    let c = store
        .customer(client_pk, "MID1", by_pan(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.verified, c.details_sealed),
        (None, b"details-3".to_vec())
    );
    // Nothing more before 15; the rejected one before 25.
    assert_eq!(
        store
            .purge_ended_kycs(at(15), at(101), 10, note("sweep"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_ended_kycs(at(25), at(102), 10, note("sweep"))
            .await
            .unwrap(),
        1
    );
    // Its customer had nothing else: found neither by PAN nor by mobile.
    assert!(
        store
            .customer(client_pk, "MID1", by_pan(2))
            .await
            .unwrap()
            .is_none()
    );
    let by_mobile = CustomerLookup::MobileHash(b"mobile-2".to_vec());
    assert!(
        store
            .customer(client_pk, "MID1", by_mobile)
            .await
            .unwrap()
            .is_none()
    );

    // One at a time: an open one is refused, an ended one purged once.
    assert_eq!(
        store
            .purge_kyc(&kid(3), at(110), note("operator"))
            .await
            .unwrap(),
        PurgeOutcome::StillOpen(KycState::Pending)
    );
    assert!(
        store
            .kyc(&kid(3), None)
            .await
            .unwrap()
            .unwrap()
            .submitted_sealed
            .is_some()
    );
    assert_eq!(
        store
            .purge_kyc(&kid(2), at(110), note("operator"))
            .await
            .unwrap(),
        PurgeOutcome::AlreadyPurged
    );
    assert_eq!(
        store
            .purge_kyc(&kid(9), at(110), note("operator"))
            .await
            .unwrap(),
        PurgeOutcome::Unknown
    );
    let mut expire = Transition::new(&kid(3), KycState::Expired, at(120));
    expire.reason = Some("link expired".into());
    store.transition(expire).await.unwrap();
    assert_eq!(
        store
            .purge_kyc(&kid(3), at(130), note("operator"))
            .await
            .unwrap(),
        PurgeOutcome::Purged
    );
    assert!(
        store
            .customer(client_pk, "MID1", by_pan(1))
            .await
            .unwrap()
            .is_none()
    );
    // The same PAN later is a new customer.
    let again = store.init_kyc(new_kyc(merchant_pk, 1, 4)).await.unwrap();
    assert_eq!(again.cust_id, "C00000000004");

    // Webhook events and sandbox journeys after their own retention.
    assert!(
        store
            .record_webhook_event("digio", "E1", at(10))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_webhook_event("digio", "E2", at(30))
            .await
            .unwrap()
    );
    assert_eq!(store.purge_webhook_events(at(20)).await.unwrap(), 1);
    assert!(
        store
            .record_webhook_event("digio", "E1", at(40))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_webhook_event("digio", "E2", at(40))
            .await
            .unwrap()
    );
    store
        .save_sandbox_session(&kid(4), &session, at(50))
        .await
        .unwrap();
    assert_eq!(store.purge_sandbox_sessions(at(50)).await.unwrap(), 0);
    assert_eq!(store.purge_sandbox_sessions(at(51)).await.unwrap(), 1);
}

/// The audit trail keeps entries in order, each linked to the one before; an audited
/// change and its entry land together, a failed one leaves neither, and a move records
/// its entry only if it applies.
async fn the_audit_trail(store: &std::sync::Arc<dyn Store>) {
    let chain = |n: i64| (1..=n).flat_map(i64::to_be_bytes).collect::<Vec<u8>>();
    let seqs = |records: &[AuditRecord]| records.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert!(store.audit_chain(0, 10).await.unwrap().is_empty());
    store.append_audit(note("reader")).await.unwrap();
    store.append_audit(note("reader")).await.unwrap();
    let all = store.audit_chain(0, 10).await.unwrap();
    assert_eq!(seqs(&all), [1, 2]);
    assert_eq!(
        (all[1].chain.clone(), all[1].entry.actor.as_str()),
        (chain(2), "reader")
    );

    let (_, merchant_pk) = client_with_merchant(store.as_ref(), "PCCA", "MID1").await;
    let mut op = note("operator");
    op.entries[0].client_id = Some("PCCA".into());
    assert!(
        store
            .clone()
            .audited(op.clone())
            .set_client_active("PCCA", Switch::Off)
            .await
            .unwrap()
    );
    assert!(!store.find_client("PCCA").await.unwrap().unwrap().active);
    // A change that fails leaves no entry.
    let taken = store
        .clone()
        .audited(op.clone())
        .create_merchant("PCCA", "MID1", "Shop", NOW)
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(Unique::MerchantCode))),
        "{taken:?}"
    );
    assert_eq!(seqs(&store.audit_chain(0, 10).await.unwrap()), [1, 2, 3]);

    store.init_kyc(new_kyc(merchant_pk, 1, 1)).await.unwrap();
    let mut decided = note("operator");
    decided.entries[0].kid = Some(kid(1));
    let mut reject = Transition::new(&kid(1), KycState::Rejected, at(5));
    reject.reason = Some("no".into());
    reject.audit = Some(decided.clone());
    assert_eq!(
        store.transition(reject.clone()).await.unwrap(),
        Some(KycState::Rejected)
    );
    // Again: the move does not apply, so nothing is recorded.
    assert_eq!(
        store.transition(reject).await.unwrap(),
        Some(KycState::Rejected)
    );
    let all = store.audit_chain(0, 10).await.unwrap();
    assert_eq!(seqs(&all), [1, 2, 3, 4]);
    assert_eq!(all[3].chain, chain(4));
    assert_eq!(store.audit_chain(2, 1).await.unwrap()[0].seq, 3);

    let list = |kid: Option<String>, client_id: Option<&str>, since: Option<UnixMs>, limit| {
        let filter = AuditFilter {
            kid,
            client_id: client_id.map(str::to_owned),
            since,
            limit,
        };
        async move { seqs(&store.audit_entries(&filter).await.unwrap()) }
    };
    assert_eq!(list(None, None, None, 10).await, [4, 3, 2, 1]);
    assert_eq!(list(None, None, None, 2).await, [4, 3]);
    assert_eq!(list(Some(kid(1)), None, None, 10).await, [4]);
    assert_eq!(list(None, Some("PCCA"), None, 10).await, [3]);
    assert_eq!(
        list(Some(kid(1)), Some("PCCA"), None, 10).await,
        Vec::<i64>::new()
    );
    assert_eq!(list(None, None, Some(at(1)), 10).await, Vec::<i64>::new());
    assert_eq!(list(None, None, Some(NOW), 10).await, [4, 3, 2, 1]);

    // Many reads recorded at once (appended together, on PostgreSQL in one statement):
    // one unbroken chain, every entry kept whole, absent fields absent.
    let mut reads = tokio::task::JoinSet::new();
    for n in 0..50 {
        let store = store.clone();
        let mut read = note("reader");
        let entry = &mut read.entries[0];
        entry.at = at(n);
        entry.request_id = Some(format!("req-{n}"));
        if n % 2 == 0 {
            entry.kid = Some(kid(n as usize));
            entry.cust_id = Some(format!("cust-{n}"));
            entry.client_id = Some("PCCA".into());
        }
        reads.spawn(async move { store.append_audit(read).await.unwrap() });
    }
    reads.join_all().await;
    let all = store.audit_chain(0, 100).await.unwrap();
    assert_eq!(seqs(&all), (1..=54).collect::<Vec<_>>());
    assert_eq!(all[53].chain, chain(54));
    let mut kept: Vec<_> = all[4..].iter().map(|r| r.entry.clone()).collect();
    kept.sort_by_key(|e| e.at);
    for (n, e) in (0i64..).zip(&kept) {
        let even = n % 2 == 0;
        assert_eq!(
            (
                e.at,
                e.actor.as_str(),
                e.action.as_str(),
                e.outcome.as_str()
            ),
            (at(n), "reader", "test", "ok")
        );
        assert_eq!(e.request_id, Some(format!("req-{n}")));
        assert_eq!(e.kid, even.then(|| kid(n as usize)));
        assert_eq!(e.cust_id, even.then(|| format!("cust-{n}")));
        assert_eq!(e.client_id.as_deref(), even.then_some("PCCA"));
    }
}

contract!(
    simultaneous_sweeps_purge_each_request_once,
    retention_purges_what_has_ended,
    simultaneous_claims_share_without_overlap,
    clients_take_turns_at_the_callback_outbox,
    clients_and_merchants,
    settings_are_kept_once,
    inits_reads_and_customers,
    clashes_name_their_rule,
    expiry_and_provider_bookkeeping,
    idempotency_keys,
    the_callback_outbox,
    sandbox_sessions,
);

/// Callers that give up at any moment (a client that disconnects, a deadline) leave no
/// transaction open on a pooled PostgreSQL connection: sqlx does when a `BEGIN` is
/// cancelled, and the next borrower's writes then run inside it and never commit. With
/// one pooled connection, every cancelled init is followed by a one-statement write that
/// another connection must see.
#[tokio::test]
async fn abandoned_postgres_writes_leave_no_transaction_open() {
    if common::Backend::postgres().is_none() {
        return;
    }
    let db = common::TestDb::create().await;
    let one = PgSettings {
        pool_size: 1,
        ..pg_settings()
    };
    let store = PgStore::open(&db.url, &one).await.unwrap();
    let observer = PgStore::open(&db.url, &pg_settings()).await.unwrap();
    let (_, merchant_pk) = client_with_merchant(&store, "PCCA", "MIDA").await;
    for n in 1..=200usize {
        // Given up after 0 to 950 µs: before, during and after the BEGIN.
        let patience = Duration::from_micros(50 * (n % 20) as u64);
        let _ = tokio::time::timeout(patience, store.init_kyc(new_kyc(merchant_pk, n, n))).await;
        let url = format!("https://hooks.example/{n}");
        store.set_client_callback("PCCA", &url, None).await.unwrap();
        let seen = observer.client_callback("PCCA").await.unwrap().unwrap();
        assert_eq!(
            seen.url.as_deref(),
            Some(url.as_str()),
            "after abandoned init {n}"
        );
    }
}

/// Sweeps on several nodes at once purge each request once, with one audit entry each.
async fn simultaneous_sweeps_purge_each_request_once(store: &dyn Store) {
    let (_, merchant_pk) = client_with_merchant(store, "PCCA", "MID1").await;
    for n in 1..=20 {
        store.init_kyc(new_kyc(merchant_pk, n, n)).await.unwrap();
        let mut reject = Transition::new(&kid(n), KycState::Rejected, at(n as i64));
        reject.reason = Some("no".into());
        store.transition(reject).await.unwrap();
    }
    let sweep = || store.purge_ended_kycs(at(100), at(200), 50, note("sweep"));
    let (a, b, c, d) = tokio::join!(sweep(), sweep(), sweep(), sweep());
    let purged: usize = [a, b, c, d].into_iter().map(Result::unwrap).sum();
    assert_eq!(purged, 20);
    let entries = store.audit_chain(0, 100).await.unwrap();
    let mut kids: Vec<String> = entries.into_iter().filter_map(|r| r.entry.kid).collect();
    kids.sort();
    assert_eq!(kids, (1..=20).map(kid).collect::<Vec<_>>());
}

/// `the_audit_trail` needs the store as an `Arc` (an audited store wraps it).
mod audit_trail {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn Store> =
            std::sync::Arc::new(SqliteStore::open(&dir.path().join("paycc.db"), 2).unwrap());
        the_audit_trail(&store).await;
    }

    #[tokio::test]
    async fn postgres() {
        if crate::common::Backend::postgres().is_none() {
            return;
        }
        let db = crate::common::TestDb::create().await;
        let store: std::sync::Arc<dyn Store> =
            std::sync::Arc::new(PgStore::open(&db.url, &pg_settings()).await.unwrap());
        the_audit_trail(&store).await;
    }
}
