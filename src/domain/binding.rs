//! Identity binding: whether the identity a provider verified is the person the merchant
//! asked about. The PAN must be the same; the name must be similar enough, by a
//! comparison made for how Indian names are written on Aadhaar, PAN and in forms.
//!
//! The name comparison, in order:
//! 1. Both names are lower-cased; every character that is not a letter (or a combining
//!    mark, as Indic scripts use) separates words, so case, spacing and punctuation
//!    (`.`, `'`, `-`, `,`) never matter.
//! 2. Honorifics at the start (`Mr`, `Mrs`, `Ms`, `Dr`, `Shri`, `Smt`, `Kumari`, `Late`,
//!    …) are dropped; the same words later in a name are kept (`Priya Kumari`).
//! 3. Names written without spaces count as the same (`SanjayKumar` = `Sanjay Kumar`):
//!    score 100.
//! 4. Otherwise the words are paired, order free, best pairs first. A pair scores 100
//!    when the words are equal or one is an initial the other starts with (`S` and
//!    `Sanjay`), else their Jaro–Winkler similarity × 100.
//! 5. The name scores as its weakest pair, less 10 for every word of the longer name left
//!    unpaired (an extra middle name costs 10). Names that pair only through initials
//!    score at most 50: at least one whole word must agree.
//!
//! A verified identity has two names, the Aadhaar one and the PAN one; the requested
//! name is compared with each present, and the lower score counts.

use super::kyc::KycIdentity;

/// The least name similarity an approval needs unless configured otherwise.
pub const DEFAULT_NAME_MATCH_MIN: u8 = 80;

/// What a mismatch does to a KYC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMismatch {
    /// The KYC ends rejected.
    Reject,
    /// The KYC waits for an operator's verdict.
    Review,
}

impl OnMismatch {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "reject" => Some(Self::Reject),
            "review" => Some(Self::Review),
            _ => None,
        }
    }
}

/// How a verified identity compares with the requested one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityMatch {
    pub pan: bool,
    /// 0–100.
    pub name: u8,
}

impl IdentityMatch {
    pub fn of(requested_pan: &str, requested_name: &str, verified: &KycIdentity) -> Self {
        let pan = !verified.pan.trim().is_empty()
            && normalise_pan(requested_pan) == normalise_pan(&verified.pan);
        let name = [verified.name.as_str(), verified.pan_name.as_str()]
            .into_iter()
            .filter(|n| !n.trim().is_empty())
            .map(|n| name_score(requested_name, n))
            .min()
            .unwrap_or(0);
        Self { pan, name }
    }

    /// Why the identity is not the requested person, for the KYC's reason; `None` when
    /// it is. Names no identity data, only which part failed.
    pub fn mismatch(&self, name_min: u8) -> Option<String> {
        let pan = (!self.pan).then(|| "PAN differs from the requested one".to_owned());
        let name = (self.name < name_min)
            .then(|| format!("name similarity {}/100 is below {name_min}", self.name));
        match (pan, name) {
            (None, None) => None,
            (Some(p), None) | (None, Some(p)) => Some(format!("identity mismatch: {p}")),
            (Some(p), Some(n)) => Some(format!("identity mismatch: {p}; {n}")),
        }
    }

    /// Which parts failed, as a log field.
    pub fn failed_parts(&self, name_min: u8) -> &'static str {
        match (self.pan, self.name >= name_min) {
            (true, true) => "none",
            (false, true) => "PAN",
            (true, false) => "name",
            (false, false) => "PAN and name",
        }
    }
}

/// Upper case, no spaces anywhere.
pub fn normalise_pan(pan: &str) -> String {
    pan.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase()
}

const HONORIFICS: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "shri", "sri", "shree", "sh", "smt", "shrimati",
    "sushri", "kumari", "km", "kum", "master", "late", "er", "adv",
];

/// Penalty for each word of the longer name with no partner.
const UNPAIRED_COST: u8 = 10;
/// The most a name paired only through initials can score.
const INITIALS_ONLY_CAP: u8 = 50;

/// Similarity of two names, 0–100 (see the module's rules).
pub fn name_score(a: &str, b: &str) -> u8 {
    let (a, b) = (words(a), words(b));
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    if a.concat() == b.concat() {
        return 100;
    }
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let mut pairs: Vec<(f64, bool, usize, usize)> = Vec::with_capacity(short.len() * long.len());
    for (i, s) in short.iter().enumerate() {
        for (j, l) in long.iter().enumerate() {
            let (score, by_initial) = word_similarity(s, l);
            pairs.push((score, by_initial, i, j));
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
    let (mut short_used, mut long_used) = (vec![false; short.len()], vec![false; long.len()]);
    let mut weakest = 1.0_f64;
    let mut whole_word = false;
    for (score, by_initial, i, j) in pairs {
        if short_used[i] || long_used[j] {
            continue;
        }
        short_used[i] = true;
        long_used[j] = true;
        weakest = weakest.min(score);
        whole_word |= !by_initial;
    }
    let unpaired = (long.len() - short.len()).min(10) as u8;
    let score = ((weakest * 100.0).round() as u8).saturating_sub(unpaired * UNPAIRED_COST);
    if whole_word {
        score
    } else {
        score.min(INITIALS_ONLY_CAP)
    }
}

/// A pair's similarity (0–1) and whether it holds only through an initial.
fn word_similarity(a: &str, b: &str) -> (f64, bool) {
    let initial = |x: &str, y: &str| x.chars().count() == 1 && y.starts_with(x);
    if initial(a, b) || initial(b, a) {
        return (1.0, true);
    }
    if a == b {
        return (1.0, false);
    }
    (strsim::jaro_winkler(a, b), false)
}

/// The words of a name, lower case, punctuation gone, leading honorifics dropped.
fn words(name: &str) -> Vec<String> {
    let spaced: String = name
        .chars()
        .map(|c| {
            if c.is_alphabetic() || super::fields::is_combining_mark(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    let all: Vec<String> = spaced.split_whitespace().map(str::to_lowercase).collect();
    let titles = all
        .iter()
        .take_while(|w| HONORIFICS.contains(&w.as_str()))
        .count();
    // A name that is nothing but "honorifics" (someone called Kumari) keeps its words.
    if titles == all.len() {
        all
    } else {
        all[titles..].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pan_is_compared_exactly_after_case_and_spaces() {
        assert_eq!(normalise_pan(" engpk 1234l "), "ENGPK1234L");
        assert_ne!(normalise_pan("ENGPK1234L"), normalise_pan("ENGPK1234M"));
    }

    #[test]
    fn mismatch_reasons_name_the_part() {
        let ok = IdentityMatch {
            pan: true,
            name: 90,
        };
        assert_eq!(ok.mismatch(80), None);
        assert_eq!(
            IdentityMatch {
                pan: false,
                name: 90
            }
            .mismatch(80)
            .unwrap(),
            "identity mismatch: PAN differs from the requested one"
        );
        assert_eq!(
            IdentityMatch {
                pan: true,
                name: 42
            }
            .mismatch(80)
            .unwrap(),
            "identity mismatch: name similarity 42/100 is below 80"
        );
        assert_eq!(
            IdentityMatch {
                pan: false,
                name: 0
            }
            .mismatch(80)
            .unwrap(),
            "identity mismatch: PAN differs from the requested one; name similarity 0/100 is below 80"
        );
    }

    #[test]
    fn the_scores_the_readme_quotes() {
        let score = |other| name_score("Sanjay Kumar", other);
        assert_eq!(
            [
                score("Sanjai Kumar"),
                score("Sanjay Verma"),
                score("Priya Sharma")
            ],
            [93, 60, 47]
        );
        assert_eq!((score("Sanjay Ram Kumar"), score("S. K.")), (90, 50));
    }

    #[test]
    fn honorifics_go_only_from_the_front() {
        assert_eq!(words("Smt. Priya Kumari"), ["priya", "kumari"]);
        assert_eq!(words("Dr. Mrs. A.K. Sharma"), ["a", "k", "sharma"]);
        assert_eq!(words("Kumari"), ["kumari"]);
        assert_eq!(words("D'Souza-Rao"), ["d", "souza", "rao"]);
    }
}
