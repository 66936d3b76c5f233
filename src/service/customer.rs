//! The customer check: what a merchant knows of one of its customers.

use super::audit::AuditAction;
use super::{ApiClient, CustomerDetails, Customers, ServiceError, ServiceResult};
use crate::crypto::Lookup;
use crate::domain::fields::split_name;
use crate::domain::kyc::{KycIdentity, gender_word};
use crate::domain::request::{CustomerKey, CustomerQuery};
use crate::domain::sealed::SealedColumn;
use crate::store::CustomerLookup;

/// A customer as the check reports it: verified identity once a KYC is approved,
/// otherwise the details the merchant gave and the open KYC link. Holds identity data,
/// so it has no `Debug`.
#[derive(Clone)]
pub struct CustomerView {
    pub cust_id: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub mobile: String,
    pub email: String,
    pub pan: String,
    pub active: bool,
    /// Present once a KYC was approved.
    pub verified: Option<(String, KycIdentity)>,
    /// The newest request's kid and, while it is open, its link.
    pub latest_kid: Option<String>,
    pub open_url: Option<String>,
}

impl CustomerView {
    pub fn address(&self) -> Option<String> {
        self.verified
            .as_ref()
            .map(|(_, i)| i.current_address.one_line())
    }

    pub fn gender(&self) -> Option<&'static str> {
        self.verified.as_ref().map(|(_, i)| gender_word(&i.gender))
    }
}

pub(super) const NO_CUSTOMER: &str = "No customer found";

impl Customers {
    pub async fn check(&self, client: &ApiClient, q: CustomerQuery) -> ServiceResult<CustomerView> {
        self.usable_merchant(client, &q.merchant_code).await?;
        let key = match &q.key {
            CustomerKey::Pan(p) => {
                CustomerLookup::PanHash(self.keys.lookup_hash(Lookup::Pan, &[p.as_str()]))
            }
            CustomerKey::Mobile(m) => {
                CustomerLookup::MobileHash(self.keys.lookup_hash(Lookup::Mobile, &[m.as_str()]))
            }
        };
        let record = self
            .store
            .customer(client.pk, q.merchant_code.as_str(), key)
            .await?
            .ok_or(ServiceError::NotFound(NO_CUSTOMER))?;
        let details: CustomerDetails = self.open_json(
            SealedColumn::CustomerDetails,
            &record.details_row,
            &record.details_sealed,
        )?;
        let verified = match &record.verified {
            Some((kid, sealed)) => Some((
                kid.clone(),
                self.open_json::<KycIdentity>(SealedColumn::KycResult, kid, sealed)?,
            )),
            None => None,
        };
        let now = self.now_ms();
        let open_url = match &record.latest {
            Some(l) if verified.is_none() && l.state.as_of(l.expires_at, now).is_open() => l
                .url_sealed
                .as_deref()
                .map(|s| self.open_text(SealedColumn::KycUrl, &l.kid, s))
                .transpose()?,
            _ => None,
        };
        // Once verified, the PAN and names are the verified ones, never the ones the
        // merchant typed; before, they are the merchant's, with `digioKyc` "0".
        let (name, pan) = match &verified {
            Some((_, i)) => (i.name.as_str(), i.pan.clone()),
            None => (details.name.as_str(), details.pan.clone()),
        };
        if let Some((kid, _)) = &verified {
            self.record_read(self.read_entry(
                client,
                AuditAction::CustomerCheck,
                kid,
                &record.cust_id,
            ))
            .await?;
        }
        let (first_name, middle_name, last_name) = split_name(name);
        Ok(CustomerView {
            cust_id: record.cust_id,
            first_name,
            middle_name,
            last_name,
            mobile: details.mobile,
            email: details.email,
            pan,
            active: record.active,
            latest_kid: verified
                .as_ref()
                .map(|(kid, _)| kid.clone())
                .or(record.latest.map(|l| l.kid)),
            verified,
            open_url,
        })
    }
}
