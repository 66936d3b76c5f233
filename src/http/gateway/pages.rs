//! The journey's HTML, rendered on the server. Every dynamic value goes through
//! `escape`; no inline script or style, so the content security policy stays strict.

use crate::domain::state::KycState;
use crate::provider::sandbox::Step;
use crate::service::{JourneyView, Stage};
use std::fmt::Write;

/// What every form on a page posts with.
pub struct FormContext<'a> {
    /// `/gateway/login/{kid}/{ref}`
    pub base: &'a str,
    /// The link's token, already URL-safe (checked by the caller).
    pub token: &'a str,
    pub csrf: &'a str,
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STEPS: [(&str, Step); 4] = [
    ("Consent", Step::Consent),
    ("DigiLocker", Step::SignIn),
    ("Selfie", Step::Selfie),
    ("Done", Step::Done),
];

fn progress(current: Step) -> String {
    // The share preview is part of the DigiLocker step for the customer.
    let shown = if current == Step::Share {
        Step::SignIn
    } else {
        current
    };
    let at = STEPS.iter().position(|(_, s)| *s == shown).unwrap_or(0);
    let mut out = String::from(r#"<ol class="steps" aria-label="Progress">"#);
    for (i, (label, _)) in STEPS.iter().enumerate() {
        let attrs = match i.cmp(&at) {
            std::cmp::Ordering::Less => r#" class="done""#,
            std::cmp::Ordering::Equal => r#" aria-current="step""#,
            std::cmp::Ordering::Greater => "",
        };
        let _ = write!(out, "<li{attrs}>{label}</li>");
    }
    out.push_str("</ol>");
    out
}

fn layout(title: &str, progress_html: &str, body: &str, script: bool) -> String {
    let script = if script {
        r#"<script src="/gateway/assets/journey.js" defer></script>"#
    } else {
        ""
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · Identity verification</title>
<link rel="stylesheet" href="/gateway/assets/journey.css">
{script}
</head>
<body>
<div class="sandbox-banner" role="note">Sandbox journey: no real documents are checked and nothing is sent to DigiLocker.</div>
<main class="card">
<p class="brand">paycc · Identity verification</p>
{progress_html}
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#,
        title = escape(title)
    )
}

fn form_open(ctx: &FormContext<'_>, step: Step, extra: &str) -> String {
    format!(
        r#"<form method="post" action="{base}/{step}?token_id={token}" enctype="multipart/form-data"{extra}>
<input type="hidden" name="csrf" value="{csrf}">"#,
        base = escape(ctx.base),
        step = step.as_str(),
        token = escape(ctx.token),
        csrf = escape(ctx.csrf),
    )
}

fn error_block(error: Option<&str>) -> String {
    error.map_or_else(String::new, |e| {
        format!(
            r#"<p class="error" role="alert" id="form-error">{}</p>"#,
            escape(e)
        )
    })
}

/// The page for where the customer stands.
pub fn journey_page(view: &JourneyView, ctx: &FormContext<'_>, error: Option<&str>) -> String {
    let merchant = escape(&view.merchant_name);
    let err = error_block(error);
    match view.stage {
        Stage::At(Step::Consent) => layout(
            "Verify your identity",
            &progress(Step::Consent),
            &format!(
                r#"<p><strong>{merchant}</strong> asks you to verify your identity with DigiLocker.</p>
<h2>What {merchant} will receive</h2>
<ul class="shares">
<li>From your Aadhaar: name, date of birth, gender, father's name, address and photo. Only the last 4 digits of your Aadhaar number are shared.</li>
<li>From your PAN: the PAN and the name on it.</li>
<li>A selfie you take now, and how well it matches your Aadhaar photo.</li>
</ul>
{err}{form}
<label class="inline" for="agree"><input type="checkbox" id="agree" name="agree" value="yes" required> <span>I agree to share these details with {merchant} for identity verification.</span></label>
<div class="actions"><button type="submit">Agree and continue</button></div>
</form>"#,
                form = form_open(ctx, Step::Consent, "")
            ),
            false,
        ),
        Stage::At(Step::SignIn) => layout(
            "Sign in to DigiLocker",
            &progress(Step::SignIn),
            &format!(
                r#"<p>DigiLocker sent a one-time code to the mobile number linked to your Aadhaar, <strong>{mobile}</strong>.</p>
{err}{form}
<label for="otp">6-digit code</label>
<input type="text" id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" required aria-describedby="otp-hint">
<p class="hint" id="otp-hint">Sandbox: any six digits work.</p>
<div class="actions"><button type="submit">Sign in</button></div>
</form>"#,
                mobile = escape(&view.mobile_masked),
                form = form_open(ctx, Step::SignIn, "")
            ),
            false,
        ),
        Stage::At(Step::Share) => {
            let preview = view.preview.as_ref();
            let field = |f: fn(&crate::domain::kyc::KycIdentity) -> String| {
                preview.map(f).unwrap_or_default()
            };
            let pan = field(|i| i.pan.clone());
            let pan_masked = if pan.len() == 10 {
                format!("XXXXXX{}", &pan[6..])
            } else {
                String::new()
            };
            layout(
                "Share your documents",
                &progress(Step::Share),
                &format!(
                    r#"<p>DigiLocker will share these documents with <strong>{merchant}</strong>.</p>
<section class="panel" aria-labelledby="aadhaar-h">
<h2 id="aadhaar-h">Aadhaar</h2>
<dl class="record">
<dt>Name</dt><dd>{name}</dd>
<dt>Aadhaar number</dt><dd>{aadhaar}</dd>
<dt>Date of birth</dt><dd>{dob}</dd>
<dt>Gender</dt><dd>{gender}</dd>
<dt>Father's name</dt><dd>{father}</dd>
<dt>Address</dt><dd>{address}</dd>
</dl>
</section>
<section class="panel" aria-labelledby="pan-h">
<h2 id="pan-h">PAN</h2>
<dl class="record">
<dt>PAN</dt><dd>{pan_masked}</dd>
<dt>Name on PAN</dt><dd>{pan_name}</dd>
</dl>
</section>
{err}{form}
<div class="actions"><button type="submit">Allow and continue</button></div>
</form>"#,
                    name = escape(&field(|i| i.name.clone())),
                    aadhaar = escape(&field(|i| i.aadhaar.clone())),
                    dob = escape(&field(|i| i.dob.clone())),
                    gender = escape(crate::domain::kyc::gender_word(&field(|i| i
                        .gender
                        .clone()))),
                    father = escape(&field(|i| if i.father_name.is_empty() {
                        "—".into()
                    } else {
                        i.father_name.clone()
                    })),
                    address = escape(&field(|i| i.current_address.one_line())),
                    pan_masked = escape(&pan_masked),
                    pan_name = escape(&field(|i| i.pan_name.clone())),
                    form = form_open(ctx, Step::Share, "")
                ),
                false,
            )
        }
        Stage::At(Step::Selfie) | Stage::At(Step::Done) => layout(
            "Take a selfie",
            &progress(Step::Selfie),
            &format!(
                r#"<p>We compare a selfie with your Aadhaar photo. Face the camera in good light, without a cap or dark glasses.</p>
{err}{form}
<div id="camera" class="panel" hidden>
<video playsinline muted aria-label="Camera preview" hidden></video>
<div class="actions">
<button type="button" class="secondary" id="camera-start">Start camera</button>
<button type="button" class="secondary" id="camera-capture" disabled>Capture</button>
</div>
</div>
<label for="photo">Or upload a photo (JPEG, up to 2 MB)</label>
<input type="file" id="photo" name="photo" accept="image/jpeg" capture="user" aria-describedby="photo-hint">
<p class="hint" id="photo-hint">No camera or photo? Continue, and the sandbox uses a generated picture.</p>
<img id="selfie-preview" alt="Your selfie" hidden>
<p id="selfie-status" class="hint" role="status" aria-live="polite"></p>
<fieldset class="panel">
<legend>Sandbox tester controls</legend>
<p class="hint">Choose how this verification ends. A real customer never sees this.</p>
<label class="inline" for="outcome-approved"><input type="radio" id="outcome-approved" name="outcome" value="approved" checked> <span>Approve</span></label>
<label class="inline" for="outcome-rejected"><input type="radio" id="outcome-rejected" name="outcome" value="rejected"> <span>Reject</span></label>
<label class="inline" for="outcome-pending"><input type="radio" id="outcome-pending" name="outcome" value="pending"> <span>Leave pending for review</span></label>
<label for="faceMatch">Face-match score (0–100)</label>
<input type="number" id="faceMatch" name="faceMatch" min="0" max="100" step="1" value="95" required>
<label class="inline" for="other-person"><input type="checkbox" id="other-person" name="otherPerson" value="1"> <span>DigiLocker returns a different person (another PAN and name: the approval is refused as an identity mismatch)</span></label>
</fieldset>
<div class="actions"><button type="submit">Submit</button></div>
</form>"#,
                form = form_open(ctx, Step::Selfie, " data-selfie")
            ),
            true,
        ),
        Stage::Finished(state) => finished_page(view, state),
    }
}

fn finished_page(view: &JourneyView, state: KycState) -> String {
    let merchant = escape(&view.merchant_name);
    let (title, class, text) = match state {
        KycState::Approved => (
            "Verification complete",
            "approved",
            format!("Your identity was verified and {merchant} has been informed."),
        ),
        KycState::Rejected => (
            "Verification unsuccessful",
            "rejected",
            format!(
                "Your identity could not be verified. {merchant} has been informed and may ask you to try again."
            ),
        ),
        KycState::AwaitingApproval => (
            "Submitted for review",
            "pending",
            format!(
                "Thank you. Your details are being reviewed; {merchant} will let you know the result."
            ),
        ),
        _ => (
            "Verification could not be completed",
            "failed",
            format!("This verification could not be completed. Ask {merchant} for a new link."),
        ),
    };
    let next = match &view.return_url {
        Some(url) => format!(
            r#"<div class="actions"><a class="button" href="{}">Return to {merchant}</a></div>"#,
            escape(url)
        ),
        None => "<p>You can close this page.</p>".to_owned(),
    };
    layout(
        title,
        &progress(Step::Done),
        &format!(
            r#"<p class="outcome-{class}" id="outcome" data-state="{state}"><strong>{text}</strong></p>{next}"#,
            state = state.as_str()
        ),
        false,
    )
}

/// A page that shows nothing of any customer.
pub fn message_page(title: &str, text: &str) -> String {
    layout(title, "", &format!("<p>{}</p>", escape(text)), false)
}
