//! The sandbox's journeys as the store keeps them.

use super::journey::{JourneyEnd, JourneyLog};
use crate::store::Store;
use async_trait::async_trait;
use std::sync::Arc;

/// The sandbox's journeys, kept in the store.
pub struct StoredJourneys(pub Arc<dyn Store>);

#[async_trait]
impl JourneyLog for StoredJourneys {
    async fn journey(&self, kid: &str) -> Result<Option<JourneyEnd>, String> {
        let session = self
            .0
            .sandbox_session(kid)
            .await
            .map_err(|e| e.to_string())?;
        Ok(session.map(|s| JourneyEnd {
            outcome: s.outcome,
            face_match: s.face_match,
            selfie_sealed: s.selfie_sealed,
            person_sealed: s.person_sealed,
        }))
    }
}
