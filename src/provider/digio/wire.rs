//! Digio's JSON, read defensively: every field optional, unknown keys ignored, numbers
//! that arrive as strings (and strings that arrive as numbers) accepted.

use crate::domain::kyc::{Address, KycIdentity, Photo, mask_aadhaar};
use crate::provider::{ProviderResult, ProviderState};
use serde_json::Value;

/// A field as text, whether the JSON has a string or a number there.
fn text(v: Option<&Value>, key: &str) -> String {
    match v.and_then(|v| v.get(key)) {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A field as a number, whether the JSON has a number or a numeric string there.
fn number(v: Option<&Value>, key: &str) -> Option<f64> {
    match v?.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches('%').parse().ok(),
        _ => None,
    }
}

fn action<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.get("actions")?
        .as_array()?
        .iter()
        .find(|a| text(Some(a), "type").eq_ignore_ascii_case(kind))
}

/// The id and access token of a request Digio created.
pub fn created(v: &Value) -> Option<(String, String)> {
    let id = text(Some(v), "id");
    let token = text(v.get("access_token"), "id");
    (!id.is_empty() && !token.is_empty()).then_some((id, token))
}

/// Digio's `status` in our words. Unknown statuses count as "requested", the lowest
/// rank, so they can never move a request.
pub fn state(status: &str) -> (ProviderState, Option<&'static str>) {
    match status.to_ascii_lowercase().as_str() {
        "approved" => (ProviderState::Approved, None),
        "approval_pending" | "completed" => (ProviderState::ApprovalPending, None),
        "rejected" => (
            ProviderState::Rejected,
            Some("Rejected by the KYC provider."),
        ),
        "terminated" => (
            ProviderState::Rejected,
            Some("The KYC request was terminated at the provider."),
        ),
        "expired" => (
            ProviderState::Expired,
            Some(crate::domain::state::EXPIRED_REASON),
        ),
        _ => (ProviderState::Requested, None),
    }
}

/// `POST /client/kyc/v2/{KID}/response` mapped to the Paycc `kyc` object.
pub fn result(v: &Value) -> ProviderResult {
    let (state, reason) = state(&text(Some(v), "status"));
    let identity = (state == ProviderState::Approved).then(|| identity(v));
    ProviderResult {
        state,
        identity,
        reason: reason.map(str::to_owned),
    }
}

fn identity(v: &Value) -> KycIdentity {
    let details = action(v, "digilocker").and_then(|a| a.get("details"));
    let aadhaar = details.and_then(|d| d.get("aadhaar"));
    let pan = details.and_then(|d| d.get("pan"));
    let face = action(v, "selfie").and_then(|s| s.get("face_match_result"));
    let address = aadhaar.and_then(|a| a.get("current_address_details"));
    KycIdentity {
        name: text(aadhaar, "name"),
        face_match: number(face, "confidence").map_or(0, |c| c.round().clamp(0.0, 100.0) as u8),
        // Digio sends it masked; mask again so a full number can never be kept.
        aadhaar: mask_aadhaar(&text(aadhaar, "id_number")).unwrap_or_default(),
        gender: text(aadhaar, "gender"),
        dob: text(aadhaar, "dob"),
        image: Photo::from_base64(&text(aadhaar, "image")),
        father_name: text(aadhaar, "father_name"),
        current_address: Address {
            address: match text(address, "address") {
                a if a.is_empty() => text(aadhaar, "current_address"),
                a => a,
            },
            locality_or_post_office: text(address, "locality_or_post_office"),
            district_or_city: text(address, "district_or_city"),
            state: text(address, "state"),
            pincode: text(address, "pincode"),
        },
        pan: text(pan, "id_number").to_ascii_uppercase(),
        pan_name: text(pan, "name"),
        pan_match: None,
        name_match: None,
    }
}

/// `KYC_REQUEST_APPROVED` and `kyc.request.approved` alike become `kyc.request.approved`.
pub fn normalise_event(event: &str) -> String {
    event.trim().to_ascii_lowercase().replace(['_', '-'], ".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_a_full_response() {
        let v = json!({"id":"KID1","status":"approved","actions":[
            {"type":"digilocker","status":"success","details":{
                "aadhaar":{"id_number":"xxxxxxxx6355","gender":"M","image":"/9j/x","name":"Shobhit S","dob":"01/11/1995",
                    "current_address_details":{"address":"1 Road","locality_or_post_office":"L","district_or_city":"D","state":"S","pincode":450337}},
                "pan":{"id_number":"lbbps5478k","name":"SHOBHIT"}}},
            {"type":"selfie","face_match_result":{"match_result":"matched","confidence":"98.6"}}]});
        let r = result(&v);
        assert_eq!(r.state, ProviderState::Approved);
        let i = r.identity.unwrap();
        assert_eq!(
            (i.name.as_str(), i.face_match, i.aadhaar.as_str()),
            ("Shobhit S", 99, "xxxxxxxx6355")
        );
        assert_eq!(
            (
                i.pan.as_str(),
                i.current_address.pincode.as_str(),
                i.father_name.as_str()
            ),
            ("LBBPS5478K", "450337", "")
        );
    }

    #[test]
    fn tolerates_odd_shapes() {
        for v in [
            json!({}),
            json!({"status":"approved","actions":"nope"}),
            json!({"status":7,"actions":[1,null,{"type":5}]}),
        ] {
            let _ = result(&v);
        }
        let full = json!({"status":"approved","actions":[{"type":"digilocker","details":{"aadhaar":{"id_number":"234567890123"}}}]});
        assert_eq!(
            result(&full).identity.unwrap().aadhaar,
            "xxxxxxxx0123",
            "a full number is masked"
        );
        assert_eq!(state("TERMINATED").0, ProviderState::Rejected);
        assert_eq!(state("something_new").0, ProviderState::Requested);
        assert_eq!(
            normalise_event("KYC_REQUEST_APPROVED"),
            "kyc.request.approved"
        );
    }
}
