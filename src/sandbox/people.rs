//! The sandbox's DigiLocker: believable, synthetic records, the same every time for one
//! kid, and the other person a tester can make it return.

use crate::domain::kyc::{Address, KycIdentity, Photo};
use crate::provider::Applicant;
use base64::prelude::*;
use sha2::{Digest, Sha256};

/// A real JPEG (a drawn head-and-shoulders placeholder) used when no selfie was taken.
const PLACEHOLDER_SELFIE: &[u8] = include_bytes!("../../assets/sandbox-selfie.jpg");

const PLACES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "12 Civil Lines",
        "Court Road",
        "Saharanpur",
        "Uttar Pradesh",
        "247001",
    ),
    (
        "44 MG Road",
        "Shivaji Nagar",
        "Pune",
        "Maharashtra",
        "411005",
    ),
    (
        "7 Anna Salai",
        "Teynampet",
        "Chennai",
        "Tamil Nadu",
        "600018",
    ),
    (
        "201 Residency Road",
        "Shanthala Nagar",
        "Bengaluru",
        "Karnataka",
        "560025",
    ),
    (
        "19 Park Street",
        "Mullick Bazar",
        "Kolkata",
        "West Bengal",
        "700016",
    ),
    (
        "88 Ashram Road",
        "Navrangpura",
        "Ahmedabad",
        "Gujarat",
        "380009",
    ),
];

const FATHERS: &[&str] = &[
    "Ramesh Kumar",
    "Suresh Sharma",
    "Mahesh Rao",
    "",
    "Anil Verma",
    "Vijay Singh",
];

const OTHER_PEOPLE: &[&str] = &[
    "Ravi Shankar Iyer",
    "Meena Joshi",
    "Farhan Qureshi",
    "Lakshmi Narayanan",
    "Gurpreet Kaur Sandhu",
    "Debashish Banerjee",
];

/// Someone other than the applicant, the same every time for one kid: who DigiLocker
/// returns when a tester picks "DigiLocker returns a different person".
pub fn other_person_than(kid: &str) -> Applicant {
    let seed = Sha256::digest(format!("other/{kid}").as_bytes());
    let letter = |i: usize| char::from(b'A' + seed[i] % 26);
    let name = OTHER_PEOPLE[seed[0] as usize % OTHER_PEOPLE.len()];
    let surname = name.rsplit(' ').next().unwrap_or(name);
    let digits = u16::from_be_bytes([seed[1], seed[2]]) % 10_000;
    // The Q in the first three letters keeps it apart from any PAN the demo data uses.
    let pan = format!(
        "Q{}{}P{}{digits:04}{}",
        letter(3),
        letter(4),
        &surname[..1],
        letter(5)
    );
    Applicant {
        pan,
        name: name.into(),
    }
}

/// A believable DigiLocker record for the applicant, the same every time for one kid:
/// what the journey previews is what an approval returns.
pub fn synthetic_identity(
    kid: &str,
    applicant: &Applicant,
    face_match: u8,
    selfie: Option<&[u8]>,
) -> KycIdentity {
    let seed = Sha256::digest(kid.as_bytes());
    let pick = |i: usize, n: usize| seed[i] as usize % n;
    let (address, locality, city, state, pincode) = PLACES[pick(0, PLACES.len())];
    let last4 = u16::from_be_bytes([seed[1], seed[2]]) % 10_000;
    let day = 1 + pick(3, 28);
    let month = 1 + pick(4, 12);
    let year = 1960 + pick(5, 45);
    KycIdentity {
        name: applicant.name.clone(),
        face_match,
        aadhaar: format!("xxxxxxxx{last4:04}"),
        gender: ["M", "F"][pick(6, 2)].into(),
        dob: format!("{day:02}/{month:02}/{year}"),
        image: Photo::from_base64(&BASE64_STANDARD.encode(selfie.unwrap_or(PLACEHOLDER_SELFIE))),
        father_name: FATHERS[pick(7, FATHERS.len())].into(),
        current_address: Address {
            address: address.into(),
            locality_or_post_office: locality.into(),
            district_or_city: city.into(),
            state: state.into(),
            pincode: pincode.into(),
        },
        pan: applicant.pan.clone(),
        pan_name: applicant.name.to_uppercase(),
        pan_match: None,
        name_match: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_identity_is_stable_and_well_formed() {
        let a = Applicant {
            pan: "ENGPK1234L".into(),
            name: "Sanjay Kumar".into(),
        };
        let one = synthetic_identity("KID241124231727512Q2Z5XKW1YB9TA", &a, 97, None);
        let two = synthetic_identity("KID241124231727512Q2Z5XKW1YB9TA", &a, 97, None);
        assert!(one == two);
        assert!(one.aadhaar.starts_with("xxxxxxxx") && one.aadhaar.len() == 12);
        assert_eq!(one.dob.len(), 10);
        assert!(
            serde_json::to_string(&one.image)
                .unwrap()
                .starts_with(r#""/9j/"#),
            "a JPEG in base64 starts with /9j/"
        );
        assert_eq!(one.pan_name, "SANJAY KUMAR");
    }
}
