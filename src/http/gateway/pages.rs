//! The journey's HTML, rendered on the server with maud: every value is escaped unless
//! marked otherwise (nothing is), and there is no inline script or style, so the content
//! security policy stays strict.

use crate::domain::kyc::{KycIdentity, gender_word};
use crate::domain::state::KycState;
use crate::sandbox::Step;
use crate::service::{JourneyView, Stage};
use maud::{DOCTYPE, Markup, html};

/// What every form on a page posts with.
pub struct FormContext<'a> {
    /// `/gateway/login/{kid}/{ref}`
    pub base: &'a str,
    /// The link's token, already URL-safe (checked by the caller).
    pub token: &'a str,
    pub csrf: &'a str,
}

const STEPS: [(&str, Step); 4] = [
    ("Consent", Step::Consent),
    ("DigiLocker", Step::SignIn),
    ("Selfie", Step::Selfie),
    ("Done", Step::Done),
];

fn progress(current: Step) -> Markup {
    // The share preview is part of the DigiLocker step for the customer.
    let shown = if current == Step::Share {
        Step::SignIn
    } else {
        current
    };
    let at = STEPS.iter().position(|(_, s)| *s == shown).unwrap_or(0);
    html! {
        ol.steps aria-label="Progress" {
            @for (i, (label, _)) in STEPS.iter().enumerate() {
                li class=[(i < at).then_some("done")] aria-current=[(i == at).then_some("step")] { (label) }
            }
        }
    }
}

fn layout(title: &str, progress: Option<Markup>, body: Markup, script: bool) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · Identity verification" }
                link rel="stylesheet" href="/gateway/assets/journey.css";
                @if script {
                    script src="/gateway/assets/journey.js" defer {}
                }
            }
            body {
                div.sandbox-banner role="note" {
                    "Sandbox journey: no real documents are checked and nothing is sent to DigiLocker."
                }
                main.card {
                    p.brand { "paycc · Identity verification" }
                    @if let Some(progress) = progress { (progress) }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
    .into_string()
}

/// A step's form: the error (if any), the fields, and the hidden form token.
fn step_form(ctx: &FormContext<'_>, step: Step, error: Option<&str>, fields: Markup) -> Markup {
    let action = format!("{}/{}?token_id={}", ctx.base, step.as_str(), ctx.token);
    html! {
        @if let Some(e) = error {
            p.error role="alert" id="form-error" { (e) }
        }
        form method="post" action=(action) enctype="multipart/form-data" data-selfie[step == Step::Selfie] {
            input type="hidden" name="csrf" value=(ctx.csrf);
            (fields)
        }
    }
}

/// The page for where the customer stands.
pub fn journey_page(view: &JourneyView, ctx: &FormContext<'_>, error: Option<&str>) -> String {
    let merchant = view.merchant_name.as_str();
    let (title, step, body) = match view.stage {
        Stage::At(Step::Consent) => (
            "Verify your identity",
            Step::Consent,
            html! {
                p { strong { (merchant) } " asks you to verify your identity with DigiLocker." }
                h2 { "What " (merchant) " will receive" }
                ul.shares {
                    li { "From your Aadhaar: name, date of birth, gender, father's name, address and photo. Only the last 4 digits of your Aadhaar number are shared." }
                    li { "From your PAN: the PAN and the name on it." }
                    li { "A selfie you take now, and how well it matches your Aadhaar photo." }
                }
                (step_form(ctx, Step::Consent, error, html! {
                    label.inline for="agree" {
                        input type="checkbox" id="agree" name="agree" value="yes" required;
                        " " span { "I agree to share these details with " (merchant) " for identity verification." }
                    }
                    div.actions { button type="submit" { "Agree and continue" } }
                }))
            },
        ),
        Stage::At(Step::SignIn) => (
            "Sign in to DigiLocker",
            Step::SignIn,
            html! {
                p { "DigiLocker sent a one-time code to the mobile number linked to your Aadhaar, " strong { (view.mobile_masked) } "." }
                (step_form(ctx, Step::SignIn, error, html! {
                    label for="otp" { "6-digit code" }
                    input type="text" id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code"
                        pattern="[0-9]{6}" maxlength="6" required aria-describedby="otp-hint";
                    p.hint id="otp-hint" { "Sandbox: any six digits work." }
                    div.actions { button type="submit" { "Sign in" } }
                }))
            },
        ),
        Stage::At(Step::Share) => (
            "Share your documents",
            Step::Share,
            share(
                view.preview.as_ref(),
                merchant,
                step_form(
                    ctx,
                    Step::Share,
                    error,
                    html! {
                        div.actions { button type="submit" { "Allow and continue" } }
                    },
                ),
            ),
        ),
        Stage::At(Step::Selfie) | Stage::At(Step::Done) => (
            "Take a selfie",
            Step::Selfie,
            html! {
                p { "We compare a selfie with your Aadhaar photo. Face the camera in good light, without a cap or dark glasses." }
                (step_form(ctx, Step::Selfie, error, selfie_fields()))
            },
        ),
        Stage::Finished(state) => return finished_page(view, state),
    };
    layout(title, Some(progress(step)), body, step == Step::Selfie)
}

/// What DigiLocker will share (the photo left out, the PAN masked).
fn share(preview: Option<&KycIdentity>, merchant: &str, form: Markup) -> Markup {
    let field = |f: fn(&KycIdentity) -> String| preview.map(f).unwrap_or_default();
    let pan = field(|i| i.pan.clone());
    let pan_masked = if pan.len() == 10 {
        format!("XXXXXX{}", &pan[6..])
    } else {
        String::new()
    };
    let father = field(|i| i.father_name.clone());
    html! {
        p { "DigiLocker will share these documents with " strong { (merchant) } "." }
        section.panel aria-labelledby="aadhaar-h" {
            h2 id="aadhaar-h" { "Aadhaar" }
            dl.record {
                dt { "Name" } dd { (field(|i| i.name.clone())) }
                dt { "Aadhaar number" } dd { (field(|i| i.aadhaar.clone())) }
                dt { "Date of birth" } dd { (field(|i| i.dob.clone())) }
                dt { "Gender" } dd { (gender_word(&field(|i| i.gender.clone()))) }
                dt { "Father's name" } dd { @if father.is_empty() { "—" } @else { (father) } }
                dt { "Address" } dd { (field(|i| i.current_address.one_line())) }
            }
        }
        section.panel aria-labelledby="pan-h" {
            h2 id="pan-h" { "PAN" }
            dl.record {
                dt { "PAN" } dd { (pan_masked) }
                dt { "Name on PAN" } dd { (field(|i| i.pan_name.clone())) }
            }
        }
        (form)
    }
}

fn selfie_fields() -> Markup {
    html! {
        div #camera .panel hidden {
            video playsinline muted aria-label="Camera preview" hidden {}
            div.actions {
                button type="button" .secondary #camera-start { "Start camera" }
                button type="button" .secondary #camera-capture disabled { "Capture" }
            }
        }
        label for="photo" { "Or upload a photo (JPEG, up to 2 MB)" }
        input type="file" id="photo" name="photo" accept="image/jpeg" capture="user" aria-describedby="photo-hint";
        p.hint id="photo-hint" { "No camera or photo? Continue, and the sandbox uses a generated picture." }
        img id="selfie-preview" alt="Your selfie" hidden;
        p #selfie-status .hint role="status" aria-live="polite" {}
        fieldset.panel {
            legend { "Sandbox tester controls" }
            p.hint { "Choose how this verification ends. A real customer never sees this." }
            @for (value, label, checked) in [("approved", "Approve", true), ("rejected", "Reject", false), ("pending", "Leave pending for review", false)] {
                @let id = format!("outcome-{value}");
                label.inline for=(id) {
                    input type="radio" id=(id) name="outcome" value=(value) checked[checked];
                    " " span { (label) }
                }
            }
            label for="faceMatch" { "Face-match score (0–100)" }
            input type="number" id="faceMatch" name="faceMatch" min="0" max="100" step="1" value="95" required;
            label.inline for="other-person" {
                input type="checkbox" id="other-person" name="otherPerson" value="1";
                " " span { "DigiLocker returns a different person (another PAN and name: the approval is refused as an identity mismatch)" }
            }
        }
        div.actions { button type="submit" { "Submit" } }
    }
}

fn finished_page(view: &JourneyView, state: KycState) -> String {
    let merchant = view.merchant_name.as_str();
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
    let body = html! {
        p class=(format!("outcome-{class}")) id="outcome" data-state=(state.as_str()) { strong { (text) } }
        @match &view.return_url {
            Some(url) => div.actions { a.button href=(url) { "Return to " (merchant) } },
            None => p { "You can close this page." },
        }
    };
    layout(title, Some(progress(Step::Done)), body, false)
}

/// A page that shows nothing of any customer.
pub fn message_page(title: &str, text: &str) -> String {
    layout(title, None, html! { p { (text) } }, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_by_default() {
        let page = message_page("<b>x</b>", "\"'&<script>");
        assert!(page.contains("<title>&lt;b&gt;x&lt;/b&gt; · Identity verification</title>"));
        assert!(page.contains("<p>&quot;'&amp;&lt;script&gt;</p>"), "{page}");
        assert!(!page.contains("<script>"));
    }
}
