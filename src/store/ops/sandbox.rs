//! The sandbox provider's record of each journey.

use super::rows;
use crate::store::backend::Access::{Read, Write};
use crate::store::backend::Backend;
use crate::store::db::{Conn, args};
use crate::store::*;
use async_trait::async_trait;

/// Creates or replaces the record; a `None` selfie keeps the stored one.
pub async fn save(
    c: &mut impl Conn,
    kid: &str,
    s: &SandboxSession,
    now: UnixMs,
) -> StoreResult<()> {
    c.execute(
        "saving a sandbox session",
        "INSERT INTO sandbox_sessions (kid, step, outcome, face_match, selfie_sealed, person_sealed, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (kid) DO UPDATE SET step = excluded.step, outcome = excluded.outcome,
           face_match = excluded.face_match,
           selfie_sealed = COALESCE(excluded.selfie_sealed, sandbox_sessions.selfie_sealed),
           person_sealed = excluded.person_sealed,
           updated_at = excluded.updated_at",
        args![
            kid,
            &s.step,
            &s.outcome,
            s.face_match.map(i64::from),
            &s.selfie_sealed,
            &s.person_sealed,
            now
        ],
    )
    .await
    .map(drop)
}

pub async fn get(c: &mut impl Conn, kid: &str) -> StoreResult<Option<SandboxSession>> {
    c.fetch_one(
        "reading a sandbox session",
        "SELECT step, outcome, face_match, selfie_sealed, person_sealed FROM sandbox_sessions WHERE kid = $1",
        args![kid],
        rows::sandbox_session,
    )
    .await
}

#[async_trait]
impl<B: Backend> SandboxSessions for B {
    async fn save_sandbox_session(
        &self,
        kid: &str,
        session: &SandboxSession,
        now: UnixMs,
    ) -> StoreResult<()> {
        let args = (kid.to_owned(), session.clone());
        self.run(Write, args, move |c, (kid, s)| {
            Box::pin(save(c, kid, s, now))
        })
        .await
    }

    async fn sandbox_session(&self, kid: &str) -> StoreResult<Option<SandboxSession>> {
        self.run(Read, kid.to_owned(), |c, kid| Box::pin(get(c, kid)))
            .await
    }
}
