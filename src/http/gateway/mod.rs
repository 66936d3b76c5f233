//! The sandbox's hosted journey pages under `/gateway/…`: the link's token is checked
//! on every page and post, posts carry a form token bound to a same-site cookie, and
//! every page is sent with a strict content security policy and no caching.

mod pages;

use super::AppState;
use super::limits::whole_seconds;
use crate::domain::kyc::parse_face_match;
use crate::sandbox::{Outcome, Step};
use crate::service::{
    Advanced, JourneyAction, JourneyError, JourneyKey, JourneyRefusal, SELFIE_MAX_BYTES,
};
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use pages::{FormContext, journey_page, message_page};
use serde::Deserialize;

const COOKIE: &str = "paycc_journey";
const CSS: &str = include_str!("../../../assets/journey.css");
const JS: &str = include_str!("../../../assets/journey.js");

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/gateway/login/{kid}/{reference}", get(show))
        .route(
            "/gateway/login/{kid}/{reference}/{step}",
            axum::routing::post(submit).layer(DefaultBodyLimit::max(SELFIE_MAX_BYTES + 64 * 1024)),
        )
        .route(
            "/gateway/assets/journey.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/gateway/assets/journey.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .route_layer(middleware::from_fn_with_state(state, limit_by_address))
}

/// Journey pages and posts per source address: a link's token is long, but nothing
/// should be able to try tokens or upload without pause.
async fn limit_by_address(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(wait) = state.limits.admit_journey(state.limits.source(&parts)) {
        let mut res = page(
            StatusCode::TOO_MANY_REQUESTS,
            message_page(
                "Too many requests",
                "Please wait a moment, then open your verification link again.",
            ),
            None,
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(whole_seconds(wait)));
        return res;
    }
    next.run(Request::from_parts(parts, body)).await
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token_id: Option<String>,
}

type JourneyPath = Result<Path<(String, String)>, PathRejection>;
type StepPath = Result<Path<(String, String, String)>, PathRejection>;

async fn show(
    State(state): State<AppState>,
    path: JourneyPath,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let (kid, reference) = path.map(|Path(p)| p).unwrap_or_default();
    let token = token_of(query);
    let key = journey_key(&kid, &reference, &token);
    render(&state, &key, &headers, None, StatusCode::OK).await
}

/// Renders the current page, issuing the form-token cookie when the browser has none.
async fn render(
    state: &AppState,
    key: &JourneyKey<'_>,
    headers: &HeaderMap,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let view = match state.service.journeys.view(key).await {
        Ok(view) => view,
        Err(e) => return refusal(e),
    };
    let (nonce, fresh) = match cookie_nonce(headers) {
        Some(n) => (n, false),
        None => (crate::crypto::random_alnum(32), true),
    };
    let base = format!("/gateway/login/{}/{}", key.kid, key.reference);
    let csrf = state.service.journeys.form_token(key.kid, &nonce);
    let html = journey_page(
        &view,
        &FormContext {
            base: &base,
            token: key.token,
            csrf: &csrf,
        },
        error,
    );
    let mut res = page(status, html, view.leave_origin.as_deref());
    if fresh {
        let secure = if state.public_https { "; Secure" } else { "" };
        let cookie = format!("{COOKIE}={nonce}; Path=/gateway; HttpOnly; SameSite=Strict{secure}");
        res.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("alphanumeric cookie"),
        );
    }
    res
}

async fn submit(
    State(state): State<AppState>,
    path: StepPath,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let (kid, reference, step) = path.map(|Path(p)| p).unwrap_or_default();
    let token = token_of(query);
    let key = journey_key(&kid, &reference, &token);
    // Everything that can be checked before the body is: where the post comes from,
    // the browser's cookie, and the link. The form token comes first in the form and is
    // checked before an upload is read (`read_form`).
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let Some(nonce) = cookie_nonce(&headers).filter(|_| !cross_site) else {
        return form_expired();
    };
    if let Err(e) = state.service.journeys.check_link(&key).await {
        return refusal(e);
    }
    let Ok(form) = form else {
        return bad_form();
    };
    let form_token_ok = |presented: &str| {
        state
            .service
            .journeys
            .form_token_ok(&kid, &nonce, presented)
    };
    let fields = match read_form(form, form_token_ok).await {
        Ok(f) => f,
        Err(FormProblem::TooLarge) => {
            return render(
                &state,
                &key,
                &headers,
                Some("The photo must be a JPEG picture of at most 2 MB."),
                StatusCode::PAYLOAD_TOO_LARGE,
            )
            .await;
        }
        Err(FormProblem::Forged) => return form_expired(),
        Err(FormProblem::Unreadable) => return bad_form(),
    };
    let action = match Step::parse(&step) {
        Some(Step::Consent) if fields.agree => JourneyAction::Consent,
        Some(Step::Consent) => {
            return render(
                &state,
                &key,
                &headers,
                Some("Tick the box to agree before continuing."),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        Some(Step::SignIn) => JourneyAction::SignIn {
            otp: fields.otp.trim().to_owned(),
        },
        Some(Step::Share) => JourneyAction::Share,
        Some(Step::Selfie) => {
            let outcome = Outcome::parse(&fields.outcome).filter(|o| *o != Outcome::Expired);
            let face_match = parse_face_match(&fields.face_match);
            let (Some(outcome), Some(face_match)) = (outcome, face_match) else {
                return render(
                    &state,
                    &key,
                    &headers,
                    Some("Choose an outcome and a face-match score from 0 to 100."),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            };
            JourneyAction::Selfie {
                photo: fields.photo,
                outcome,
                face_match,
                other_person: fields.other_person,
            }
        }
        _ => return refusal(JourneyError::Refused(JourneyRefusal::Invalid)),
    };
    match state.service.journeys.advance(&key, action).await {
        Ok(Advanced::Stay) => Redirect::to(&format!(
            "/gateway/login/{kid}/{reference}?token_id={}",
            url_safe(&token)
        ))
        .into_response(),
        Ok(Advanced::Leave(url)) => Redirect::to(&url).into_response(),
        Err(JourneyError::Form(msg)) => {
            render(
                &state,
                &key,
                &headers,
                Some(msg),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => refusal(e),
    }
}

#[derive(Default)]
struct FormFields {
    agree: bool,
    otp: String,
    outcome: String,
    face_match: String,
    other_person: bool,
    photo: Option<Vec<u8>>,
}

enum FormProblem {
    TooLarge,
    /// No valid form token, or none before the upload.
    Forged,
    Unreadable,
}

/// Reads the form, whose token (`csrf`, the page's first field) must be valid before
/// an upload is read.
async fn read_form(
    mut form: Multipart,
    form_token_ok: impl Fn(&str) -> bool,
) -> Result<FormFields, FormProblem> {
    let mut f = FormFields::default();
    let mut vouched = false;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) if vouched => return Ok(f),
            Ok(None) => return Err(FormProblem::Forged),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(FormProblem::TooLarge);
            }
            Err(_) => return Err(FormProblem::Unreadable),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "photo" && !vouched {
            return Err(FormProblem::Forged);
        }
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                FormProblem::TooLarge
            } else {
                FormProblem::Unreadable
            }
        })?;
        let text = || String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned();
        match name.as_str() {
            "csrf" => vouched = form_token_ok(&text()),
            "agree" => f.agree = !bytes.is_empty(),
            "otp" => f.otp = text(),
            "outcome" => f.outcome = text(),
            "faceMatch" => f.face_match = text(),
            "otherPerson" => f.other_person = !bytes.is_empty(),
            // An empty file input still sends a part: no file chosen.
            "photo" if !bytes.is_empty() => f.photo = Some(bytes.to_vec()),
            _ => {}
        }
    }
}

/// The link's token; a missing or unreadable query reads as no token (an invalid link).
fn token_of(query: Result<Query<TokenQuery>, QueryRejection>) -> String {
    query
        .ok()
        .and_then(|Query(q)| q.token_id)
        .unwrap_or_default()
}

fn journey_key<'a>(kid: &'a str, reference: &'a str, token: &'a str) -> JourneyKey<'a> {
    JourneyKey {
        kid,
        reference,
        token,
    }
}

fn cookie_nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_owned)
}

/// Tokens are ours (letters and digits) once checked; anything else is dropped.
fn url_safe(token: &str) -> String {
    token.chars().filter(char::is_ascii_alphanumeric).collect()
}

fn refusal(e: JourneyError) -> Response {
    match e {
        JourneyError::Refused(JourneyRefusal::Invalid) => page(
            StatusCode::NOT_FOUND,
            message_page(
                "This link is not valid",
                "Check that you opened the whole link from the message you received, or ask for a new one.",
            ),
            None,
        ),
        JourneyError::Refused(JourneyRefusal::Expired) => page(
            StatusCode::GONE,
            message_page(
                "This link has expired",
                "Verification links work for a limited time. Ask for a new link to verify your identity.",
            ),
            None,
        ),
        JourneyError::Form(msg) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            message_page("Please check the form", msg),
            None,
        ),
        JourneyError::Failed(e) => {
            tracing::error!(error = %e, "journey page failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                message_page("Something went wrong", "Please try again in a moment."),
                None,
            )
        }
    }
}

fn form_expired() -> Response {
    page(
        StatusCode::FORBIDDEN,
        message_page(
            "This form has expired",
            "For your security the form could not be accepted. Open your verification link again and continue from there.",
        ),
        None,
    )
}

fn bad_form() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        message_page(
            "The form could not be read",
            "Open your verification link again and continue from there.",
        ),
        None,
    )
}

/// An HTML page with the journey's security headers. `leave_origin` is where the final
/// form may redirect to (browsers apply `form-action` to a post's redirects too).
fn page(status: StatusCode, html: String, leave_origin: Option<&str>) -> Response {
    let form_action = match leave_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
         connect-src 'none'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).expect("origins are visible ASCII"),
    );
    secure_headers(h);
    res
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    secure_headers(h);
    res
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The token is in the URL: it must never travel in a Referer header.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=()"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
}
