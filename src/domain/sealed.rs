//! Every column that holds a sealed value, the label bound to its values, and the id of
//! the row each value is bound to: what `Keyring::seal` takes and `paycc keys rotate`
//! walks. The labels are stored in every value's associated data, so they never change.

/// A column of sealed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// The customer's latest submitted details; row: `customer_row`.
    CustomerDetails,
    /// What was submitted with one request; row: the request's reference (its kid may
    /// still change when a remote provider names it).
    KycSubmitted,
    /// The journey link; row: the kid.
    KycUrl,
    /// The verified identity; row: the kid.
    KycResult,
    /// An API client's webhook secret; row: the client id.
    CallbackSecret,
    /// The reply an Idempotency-Key gives again; row: `idempotency_row`.
    IdempotentReply,
    /// The sandbox journey's selfie; row: the kid.
    SandboxSelfie,
    /// The person a sandbox tester made DigiLocker return; row: the kid.
    SandboxPerson,
}

impl SealedColumn {
    pub const ALL: [Self; 8] = [
        Self::CustomerDetails,
        Self::KycSubmitted,
        Self::KycUrl,
        Self::KycResult,
        Self::CallbackSecret,
        Self::IdempotentReply,
        Self::SandboxSelfie,
        Self::SandboxPerson,
    ];

    /// The associated data that ties a value to this column. A request's submitted
    /// details began as copies of the customer's, so both columns share one label; the
    /// row tells them apart.
    pub fn label(self) -> &'static str {
        match self {
            Self::CustomerDetails | Self::KycSubmitted => "customer-details",
            Self::KycUrl => "kyc-url",
            Self::KycResult => "kyc-result",
            Self::CallbackSecret => "webhook-secret",
            Self::IdempotentReply => "idempotent-reply",
            Self::SandboxSelfie => "sandbox-selfie",
            Self::SandboxPerson => "sandbox-person",
        }
    }

    /// `table.column`, as an operator reads it.
    pub fn name(self) -> &'static str {
        match self {
            Self::CustomerDetails => "customers.details_sealed",
            Self::KycSubmitted => "kyc_requests.submitted_sealed",
            Self::KycUrl => "kyc_requests.url_sealed",
            Self::KycResult => "kyc_requests.result_sealed",
            Self::CallbackSecret => "api_clients.callback_secret_sealed",
            Self::IdempotentReply => "idempotency_keys.reply_sealed",
            Self::SandboxSelfie => "sandbox_sessions.selfie_sealed",
            Self::SandboxPerson => "sandbox_sessions.person_sealed",
        }
    }
}

impl SealedColumn {
    /// `row` as a log line or an error may name it: a customer's row id holds its PAN's
    /// keyed hash, which is no id a log may carry; every other row id is one.
    pub fn row_in_logs(self, row: &str) -> &str {
        match self {
            Self::CustomerDetails => "a customer",
            _ => row,
        }
    }
}

/// The row of a customer: one per (merchant, PAN), and the custId is not known before
/// the customer is stored.
pub fn customer_row(merchant_pk: i64, pan_hash: &[u8]) -> String {
    format!("{merchant_pk}:{}", hex::encode(pan_hash))
}

/// The row of an Idempotency-Key: one per (API client, key).
pub fn idempotency_row(client_pk: i64, key: &str) -> String {
    format!("{client_pk}:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_rows() {
        let names: std::collections::HashSet<_> =
            SealedColumn::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), SealedColumn::ALL.len());
        assert_eq!(customer_row(7, &[0xab, 0x01]), "7:ab01");
        assert_eq!(idempotency_row(3, "k:1"), "3:k:1");
    }
}
