//! The operations listener: `/healthz` and `/readyz`, including a schema that is behind.

mod common;
use common::*;

async fn readyz_follows_the_database_and_its_schema(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let text = |path: &'static str| {
        let url = format!("{}{path}", app.ops);
        async move {
            let r = get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(
        text("/healthz").await,
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    assert_eq!(
        text("/readyz").await,
        (200, r#"{"status":"ready"}"#.to_owned())
    );
    // Roll the recorded schema back, as if this build met an older database.
    match &app.db {
        Some(db) => {
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
                .await
                .unwrap();
            sqlx::query("DELETE FROM paycc_migrations WHERE version = (SELECT MAX(version) FROM paycc_migrations)")
                .execute(&mut c)
                .await
                .unwrap();
        }
        None => {
            let c = rusqlite::Connection::open(app.dir.path().join("paycc.db")).unwrap();
            c.execute_batch("PRAGMA user_version = 1").unwrap();
        }
    }
    assert_eq!(
        text("/readyz").await,
        (
            503,
            r#"{"reason":"migrations pending","status":"not ready"}"#.to_owned()
        )
    );
    assert_eq!(text("/healthz").await.0, 200);
}

on_both_backends!(readyz_follows_the_database_and_its_schema);
