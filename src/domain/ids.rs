//! Identifiers: the provider-style KYC id and the merchant-facing customer id.

use time::{OffsetDateTime, UtcOffset, macros::format_description};

pub const ALNUM: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// India Standard Time, in which the provider stamps its ids.
pub const IST: UtcOffset = match UtcOffset::from_hms(5, 30, 0) {
    Ok(o) => o,
    Err(_) => panic!("IST is a valid offset"),
};

/// `PREFIX` + `yyMMddHHmmssSSS` in IST + the given upper-case letters/digits, as the
/// provider forms KID/GWT/REF ids.
pub fn provider_style_id(prefix: &str, at: OffsetDateTime, tail: &str) -> String {
    let stamp = at
        .to_offset(IST)
        .format(format_description!(
            "[year repr:last_two][month][day][hour][minute][second][subsecond digits:3]"
        ))
        .expect("a fixed numeric format always formats");
    format!("{prefix}{stamp}{tail}")
}

/// Whether `s` is one of our KYC ids: `^KID\d{15}[A-Z0-9]{14}$`.
pub fn is_kid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 32
        && b.starts_with(b"KID")
        && b[3..18].iter().all(u8::is_ascii_digit)
        && b[18..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn kid_has_ist_stamp() {
        let kid = provider_style_id(
            "KID",
            datetime!(2024-11-24 17:57:27.512 UTC),
            "Q2Z5XKW1YB9TAB",
        );
        assert_eq!(kid, "KID241124232727512Q2Z5XKW1YB9TAB");
        assert!(is_kid(&kid));
        assert!(!is_kid("KID24112423272751"));
        assert!(!is_kid(&kid.to_lowercase()));
    }
}
