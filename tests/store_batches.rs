//! The SQLite writer commits many requests' writes in one transaction. A write that
//! fails inside a shared batch must leave no trace, and must not take the other writes
//! of its batch down with it: on a real database file, with the writes sent at once so
//! that they share batches.

use paycc::domain::state::KycState;
use paycc::store::sqlite::SqliteStore;
use paycc::store::{CustomerLookup, NewCustomer, NewKyc, Store, StoreError};
use std::sync::Arc;

const NOW: i64 = 1_764_600_000_000;

fn new_kyc(merchant_pk: i64, n: usize, kid: String) -> NewKyc {
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
        expires_at: NOW + 86_400_000,
        customer: NewCustomer {
            cust_id: format!("C{n:011}"),
            pan_hash: format!("pan-{n}").into_bytes(),
            mobile_hash: format!("mobile-{n}").into_bytes(),
            details_sealed: vec![4, 5, 6],
        },
    }
}

fn kid(n: usize) -> String {
    format!("KID261201120000000{n:014}")
}

#[tokio::test]
async fn a_failing_write_leaves_no_trace_and_its_batch_still_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("paycc.db"), 2).unwrap());
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
    let taken = store
        .init_kyc(new_kyc(merchant.pk, 0, kid(0)))
        .await
        .unwrap();
    assert!(!taken.reused);

    // Every tenth write is a new customer whose request reuses a kid already stored:
    // its customer row is written first, then the request fails on the kid.
    let mut writes = tokio::task::JoinSet::new();
    for n in 1..=300 {
        let store = store.clone();
        let kid = if n % 10 == 0 { kid(0) } else { kid(n) };
        let new = new_kyc(merchant.pk, n, kid);
        writes.spawn(async move { (n, store.init_kyc(new).await) });
    }
    while let Some(done) = writes.join_next().await {
        let (n, result) = done.unwrap();
        if n % 10 == 0 {
            assert!(
                matches!(result, Err(StoreError::Conflict("kid"))),
                "write {n}: {result:?}"
            );
        } else {
            let stored = result.unwrap_or_else(|e| panic!("write {n}: {e}"));
            assert_eq!(stored.kid, kid(n));
            assert_eq!(stored.cust_id, format!("C{n:011}"));
        }
    }

    for n in 1..=300 {
        let customer = store
            .customer(
                client_pk,
                "MID000000001",
                CustomerLookup::PanHash(format!("pan-{n}").into_bytes()),
            )
            .await
            .unwrap();
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
