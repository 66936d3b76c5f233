//! Field encryption at rest, keyed lookup hashes, API-secret hashing and random ids.
//!
//! Values are sealed with AES-256-GCM under a random 96-bit nonce; the key id travels
//! with each value so keys can rotate (new values use the first key, old ones still
//! open with the key they name, and `paycc keys rotate` re-seals them). The column's
//! label and the row's own id are bound as associated data, so a value moved to another
//! column or another row does not open. Values sealed before rows were bound (the key
//! id's length byte without its top bit) open with the column alone until re-sealed.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::prelude::*;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("encryption key {0}: {1}")]
    BadKey(String, &'static str),
    #[error("a stored value is sealed with key id {0:?}, which is not configured")]
    UnknownKeyId(String),
    #[error(
        "a stored value failed authentication (wrong key, tampered data, or sealed for another row)"
    )]
    Unauthentic,
    #[error("a stored value is truncated")]
    Truncated,
    #[error(
        "PAYCC_HASH_KEY must be set when PAYCC_ENCRYPTION_KEY holds more than one key (without it the hash key follows the first data key and would change); `paycc keys derived-hash-key` prints the one in use"
    )]
    HashKeyNeeded,
}

struct DataKey {
    id: String,
    cipher: Aes256Gcm,
}

/// The server's keys. `Debug` never prints key material.
pub struct Keyring {
    keys: Vec<DataKey>,
    lookup: HmacSha256,
    pepper: HmacSha256,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "Keyring {{ key_ids: {ids:?} }}")
    }
}

/// What a hashing purpose is, so equal inputs for different purposes never collide.
#[derive(Clone, Copy)]
pub enum Lookup {
    Pan,
    Mobile,
    Token,
    Init,
    Csrf,
    Idempotency,
    /// The links of the audit trail's chain.
    Audit,
}

impl Keyring {
    /// `encryption` is `id:base64key[,id:base64key…]` (the id optional for a single key),
    /// each key 32 bytes; the first one seals new values. `hash_key` (base64, ≥ 32 bytes)
    /// keys lookups and secret hashes; without it they derive from the data key, so a
    /// second data key (a rotation) needs it set: see `derived_hash_key`.
    pub fn from_config(encryption: &str, hash_key: Option<&str>) -> Result<Self, CryptoError> {
        let parsed = parse_data_keys(encryption)?;
        let root = match hash_key {
            Some(b64) => {
                let raw = decode_key("hash", b64)?;
                if raw.len() < 32 {
                    return Err(CryptoError::BadKey(
                        "hash".into(),
                        "must be at least 32 bytes",
                    ));
                }
                raw
            }
            None if parsed.len() > 1 => return Err(CryptoError::HashKeyNeeded),
            None => derive(&parsed[0].1, HASH_KEY_LABEL),
        };
        let keys = parsed
            .into_iter()
            .map(|(id, raw)| {
                let key = Key::<Aes256Gcm>::try_from(raw.as_slice()).expect("length checked");
                DataKey {
                    cipher: Aes256Gcm::new(&key),
                    id,
                }
            })
            .collect();
        Ok(Self {
            keys,
            lookup: mac(&derive(&root, b"paycc/lookup")),
            pepper: mac(&derive(&root, b"paycc/api-secret")),
        })
    }

    /// The hash key a single data key stands in for when PAYCC_HASH_KEY is unset, in
    /// base64: set PAYCC_HASH_KEY to it before adding a second data key, and every stored
    /// hash and API secret keeps matching.
    pub fn derived_hash_key(encryption: &str) -> Result<String, CryptoError> {
        match parse_data_keys(encryption)?.as_slice() {
            [(_, only)] => Ok(BASE64_STANDARD.encode(derive(only, HASH_KEY_LABEL))),
            _ => Err(CryptoError::HashKeyNeeded),
        }
    }

    /// Names the lookup-hash key without revealing it: equal exactly for equal keys. Kept
    /// in the database so a start with another hash key is refused.
    pub fn hash_key_fingerprint(&self) -> Vec<u8> {
        let mut m = self.lookup.clone();
        m.update(b"paycc/hash-key-fingerprint");
        m.finalize().into_bytes().to_vec()
    }

    /// A fresh key line and hash key, for a development key file.
    pub fn generate_dev() -> (String, String) {
        let mut data = [0u8; 32];
        let mut hash = [0u8; 32];
        rand::rng().fill_bytes(&mut data);
        rand::rng().fill_bytes(&mut hash);
        (
            format!("dev1:{}", BASE64_STANDARD.encode(data)),
            BASE64_STANDARD.encode(hash),
        )
    }

    /// Seals `plaintext` as the value of column `context` in the row named `row` (a kid,
    /// a request's reference, a client id…), under the first key.
    pub fn seal(&self, context: &str, row: &str, plaintext: &[u8]) -> Vec<u8> {
        self.seal_with(&bound_to(context, row), true, plaintext)
    }

    /// Seals under the first key with `aad`, marked as bound to its row or not.
    fn seal_with(&self, aad: &[u8], row_bound: bool, plaintext: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let nonce = Nonce::generate();
        let ct = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + key.id.len() + nonce.len() + ct.len());
        out.extend_from_slice(&sealed_prefix(&key.id, row_bound));
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, context: &str, row: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let parts = SealedParts::of(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id.as_bytes() == parts.key_id)
            .ok_or_else(|| {
                CryptoError::UnknownKeyId(String::from_utf8_lossy(parts.key_id).into_owned())
            })?;
        let nonce = Nonce::try_from(parts.nonce).map_err(|_| CryptoError::Truncated)?;
        let aad = if parts.row_bound {
            bound_to(context, row)
        } else {
            context.as_bytes().to_vec()
        };
        key.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: parts.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Unauthentic)
    }

    /// `sealed` opened and sealed again under the first key, bound to its row; `None`
    /// when it already is.
    pub fn reseal(
        &self,
        context: &str,
        row: &str,
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>, CryptoError> {
        if sealed.starts_with(&self.current_prefix()) {
            return Ok(None);
        }
        let plain = self.open(context, row, sealed)?;
        Ok(Some(self.seal(context, row, &plain)))
    }

    /// The ids of the configured data keys, the sealing one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// How every value sealed now begins: values that begin otherwise need re-sealing.
    pub fn current_prefix(&self) -> Vec<u8> {
        sealed_prefix(&self.keys[0].id, true)
    }

    fn lookup_mac(&self, purpose: Lookup, parts: &[&str]) -> HmacSha256 {
        let mut m = self.lookup.clone();
        m.update(match purpose {
            Lookup::Pan => b"pan",
            Lookup::Mobile => b"mob",
            Lookup::Token => b"tok",
            Lookup::Init => b"ini",
            Lookup::Csrf => b"csr",
            Lookup::Idempotency => b"idm",
            Lookup::Audit => b"aud",
        });
        for p in parts {
            // Length-prefixed so ("ab","c") and ("a","bc") differ.
            m.update(&(p.len() as u32).to_be_bytes());
            m.update(p.as_bytes());
        }
        m
    }

    /// Keyed hash for equality lookups of personal data (never reversible without the key).
    pub fn lookup_hash(&self, purpose: Lookup, parts: &[&str]) -> Vec<u8> {
        self.lookup_mac(purpose, parts)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Constant-time check of presented values against a stored lookup hash.
    pub fn lookup_matches(&self, purpose: Lookup, parts: &[&str], stored: &[u8]) -> bool {
        self.lookup_mac(purpose, parts).verify_slice(stored).is_ok()
    }

    pub fn secret_hash(&self, secret: &str) -> Vec<u8> {
        let mut m = self.pepper.clone();
        m.update(secret.as_bytes());
        m.finalize().into_bytes().to_vec()
    }

    /// Constant-time check of a presented secret against its stored hash.
    pub fn secret_matches(&self, secret: &str, stored: &[u8]) -> bool {
        let mut m = self.pepper.clone();
        m.update(secret.as_bytes());
        m.verify_slice(stored).is_ok()
    }
}

const HASH_KEY_LABEL: &[u8] = b"paycc/hash-key";

/// Set in a sealed value's first byte (the key id's length, at most 32) when the value is
/// bound to its row.
const ROW_BOUND: u8 = 0x80;

/// How a value sealed under key `id` begins: its id's length byte, then the id.
pub fn sealed_prefix(id: &str, row_bound: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(1 + id.len());
    p.push(id.len() as u8 | if row_bound { ROW_BOUND } else { 0 });
    p.extend_from_slice(id.as_bytes());
    p
}

/// The associated data of a value: its column's label, a NUL (never in a label), and
/// its row's id.
fn bound_to(context: &str, row: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(context.len() + 1 + row.len());
    aad.extend_from_slice(context.as_bytes());
    aad.push(0);
    aad.extend_from_slice(row.as_bytes());
    aad
}

/// A sealed value taken apart.
struct SealedParts<'a> {
    key_id: &'a [u8],
    row_bound: bool,
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> SealedParts<'a> {
    fn of(sealed: &'a [u8]) -> Result<Self, CryptoError> {
        let (&first, rest) = sealed.split_first().ok_or(CryptoError::Truncated)?;
        let id_len = usize::from(first & !ROW_BOUND);
        if rest.len() < id_len + 12 + 16 {
            return Err(CryptoError::Truncated);
        }
        let (key_id, rest) = rest.split_at(id_len);
        let (nonce, ciphertext) = rest.split_at(12);
        Ok(Self {
            key_id,
            row_bound: first & ROW_BOUND != 0,
            nonce,
            ciphertext,
        })
    }
}

/// `(id, 32 raw bytes)` for each key of a PAYCC_ENCRYPTION_KEY value, at least one.
fn parse_data_keys(encryption: &str) -> Result<Vec<(String, Vec<u8>)>, CryptoError> {
    let mut keys = Vec::new();
    for spec in encryption
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (id, b64) = spec.split_once(':').unwrap_or(("", spec));
        let raw = decode_key(id, b64)?;
        if raw.len() != 32 {
            return Err(CryptoError::BadKey(
                id.into(),
                "must decode to exactly 32 bytes",
            ));
        }
        let id = if id.is_empty() {
            fingerprint(&raw)
        } else {
            id.to_owned()
        };
        let id_ok = id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(CryptoError::BadKey(
                id,
                "id must be 1-32 letters, digits, '-' or '_'",
            ));
        }
        keys.push((id, raw));
    }
    if keys.is_empty() {
        return Err(CryptoError::BadKey("(none)".into(), "no key given"));
    }
    Ok(keys)
}

fn decode_key(id: &str, b64: &str) -> Result<Vec<u8>, CryptoError> {
    BASE64_STANDARD
        .decode(b64.trim())
        .map_err(|_| CryptoError::BadKey(id.into(), "is not base64"))
}

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn derive(root: &[u8], label: &[u8]) -> Vec<u8> {
    let mut m = mac(root);
    m.update(label);
    m.finalize().into_bytes().to_vec()
}

fn fingerprint(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

/// `n` random upper-case letters and digits from a CSPRNG.
pub fn random_alnum(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| {
            // Rejection sampling keeps every symbol equally likely.
            loop {
                let b = (rng.next_u32() & 0x3f) as usize;
                if b < crate::domain::ids::ALNUM.len() {
                    return crate::domain::ids::ALNUM[b] as char;
                }
            }
        })
        .collect()
}

/// `n` random decimal digits from a CSPRNG.
pub fn random_digits(n: usize) -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// A new API secret: 256 random bits, URL-safe.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", BASE64_URL_SAFE_NO_PAD.encode(bytes))
}

/// Makes ring the TLS provider of outgoing HTTPS (as for the PostgreSQL driver); must
/// run before any HTTP client is built. A second call changes nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A new webhook secret in the form Standard Webhooks libraries take: `whsec_` and 32
/// random bytes in standard base64.
pub fn new_webhook_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", BASE64_STANDARD.encode(bytes))
}

/// The signatures one callback attempt carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSignatures {
    /// `Signature`: hex HMAC-SHA256 of the body, keyed by the secret exactly as shown to
    /// the merchant (what PHP's `hash_hmac('sha256', $body, $secret)` computes).
    pub signature: String,
    /// `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`,
    /// keyed by the bytes the secret encodes, as the Standard Webhooks spec has it.
    pub webhook_signature: String,
}

pub fn sign_callback(
    secret: &str,
    event_id: &str,
    timestamp: i64,
    body: &[u8],
) -> CallbackSignatures {
    let mut plain = mac(secret.as_bytes());
    plain.update(body);
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|b64| BASE64_STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut standard = mac(&key);
    standard.update(format!("{event_id}.{timestamp}.").as_bytes());
    standard.update(body);
    CallbackSignatures {
        signature: hex::encode(plain.finalize().into_bytes()),
        webhook_signature: format!(
            "v1,{}",
            BASE64_STANDARD.encode(standard.finalize().into_bytes())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        let (data, hash) = Keyring::generate_dev();
        Keyring::from_config(&data, Some(&hash)).unwrap()
    }

    #[test]
    fn seal_round_trip_binds_column_and_row() {
        let k = ring();
        let sealed = k.seal("customer", "row-1", b"ENGPK1234L");
        assert!(!sealed.windows(10).any(|w| w == b"ENGPK1234L"));
        assert_eq!(k.open("customer", "row-1", &sealed).unwrap(), b"ENGPK1234L");
        for (column, row) in [("kyc", "row-1"), ("customer", "row-2"), ("customer", "")] {
            assert!(matches!(
                k.open(column, row, &sealed),
                Err(CryptoError::Unauthentic)
            ));
        }
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open("customer", "row-1", &tampered).is_err());
        assert!(k.open("customer", "row-1", &sealed[..10]).is_err());
    }

    #[test]
    fn rotation_opens_old_values_and_reseals_them_bound() {
        let old = BASE64_STANDARD.encode([1u8; 32]);
        let new = BASE64_STANDARD.encode([2u8; 32]);
        let hash = BASE64_STANDARD.encode([3u8; 32]);
        let before = Keyring::from_config(&format!("old:{old}"), Some(&hash)).unwrap();
        let sealed = before.seal("c", "r", b"x");
        // As releases before row binding sealed it: the column alone as associated data.
        let unbound = before.seal_with(b"c", false, b"y");
        let after = Keyring::from_config(&format!("new:{new},old:{old}"), Some(&hash)).unwrap();
        assert_eq!(after.key_ids(), ["new", "old"]);
        assert_eq!(after.open("c", "r", &sealed).unwrap(), b"x");
        assert_eq!(after.open("c", "any row", &unbound).unwrap(), b"y");
        assert!(
            after
                .seal("c", "r", b"x")
                .starts_with(&after.current_prefix())
        );
        assert_eq!(after.current_prefix(), [0x83, b'n', b'e', b'w']);

        let resealed = after.reseal("c", "r", &sealed).unwrap().unwrap();
        assert!(resealed.starts_with(&after.current_prefix()));
        assert_eq!(after.open("c", "r", &resealed).unwrap(), b"x");
        assert_eq!(after.reseal("c", "r", &resealed).unwrap(), None);
        let rebound = after.reseal("c", "r2", &unbound).unwrap().unwrap();
        assert_eq!(after.open("c", "r2", &rebound).unwrap(), b"y");
        assert!(after.open("c", "r", &rebound).is_err());
        // A value of another row is not re-sealed for this one.
        assert!(after.reseal("c", "other", &sealed).is_err());
        assert!(matches!(
            Keyring::from_config(&format!("new:{new}"), Some(&hash))
                .unwrap()
                .open("c", "r", &sealed),
            Err(CryptoError::UnknownKeyId(id)) if id == "old"
        ));
        assert_eq!(before.secret_hash("s"), after.secret_hash("s"));
    }

    #[test]
    fn derived_keys_without_hash_key() {
        let one = BASE64_STANDARD.encode([9u8; 32]);
        let two = BASE64_STANDARD.encode([8u8; 32]);
        let alone = Keyring::from_config(&format!("a:{one}"), None).unwrap();
        // Two data keys and no hash key would tie the hash key to whichever is first.
        assert!(matches!(
            Keyring::from_config(&format!("b:{two},a:{one}"), None),
            Err(CryptoError::HashKeyNeeded)
        ));
        assert!(Keyring::from_config("short", None).is_err());
        // The derived hash key, set explicitly, keeps hashes stable across a rotation.
        let derived = Keyring::derived_hash_key(&format!("a:{one}")).unwrap();
        let rotated = Keyring::from_config(&format!("b:{two},a:{one}"), Some(&derived)).unwrap();
        assert_eq!(alone.secret_hash("s"), rotated.secret_hash("s"));
        assert_eq!(alone.hash_key_fingerprint(), rotated.hash_key_fingerprint());
        assert_ne!(alone.hash_key_fingerprint(), ring().hash_key_fingerprint());
    }

    #[test]
    fn secrets_and_tokens_compare() {
        let k = ring();
        let h = k.secret_hash("pcsk_abc");
        assert!(k.secret_matches("pcsk_abc", &h));
        assert!(!k.secret_matches("pcsk_abd", &h));
        let t = k.lookup_hash(Lookup::Token, &["GWT1"]);
        assert!(k.lookup_matches(Lookup::Token, &["GWT1"], &t));
        assert!(!k.lookup_matches(Lookup::Token, &["GWT2"], &t));
        assert!(!k.lookup_matches(Lookup::Csrf, &["GWT1"], &t));
        assert_eq!(random_alnum(14).len(), 14);
    }

    #[test]
    fn standard_webhooks_published_vector() {
        let signed = sign_callback(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signed.webhook_signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(signed.signature.len(), 64);
        assert!(new_webhook_secret().starts_with("whsec_"));
    }
}
