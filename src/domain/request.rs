//! Parsing a partner's request bodies into domain requests ("parse, don't validate").
//! Problems are collected for every field in the published order, so the first one
//! names the envelope message and all of them fill `errors`.

use super::fields::{Email, MerchantCode, Mobile, Pan, PersonName, RedirectUrl, Refusal};

/// A body field as it arrived, independent of the wire format.
#[derive(Debug, Clone)]
pub enum RawField {
    Text(String),
    /// A JSON number, in its textual form.
    Number(String),
    /// Anything else (object, array, boolean).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing(&'static str),
    /// Present but not text (an object, array, boolean, or a number where none is taken).
    NotText(&'static str),
    Invalid(&'static str, Refusal),
}

impl Problem {
    pub fn field(&self) -> &'static str {
        match self {
            Problem::Missing(f) | Problem::NotText(f) | Problem::Invalid(f, _) => f,
        }
    }
}

#[derive(Debug, Clone)]
pub struct InitKyc {
    pub pan: Pan,
    pub name: PersonName,
    pub email: Email,
    pub mobile: Mobile,
    pub merchant_code: MerchantCode,
    pub redirect_url: Option<RedirectUrl>,
}

#[derive(Debug, Default)]
pub struct RawInitKyc {
    pub pan: Option<RawField>,
    pub name: Option<RawField>,
    pub email: Option<RawField>,
    pub mobile: Option<RawField>,
    pub merchant_code: Option<RawField>,
    pub redirect_url: Option<RawField>,
}

#[derive(Debug, Clone)]
pub enum CustomerKey {
    Mobile(Mobile),
    Pan(Pan),
}

#[derive(Debug, Clone)]
pub struct CustomerQuery {
    pub merchant_code: MerchantCode,
    pub key: CustomerKey,
}

#[derive(Debug, Default)]
pub struct RawCustomerQuery {
    pub merchant_code: Option<RawField>,
    pub mobile: Option<RawField>,
    pub pan: Option<RawField>,
}

/// Absent, `null` and blank strings all count as "not given".
fn is_present(raw: &Option<RawField>) -> bool {
    match raw {
        None => false,
        Some(RawField::Text(t)) => !t.trim().is_empty(),
        Some(_) => true,
    }
}

/// Collects field problems while parsing.
#[derive(Default)]
struct Fields {
    problems: Vec<Problem>,
}

impl Fields {
    /// The text of a field, or `None` when absent, null or blank (a "missing" problem if
    /// `required`). `numbers` admits a JSON number as its digits.
    fn text(
        &mut self,
        name: &'static str,
        raw: Option<RawField>,
        required: bool,
        numbers: bool,
    ) -> Option<String> {
        if !is_present(&raw) {
            if required {
                self.problems.push(Problem::Missing(name));
            }
            return None;
        }
        match raw? {
            RawField::Text(t) => Some(t),
            RawField::Number(n) if numbers => Some(n),
            RawField::Number(_) | RawField::Other => {
                self.problems.push(Problem::NotText(name));
                None
            }
        }
    }

    fn parse<T>(
        &mut self,
        name: &'static str,
        raw: Option<RawField>,
        required: bool,
        numbers: bool,
        max_len: usize,
        parser: fn(&str) -> Result<T, Refusal>,
    ) -> Option<T> {
        let text = self.text(name, raw, required, numbers)?;
        // Checked on the trimmed text, before any normalisation could shorten it.
        if text.trim().chars().count() > max_len {
            self.problems
                .push(Problem::Invalid(name, Refusal(too_long(name))));
            return None;
        }
        parser(&text)
            .map_err(|r| self.problems.push(Problem::Invalid(name, r)))
            .ok()
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, Vec<Problem>> {
        match value {
            Some(v) if self.problems.is_empty() => Ok(v),
            _ => Err(self.problems),
        }
    }
}

fn too_long(field: &str) -> &'static str {
    match field {
        "pan" => "The pan field may not be longer than 11 characters.",
        "mobile" => "The mobile field may not be longer than 10 characters.",
        "merchantCode" => "The merchantCode field may not be longer than 20 characters.",
        "redirectUrl" => "The redirectUrl field may not be longer than 300 characters.",
        "name" => "The name field may not be longer than 200 characters.",
        _ => "The email field may not be longer than 200 characters.",
    }
}

impl InitKyc {
    pub fn parse(raw: RawInitKyc) -> Result<Self, Vec<Problem>> {
        let mut f = Fields::default();
        let pan = f.parse("pan", raw.pan, true, false, Pan::MAX_LEN, Pan::parse);
        let name = f.parse(
            "name",
            raw.name,
            true,
            false,
            PersonName::MAX_LEN,
            PersonName::parse,
        );
        let email = f.parse(
            "email",
            raw.email,
            true,
            false,
            Email::MAX_LEN,
            Email::parse,
        );
        // "+91 98765 43210" is longer than 10 but legitimate; the parser bounds it.
        let mobile = f.parse("mobile", raw.mobile, true, true, 16, Mobile::parse);
        let merchant_code = f.parse(
            "merchantCode",
            raw.merchant_code,
            true,
            false,
            MerchantCode::MAX_LEN,
            MerchantCode::parse,
        );
        let redirect_url = f.parse(
            "redirectUrl",
            raw.redirect_url,
            false,
            false,
            RedirectUrl::MAX_LEN,
            RedirectUrl::parse,
        );
        let all = (|| {
            Some(InitKyc {
                pan: pan?,
                name: name?,
                email: email?,
                mobile: mobile?,
                merchant_code: merchant_code?,
                redirect_url,
            })
        })();
        f.finish(all)
    }
}

impl CustomerQuery {
    /// `merchantCode` and one of `mobile` or `pan`; with both, mobile is used (the
    /// published examples look customers up by mobile).
    pub fn parse(raw: RawCustomerQuery) -> Result<Self, Vec<Problem>> {
        let mut f = Fields::default();
        let merchant_code = f.parse(
            "merchantCode",
            raw.merchant_code,
            true,
            false,
            MerchantCode::MAX_LEN,
            MerchantCode::parse,
        );
        let key = if is_present(&raw.mobile) {
            f.parse("mobile", raw.mobile, true, true, 16, Mobile::parse)
                .map(CustomerKey::Mobile)
        } else if is_present(&raw.pan) {
            f.parse("pan", raw.pan, true, false, Pan::MAX_LEN, Pan::parse)
                .map(CustomerKey::Pan)
        } else {
            f.problems.push(Problem::Missing("mobile"));
            None
        };
        let all = (|| {
            Some(CustomerQuery {
                merchant_code: merchant_code?,
                key: key?,
            })
        })();
        f.finish(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<RawField> {
        Some(RawField::Text(s.into()))
    }

    fn valid() -> RawInitKyc {
        RawInitKyc {
            pan: t("ENGPK1234L"),
            name: t("Sanjay Kumar"),
            email: t("s@example.com"),
            mobile: t("6393712345"),
            merchant_code: t("MID693000001"),
            redirect_url: None,
        }
    }

    #[test]
    fn parses_a_valid_body() {
        assert!(InitKyc::parse(valid()).is_ok());
        let mut r = valid();
        r.mobile = Some(RawField::Number("6393712345".into()));
        assert_eq!(InitKyc::parse(r).unwrap().mobile.as_str(), "6393712345");
    }

    #[test]
    fn problems_in_published_order() {
        let mut r = valid();
        r.email = t("nope");
        r.name = t("   ");
        let p = InitKyc::parse(r).unwrap_err();
        assert_eq!(p[0], Problem::Missing("name"));
        assert_eq!(p[1].field(), "email");
    }

    #[test]
    fn customer_query_needs_a_key() {
        let q = RawCustomerQuery {
            merchant_code: t("MID1"),
            mobile: t(""),
            pan: None,
        };
        assert_eq!(
            CustomerQuery::parse(q).unwrap_err(),
            vec![Problem::Missing("mobile")]
        );
        let q = RawCustomerQuery {
            merchant_code: t("MID1"),
            mobile: None,
            pan: t("engpk1234l"),
        };
        assert!(matches!(
            CustomerQuery::parse(q).unwrap().key,
            CustomerKey::Pan(_)
        ));
    }
}
