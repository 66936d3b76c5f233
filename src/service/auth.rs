//! Who is calling, and which merchants they may name.

use super::{Auth, Core, ServiceError, ServiceResult};
use crate::domain::fields::MerchantCode;
use crate::store::{ClientPk, MerchantRecord, RateLimit};

/// An authenticated API client.
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub pk: ClientPk,
    pub client_id: String,
    /// Its own rate limit, if an operator set one.
    pub rate_limit: Option<RateLimit>,
    /// The id of the request it is making, named in the audit trail.
    pub request_id: Option<String>,
}

/// Why credentials were refused; each shape gets its own message, none says whether a
/// client id exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    NotBasic,
    Malformed,
    BadCredentials,
}

impl Auth {
    pub async fn authenticate(&self, client_id: &str, secret: &str) -> ServiceResult<ApiClient> {
        let found = self.store.find_client(client_id).await?;
        match found {
            // A disabled client is told nothing more than a wrong secret is.
            Some(c) if self.keys.secret_matches(secret, &c.secret_hash) && c.active => {
                Ok(ApiClient {
                    pk: c.pk,
                    client_id: c.client_id,
                    rate_limit: c.rate_limit,
                    request_id: None,
                })
            }
            Some(_) => Err(ServiceError::Unauthorized(AuthFailure::BadCredentials)),
            None => {
                // Spend the same hashing work as for a known client.
                let _ = self.keys.secret_matches(secret, &[0u8; 32]);
                Err(ServiceError::Unauthorized(AuthFailure::BadCredentials))
            }
        }
    }

    /// Keeps credentials in memory vouched for while the node serves
    /// (`store::credentials`): a revocation is in force within a second.
    pub async fn watch_credentials(&self) {
        self.store.watch_credentials().await
    }
}

impl Core {
    /// The merchant if this client owns it and it is active; otherwise one answer for
    /// "not yours", "does not exist" and "inactive", so codes cannot be probed.
    pub(super) async fn usable_merchant(
        &self,
        client: &ApiClient,
        code: &MerchantCode,
    ) -> ServiceResult<MerchantRecord> {
        match self
            .store
            .merchant_of_client(client.pk, code.as_str())
            .await?
        {
            Some(m) if m.active => Ok(m),
            _ => Err(ServiceError::MerchantUnavailable),
        }
    }
}
