//! Each record decoded once, by column name, from either database's rows.

use crate::domain::sealed::customer_row;
use crate::store::db::{Columns, DecodeResult, Row};
use crate::store::*;

/// The columns `kyc_record` reads, for a request `k` joined to its merchant `m`, the
/// merchant's client `a` and its customer `c`.
pub const KYC_COLUMNS: &str =
    "k.kid, k.reference, m.code AS merchant_code, m.name AS merchant_name,
    m.active AS merchant_active, a.client_id, m.client_pk, c.cust_id, k.provider, k.state, k.reason,
    k.url_sealed, k.token_hash, k.redirect_url, k.result_sealed, k.submitted_sealed, k.created_at,
    k.updated_at, k.expires_at, k.checked_at, k.purged_at";

pub fn kyc_record(r: &dyn Row) -> DecodeResult<KycRecord> {
    Ok(KycRecord {
        kid: r.string("kid")?,
        reference: r.string("reference")?,
        merchant_code: r.string("merchant_code")?,
        merchant_name: r.string("merchant_name")?,
        merchant_active: r.flag("merchant_active")?,
        client_id: r.string("client_id")?,
        cust_id: r.string("cust_id")?,
        provider: r.string("provider")?,
        state: r.state("state")?,
        reason: r.text("reason")?,
        url_sealed: r.bytes("url_sealed")?,
        token_hash: r.bytes("token_hash")?,
        redirect_url: r.text("redirect_url")?,
        result_sealed: r.bytes("result_sealed")?,
        submitted_sealed: r.bytes("submitted_sealed")?,
        created_at: r.at("created_at")?,
        updated_at: r.at("updated_at")?,
        expires_at: r.at("expires_at")?,
        checked_at: r.at_opt("checked_at")?,
        purged_at: r.at_opt("purged_at")?,
    })
}

/// A request with the pk of the client whose merchant it belongs to.
pub fn owned_kyc_record(r: &dyn Row) -> DecodeResult<(ClientPk, KycRecord)> {
    Ok((ClientPk(r.i64("client_pk")?), kyc_record(r)?))
}

/// The columns `merchant_record` reads, for a merchant `m` and its client `a`.
pub const MERCHANT_COLUMNS: &str = "m.pk, m.code, m.name, m.active, a.client_id, m.client_pk";

pub fn merchant_record(r: &dyn Row) -> DecodeResult<MerchantRecord> {
    Ok(MerchantRecord {
        pk: MerchantPk(r.i64("pk")?),
        code: r.string("code")?,
        name: r.string("name")?,
        active: r.flag("active")?,
        client_id: r.string("client_id")?,
    })
}

/// A merchant keyed by the pk of its client and its code.
pub fn keyed_merchant_record(r: &dyn Row) -> DecodeResult<((ClientPk, String), MerchantRecord)> {
    let merchant = merchant_record(r)?;
    Ok((
        (ClientPk(r.i64("client_pk")?), merchant.code.clone()),
        merchant,
    ))
}

pub const CLIENT_COLUMNS: &str =
    "a.pk, a.client_id, a.name, a.secret_hash, a.active, a.rate_per_second, a.rate_burst";

pub fn client_record(r: &dyn Row) -> DecodeResult<ClientRecord> {
    Ok(ClientRecord {
        pk: ClientPk(r.i64("pk")?),
        client_id: r.string("client_id")?,
        name: r.string("name")?,
        secret_hash: r.blob("secret_hash")?,
        active: r.flag("active")?,
        rate_limit: match (r.int("rate_per_second")?, r.int("rate_burst")?) {
            (Some(per_second), Some(burst)) => Some(RateLimit {
                per_second: u32::try_from(per_second)?,
                burst: u32::try_from(burst)?,
            }),
            _ => None,
        },
    })
}

pub fn keyed_client_record(r: &dyn Row) -> DecodeResult<(String, ClientRecord)> {
    let client = client_record(r)?;
    Ok((client.client_id.clone(), client))
}

pub fn client_callback(r: &dyn Row) -> DecodeResult<ClientCallback> {
    Ok(ClientCallback {
        url: r.text("callback_url")?,
        secret_sealed: r.bytes("callback_secret_sealed")?,
    })
}

/// The columns `due_callback` reads, for an event `e` and its client `a`.
pub const DUE_CALLBACK_COLUMNS: &str = "e.pk, e.event_id, e.kid, e.cust_id, e.merchant_code, e.state, e.attempts, a.client_id, a.callback_url, a.callback_secret_sealed";

pub fn due_callback(r: &dyn Row) -> DecodeResult<DueCallback> {
    Ok(DueCallback {
        pk: EventPk(r.i64("pk")?),
        event_id: r.string("event_id")?,
        kid: r.string("kid")?,
        cust_id: r.string("cust_id")?,
        merchant_code: r.string("merchant_code")?,
        state: r.state("state")?,
        attempts: r.i64("attempts")?,
        client_id: r.string("client_id")?,
        callback: client_callback(r)?,
    })
}

pub fn callback_record(r: &dyn Row) -> DecodeResult<CallbackRecord> {
    Ok(CallbackRecord {
        event_id: r.string("event_id")?,
        kid: r.string("kid")?,
        state: r.state("state")?,
        status: r.string("status")?,
        attempts: r.i64("attempts")?,
        next_attempt_at: r.at("next_attempt_at")?,
        last_error: r.text("last_error")?,
        created_at: r.at("created_at")?,
        delivered_at: r.at_opt("delivered_at")?,
    })
}

pub fn sandbox_session(r: &dyn Row) -> DecodeResult<SandboxSession> {
    Ok(SandboxSession {
        step: r.string("step")?,
        outcome: r.text("outcome")?,
        face_match: r.int("face_match")?.and_then(|f| u8::try_from(f).ok()),
        selfie_sealed: r.bytes("selfie_sealed")?,
        person_sealed: r.bytes("person_sealed")?,
    })
}

pub fn latest_kyc(r: &dyn Row) -> DecodeResult<LatestKyc> {
    Ok(LatestKyc {
        kid: r.string("kid")?,
        state: r.state("state")?,
        url_sealed: r.bytes("url_sealed")?,
        expires_at: r.at("expires_at")?,
    })
}

pub fn int(r: &dyn Row) -> DecodeResult<i64> {
    r.i64("n")
}

pub fn bytes(r: &dyn Row) -> DecodeResult<Vec<u8>> {
    r.blob("b")
}

/// A `RETURNING kid` row.
pub fn text_kid(r: &dyn Row) -> DecodeResult<String> {
    r.string("kid")
}

/// A `state AS t` row.
pub fn state(r: &dyn Row) -> DecodeResult<crate::domain::state::KycState> {
    r.state("t")
}

/// An `n` and a `t` column.
pub fn pk_and_text(r: &dyn Row) -> DecodeResult<(i64, String)> {
    Ok((r.i64("n")?, r.string("t")?))
}

/// A customer (with its pk as `n`) and the identity of its verified request, if any.
pub fn customer_record(r: &dyn Row) -> DecodeResult<(i64, CustomerRecord)> {
    let verified = match (r.text("verified_kid")?, r.bytes("result_sealed")?) {
        (Some(kid), Some(sealed)) => Some((kid, sealed)),
        _ => None,
    };
    Ok((
        r.i64("n")?,
        CustomerRecord {
            cust_id: r.string("cust_id")?,
            active: r.flag("active")?,
            details_row: customer_row(r.i64("merchant_pk")?, &r.blob("pan_hash")?),
            details_sealed: r.blob("details_sealed")?,
            verified,
            latest: None,
        },
    ))
}
