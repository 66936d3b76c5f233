//! What paycc tells a merchant's backend when one of its KYC requests moves: the event
//! a state change announces and the body that carries it.

use super::code::Code;
use super::state::KycState;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KycEvent {
    /// The customer finished; a verdict is awaited.
    Pending,
    Success,
    /// Rejected, expired or failed.
    Failed,
}

impl KycEvent {
    /// The event that entering `state` announces. Reaching the other states is not news a
    /// merchant acts on: they follow from its own init or the customer opening the link.
    pub fn on_entering(state: KycState) -> Option<Self> {
        match state {
            KycState::AwaitingApproval => Some(Self::Pending),
            KycState::Approved => Some(Self::Success),
            KycState::Rejected | KycState::Expired | KycState::Failed => Some(Self::Failed),
            KycState::Created | KycState::Pending | KycState::InProgress => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "paycc.kyc.pending",
            Self::Success => "paycc.kyc.success",
            Self::Failed => "paycc.kyc.failed",
        }
    }

    fn code(self) -> Code {
        match self {
            Self::Pending => Code::Pending,
            Self::Success => Code::Success,
            Self::Failed => Code::Failure,
        }
    }
}

/// The facts one callback reports, as the outbox keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KycChange<'a> {
    pub kid: &'a str,
    pub cust_id: &'a str,
    pub merchant_code: &'a str,
    pub state: KycState,
}

#[derive(Serialize)]
struct Body<'a> {
    event: &'static str,
    code: &'static str,
    message: &'static str,
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    kid: &'a str,
    cust_id: &'a str,
    merchant_code: &'a str,
    state: &'static str,
}

/// The callback body (IPAYMENT's webhook shape, keys in this order), or `None` for a
/// state no event announces. The same change always renders the same bytes, so every
/// retry carries what the first attempt signed.
pub fn callback_body(change: &KycChange<'_>) -> Option<Vec<u8>> {
    let event = KycEvent::on_entering(change.state)?;
    let body = Body {
        event: event.name(),
        code: event.code().as_str(),
        message: change.state.outcome_message(),
        data: Data {
            kid: change.kid,
            cust_id: change.cust_id,
            merchant_code: change.merchant_code,
            state: change.state.as_str(),
        },
    };
    Some(serde_json::to_vec(&body).expect("a callback body serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(state: KycState) -> KycChange<'static> {
        KycChange {
            kid: "KID251125100000000ABCDEFGHIJKLMN",
            cust_id: "ABCDE1234567",
            merchant_code: "MID1",
            state,
        }
    }

    #[test]
    fn bodies_in_the_published_shape() {
        let body = callback_body(&change(KycState::Approved)).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"event":"paycc.kyc.success","code":"0x0200","message":"Kyc approved","data":{"kid":"KID251125100000000ABCDEFGHIJKLMN","custId":"ABCDE1234567","merchantCode":"MID1","state":"approved"}}"#
        );
        let body = callback_body(&change(KycState::Expired)).unwrap();
        assert!(
            String::from_utf8(body).unwrap().starts_with(
                r#"{"event":"paycc.kyc.failed","code":"0x0202","message":"Kyc expired""#
            )
        );
        let body = callback_body(&change(KycState::AwaitingApproval)).unwrap();
        assert!(String::from_utf8(body).unwrap().starts_with(
            r#"{"event":"paycc.kyc.pending","code":"0x0206","message":"Kyc is pending""#
        ));
    }

    #[test]
    fn only_news_is_announced() {
        for s in [KycState::Created, KycState::Pending, KycState::InProgress] {
            assert_eq!(callback_body(&change(s)), None);
        }
    }
}
