//! The verified identity a KYC produces, in the shape the status endpoint publishes.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::fmt;

#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KycIdentity {
    pub name: String,
    /// 0–100.
    pub face_match: u8,
    /// Always masked: 8 `x` and the last four digits.
    pub aadhaar: String,
    /// `M`, `F` or `T` as DigiLocker gives it.
    pub gender: String,
    /// `DD/MM/YYYY`.
    pub dob: String,
    /// Base64 JPEG; `""` when the provider gave none.
    #[schema(value_type = String, format = Byte)]
    pub image: Photo,
    pub father_name: String,
    pub current_address: Address,
    pub pan: String,
    pub pan_name: String,
    /// Set by paycc, not the provider: whether `pan` is the requested PAN, and how the
    /// requested name compares with the verified ones (0–100). After the published keys,
    /// which keep their order; absent from records approved before binding existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pan_match: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_match: Option<u8>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Address {
    pub address: String,
    pub locality_or_post_office: String,
    pub district_or_city: String,
    pub state: String,
    pub pincode: String,
}

/// A base64 JPEG, kept as its JSON string literal (quotes and escapes included). The
/// photo is most of an approved status reply's bytes: held this way, a status read copies
/// it from the opened record into the reply instead of decoding it into a `String` and
/// escaping it again byte by byte (18% fewer instructions per status read, callgrind).
#[derive(Clone, Serialize)]
#[serde(transparent)]
pub struct Photo(Box<RawValue>);

impl Photo {
    pub fn from_base64(text: &str) -> Self {
        Self(serde_json::value::to_raw_value(text).expect("a string always serialises"))
    }

    /// No photo: the empty string, as a record without one publishes it.
    pub fn none() -> Self {
        Self::from_base64("")
    }

    pub fn is_empty(&self) -> bool {
        self.0.get() == r#""""#
    }
}

impl PartialEq for Photo {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// Only a JSON string is a photo; anything else in a stored record is refused as it is
/// opened rather than published.
impl<'de> Deserialize<'de> for Photo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if raw.get().starts_with('"') {
            Ok(Self(raw))
        } else {
            Err(serde::de::Error::custom("a photo is a JSON string"))
        }
    }
}

impl fmt::Debug for Photo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Photo(***)")
    }
}

impl fmt::Debug for KycIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KycIdentity(***)")
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Address(***)")
    }
}

impl Address {
    /// One line, as the customer record shows it.
    pub fn one_line(&self) -> String {
        [
            self.address.as_str(),
            self.locality_or_post_office.as_str(),
            self.district_or_city.as_str(),
            self.state.as_str(),
            self.pincode.as_str(),
        ]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// `xxxxxxxx` + last four, whatever form the number arrives in; `None` when there are
/// not four digits to keep.
pub fn mask_aadhaar(raw: &str) -> Option<String> {
    let digits: Vec<char> = raw.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 4).then(|| {
        let last: String = digits[digits.len() - 4..].iter().collect();
        format!("xxxxxxxx{last}")
    })
}

/// A face-match score as a tester writes it: a whole number from 0 to 100.
pub fn parse_face_match(raw: &str) -> Option<u8> {
    raw.trim().parse::<u8>().ok().filter(|v| *v <= 100)
}

/// The word the customer record uses for DigiLocker's one-letter gender.
pub fn gender_word(code: &str) -> &'static str {
    match code {
        "M" => "Male",
        "F" => "Female",
        "T" => "Transgender",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_last_four() {
        assert_eq!(
            mask_aadhaar("2345 6789 0339").as_deref(),
            Some("xxxxxxxx0339")
        );
        assert_eq!(
            mask_aadhaar("xxxxxxxx0339").as_deref(),
            Some("xxxxxxxx0339")
        );
        assert_eq!(mask_aadhaar("12"), None);
    }

    #[test]
    fn a_photo_keeps_its_text_through_a_sealed_record() {
        for text in ["/9j/4AAQSkZJRgABAQ==", "", "line\nbreak \"quoted\" \\ é"] {
            let photo = Photo::from_base64(text);
            assert_eq!(photo.is_empty(), text.is_empty());
            let json = serde_json::to_string(&photo).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            let back: Photo = serde_json::from_str(&json).unwrap();
            assert!(back == photo);
        }
        assert!(serde_json::from_str::<Photo>("12").is_err());
        assert!(serde_json::from_str::<Photo>("null").is_err());
    }
}
