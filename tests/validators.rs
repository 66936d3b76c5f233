//! Property tests for the field parsers: they never panic, accept every valid form,
//! normalise to one canonical value, and never echo the input in a refusal.

use paycc::domain::fields::{Email, MerchantCode, Mobile, Pan, PersonName, RedirectUrl};
use proptest::prelude::*;

fn pan_strategy() -> impl Strategy<Value = String> {
    ("[A-Z]{3}", "[A-Z]", "[0-9]{4}", "[A-Z]").prop_map(|(a, b, d, z)| format!("{a}P{b}{d}{z}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_and_never_echo(s in any::<String>()) {
        for refusal in [
            Pan::parse(&s).err(),
            PersonName::parse(&s).err(),
            Email::parse(&s).err(),
            Mobile::parse(&s).err(),
            MerchantCode::parse(&s).err(),
            RedirectUrl::parse(&s).err(),
        ].into_iter().flatten() {
            prop_assert!(s.trim().len() < 3 || !refusal.0.contains(s.trim()), "refusal echoes input");
        }
    }

    #[test]
    fn individual_pans_parse_in_any_case_and_padding(p in pan_strategy(), pad in "[ ]{0,2}", lower in any::<bool>()) {
        let written = if lower { p.to_lowercase() } else { p.clone() };
        let parsed = Pan::parse(&format!("{pad}{written}{pad}")).unwrap();
        prop_assert_eq!(parsed.as_str(), p.as_str());
    }

    #[test]
    fn non_individual_pans_are_refused(p in pan_strategy(), holder in "[ABCFGHJLT]") {
        let other = format!("{}{holder}{}", &p[..3], &p[4..]);
        prop_assert!(Pan::parse(&other).is_err());
    }

    #[test]
    fn mobiles_in_every_written_form_give_ten_digits(
        first in "[6-9]", rest in "[0-9]{9}",
        prefix in prop::sample::select(vec!["", "+91", "+91 ", "91", "0", "+91-"]),
        dash in any::<bool>(),
    ) {
        let digits = format!("{first}{rest}");
        let body = if dash { format!("{}-{}", &digits[..5], &digits[5..]) } else { digits.clone() };
        let written = format!("{prefix}{body}");
        let parsed = Mobile::parse(&written).unwrap();
        prop_assert_eq!(parsed.as_str(), digits.as_str());
    }

    #[test]
    fn mobiles_starting_below_six_are_refused(first in "[0-5]", rest in "[0-9]{9}") {
        let number = format!("{first}{rest}");
        prop_assert!(Mobile::parse(&number).is_err());
    }

    #[test]
    fn names_fold_spaces(words in prop::collection::vec("[A-Za-z]{1,12}", 1..5), gaps in prop::collection::vec("[ ]{1,4}", 5)) {
        let spaced: String = words.iter().zip(&gaps).map(|(w, g)| format!("{w}{g}")).collect();
        let parsed = PersonName::parse(&format!("  {spaced}")).unwrap();
        prop_assert_eq!(parsed.as_str(), words.join(" "));
    }

    #[test]
    fn emails_keep_local_case_and_lower_the_domain(local in "[A-Za-z0-9._%+-]{1,20}", host in "[A-Za-z0-9-]{1,15}", tld in "[A-Za-z]{2,6}") {
        let parsed = Email::parse(&format!("{local}@{host}.{tld}")).unwrap();
        let expected = format!("{local}@{}.{}", host.to_lowercase(), tld.to_lowercase());
        prop_assert_eq!(parsed.as_str(), expected.as_str());
    }
}
