//! The fields a partner sends, parsed once into types that cannot hold an invalid value.
//! Each parser takes the raw text and either returns the normalised value or says why
//! not, without ever repeating the value (it may be personal data).

use std::fmt;

/// Why a field was refused; the sentence never contains the submitted value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub &'static str);

macro_rules! text_newtype {
    ($name:ident) => {
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        // Identity data must never reach a log line through `{:?}`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(***)"))
            }
        }
    };
}

text_newtype!(Pan);
text_newtype!(PersonName);
text_newtype!(Email);
text_newtype!(Mobile);

impl Pan {
    pub const MAX_LEN: usize = 11;

    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        let value = raw.trim().to_ascii_uppercase();
        let b = value.as_bytes();
        let shape = b.len() == 10
            && b[..5].iter().all(u8::is_ascii_uppercase)
            && b[5..9].iter().all(u8::is_ascii_digit)
            && b[9].is_ascii_uppercase();
        if !shape {
            return Err(Refusal(
                "The pan field must be 5 letters, 4 digits and a letter (e.g. ABCPE1234F).",
            ));
        }
        if b[3] != b'P' {
            return Err(Refusal(
                "The pan field must be an individual's PAN (4th letter P).",
            ));
        }
        Ok(Self(value))
    }

    /// `ABCPE1234F` → `XXXXXX234F`, for places that need to show which PAN without showing it.
    pub fn masked(&self) -> String {
        format!("XXXXXX{}", &self.0[6..])
    }
}

impl PersonName {
    pub const MAX_LEN: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        let folded = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if folded.chars().count() > Self::MAX_LEN {
            return Err(Refusal(
                "The name field may not be longer than 200 characters.",
            ));
        }
        let allowed = |c: char| {
            c.is_alphabetic() || c == ' ' || c == '.' || c == '\'' || c == '-'
            // Indic scripts write vowel signs and viramas as combining marks.
            || is_combining_mark(c)
        };
        if folded.is_empty()
            || !folded.chars().all(allowed)
            || !folded.chars().any(char::is_alphabetic)
        {
            return Err(Refusal(
                "The name field may contain only letters, spaces, dots, apostrophes and hyphens.",
            ));
        }
        Ok(Self(folded))
    }

    /// First, middle and last name the way Indian records split them: the first word, the
    /// last word, and whatever stands between.
    pub fn split(&self) -> (String, Option<String>, Option<String>) {
        split_name(&self.0)
    }
}

pub fn split_name(name: &str) -> (String, Option<String>, Option<String>) {
    let words: Vec<&str> = name.split_whitespace().collect();
    match words.as_slice() {
        [] => (String::new(), None, None),
        [only] => ((*only).to_owned(), None, None),
        [first, last] => ((*first).to_owned(), None, Some((*last).to_owned())),
        [first, middle @ .., last] => (
            (*first).to_owned(),
            Some(middle.join(" ")),
            Some((*last).to_owned()),
        ),
    }
}

pub(super) fn is_combining_mark(c: char) -> bool {
    // Devanagari through Malayalam blocks, plus the generic combining diacritics.
    matches!(c as u32, 0x0300..=0x036F | 0x0900..=0x0D7F) && !c.is_alphabetic()
}

impl Email {
    pub const MAX_LEN: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        const BAD: Refusal = Refusal("The email field must be a valid email address.");
        let value = raw.trim();
        if value.chars().count() > Self::MAX_LEN {
            return Err(Refusal(
                "The email field may not be longer than 200 characters.",
            ));
        }
        let (local, domain) = value.split_once('@').ok_or(BAD)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        let no_space = !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if local.is_empty() || !domain_ok || !no_space {
            return Err(BAD);
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }
}

impl Mobile {
    pub const MAX_LEN: usize = 10;

    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        const BAD: Refusal =
            Refusal("The mobile field must be a 10-digit Indian mobile number starting with 6-9.");
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .collect();
        // Only a 10-digit remainder counts, so "09876543210" and "919876543210" both work
        // while a 10-digit number that itself starts with 91 is left alone.
        let digits = ["+91", "91", "0"]
            .iter()
            .filter_map(|p| compact.strip_prefix(p))
            .find(|rest| rest.len() == 10)
            .unwrap_or(&compact);
        let b = digits.as_bytes();
        if b.len() != 10 || !b.iter().all(u8::is_ascii_digit) || !(b'6'..=b'9').contains(&b[0]) {
            return Err(BAD);
        }
        Ok(Self(digits.to_owned()))
    }

    /// `9876543210` → `XXXXXX3210`.
    pub fn masked(&self) -> String {
        format!("XXXXXX{}", &self.0[6..])
    }
}

/// A merchant code as sent; whether it exists and belongs to the caller is the store's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantCode(String);

impl MerchantCode {
    pub const MAX_LEN: usize = 20;

    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        let value = raw.trim();
        let ok = value.len() <= Self::MAX_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(Refusal(
                "The merchantCode field must be at most 20 letters, digits, '_' or '-'.",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An `Idempotency-Key` header value: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Takes the header's raw bytes: anything but visible ASCII is refused.
    pub fn parse(raw: &[u8]) -> Result<Self, Refusal> {
        let ok = (1..=255).contains(&raw.len()) && raw.iter().all(u8::is_ascii_graphic);
        if !ok {
            return Err(Refusal(
                "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
            ));
        }
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the customer lands after the journey: an absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUrl(String);

impl RedirectUrl {
    pub const MAX_LEN: usize = 300;

    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        const BAD: Refusal = Refusal(
            "The redirectUrl field must be an http or https URL of at most 300 characters.",
        );
        let value = raw.trim();
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .ok_or(BAD)?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let clean = value.len() <= Self::MAX_LEN
            && !host.is_empty()
            && !host.contains('@')
            && value.bytes().all(|b| b.is_ascii_graphic());
        if !clean {
            return Err(BAD);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `scheme://host[:port]`, for allowing the redirect in a page's policy.
    pub fn origin(&self) -> &str {
        let after_scheme = self.0.find("://").map_or(0, |i| i + 3);
        let end = self.0[after_scheme..]
            .find(['/', '?', '#'])
            .map_or(self.0.len(), |i| after_scheme + i);
        &self.0[..end]
    }

    /// The URL with `kid` and `status` appended as query parameters, before any fragment.
    pub fn with_outcome(&self, kid: &str, status: &str) -> String {
        let (base, fragment) = match self.0.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (self.0.as_str(), None),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        let mut out = format!("{base}{sep}kid={kid}&status={status}");
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        out
    }
}

/// Where an API client's callbacks go: an absolute http(s) URL without credentials or
/// fragment (the signature, not the URL, proves who is calling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl(String);

impl CallbackUrl {
    pub const MAX_LEN: usize = 2000;

    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        const BAD: Refusal = Refusal(
            "The callback URL must be an absolute http or https URL of at most 2000 characters, without user name, password or fragment.",
        );
        let value = raw.trim();
        let url = url::Url::parse(value).map_err(|_| BAD)?;
        let fine = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some_and(|h| !h.is_empty())
            && url.username().is_empty()
            && url.password().is_none()
            && url.fragment().is_none()
            && url.as_str().len() <= Self::MAX_LEN;
        if fine { Ok(Self(url.into())) } else { Err(BAD) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_normalises_and_requires_individual() {
        assert_eq!(Pan::parse(" engpk1234l ").unwrap().as_str(), "ENGPK1234L");
        assert!(Pan::parse("ENGCK1234L").is_err());
        assert!(Pan::parse("ENGPK12345").is_err());
        assert_eq!(Pan::parse("ENGPK1234L").unwrap().masked(), "XXXXXX234L");
    }

    #[test]
    fn mobile_prefixes() {
        for raw in [
            "9876543210",
            "+91 98765-43210",
            "919876543210",
            "09876543210",
        ] {
            assert_eq!(Mobile::parse(raw).unwrap().as_str(), "9876543210", "{raw}");
        }
        assert_eq!(Mobile::parse("9198765432").unwrap().as_str(), "9198765432");
        assert!(Mobile::parse("5876543210").is_err());
        assert!(Mobile::parse("98765").is_err());
    }

    #[test]
    fn names_fold_and_split() {
        let n = PersonName::parse("  Sanjay   Kumar  Rao ").unwrap();
        assert_eq!(n.as_str(), "Sanjay Kumar Rao");
        assert_eq!(
            n.split(),
            ("Sanjay".into(), Some("Kumar".into()), Some("Rao".into()))
        );
        assert!(PersonName::parse("संजय कुमार").is_ok());
        assert!(PersonName::parse("R2D2").is_err());
        assert!(PersonName::parse("...").is_err());
    }

    #[test]
    fn email_lowercases_domain_only() {
        assert_eq!(
            Email::parse("Ku.Mar@Example.COM").unwrap().as_str(),
            "Ku.Mar@example.com"
        );
        for bad in ["a@b", "@b.com", "a b@c.com", "a@@b.com", "a@b..com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_appends_outcome() {
        let u = RedirectUrl::parse("https://shop.example/done?x=1#top").unwrap();
        assert_eq!(
            u.with_outcome("KID1", "approved"),
            "https://shop.example/done?x=1&kid=KID1&status=approved#top"
        );
        assert_eq!(u.origin(), "https://shop.example");
        assert_eq!(
            RedirectUrl::parse("http://a.example:8080")
                .unwrap()
                .origin(),
            "http://a.example:8080"
        );
        assert!(RedirectUrl::parse("javascript:alert(1)").is_err());
        assert!(RedirectUrl::parse("https://user@evil.example/").is_err());
    }

    #[test]
    fn callback_urls() {
        assert_eq!(
            CallbackUrl::parse(" https://merchant.example/hooks/kyc?x=1 ")
                .unwrap()
                .as_str(),
            "https://merchant.example/hooks/kyc?x=1"
        );
        assert_eq!(
            CallbackUrl::parse("http://127.0.0.1:8080")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/"
        );
        for bad in [
            "",
            "merchant.example/hook",
            "ftp://merchant.example/",
            "https://user:pw@merchant.example/",
            "https://merchant.example/#frag",
            "javascript:alert(1)",
        ] {
            assert!(CallbackUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(CallbackUrl::parse(&format!("https://m.example/{}", "a".repeat(2000))).is_err());
    }
}
