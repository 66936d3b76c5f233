//! The API reference page (`GET /docs`): the OpenAPI document rendered as one HTML page
//! with its style inline, so nothing is fetched from elsewhere.

use serde_json::Value;
use std::fmt::Write;

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}\
h2{margin-top:2.5rem;border-top:1px solid #d0d7de;padding-top:1rem}code,pre{font:13px ui-monospace,monospace}\
pre{background:#f6f8fa;padding:.75rem;overflow-x:auto;border-radius:6px}.method{font-weight:700;text-transform:uppercase;color:#0550ae}\
table{border-collapse:collapse;width:100%}td,th{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}";

/// The page for `document` (an OpenAPI document).
pub fn render(document: &utoipa::openapi::OpenApi) -> String {
    let doc = serde_json::to_value(document).expect("the document serialises");
    let mut out = String::new();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1><p>{desc}</p>\
         <p>Every endpoint takes HTTP Basic credentials (<code>clientId:clientSecret</code>). The machine-readable document: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {version}).</p>",
        title = escape(&text(&doc["info"]["title"])),
        desc = prose(&text(&doc["info"]["description"])),
        version = escape(&text(&doc["openapi"])),
    );
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            operation(&mut out, &doc, method, path, op);
        }
    }
    for (name, item) in doc["webhooks"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            operation(&mut out, &doc, method, &format!("(callback) {name}"), op);
        }
    }
    out.push_str("</body></html>");
    out
}

fn operation(out: &mut String, doc: &Value, method: &str, path: &str, op: &Value) {
    let text = |v: &Value| prose(v.as_str().unwrap_or_default());
    let _ = write!(
        out,
        "<h2><span class=\"method\">{}</span> <code>{}</code></h2><p><b>{}</b></p><p>{}</p>",
        escape(method),
        escape(path),
        text(&op["summary"]),
        text(&op["description"]),
    );
    if let Some(params) = op["parameters"].as_array() {
        out.push_str("<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>required</th><th>description</th></tr>");
        for p in params {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                text(&p["name"]),
                text(&p["in"]),
                p["required"].as_bool().unwrap_or(false),
                text(&p["description"]),
            );
        }
        out.push_str("</table>");
    }
    if let Some(schema) = op["requestBody"]["content"]["application/json"]["schema"].as_object() {
        let schema = resolve(doc, &Value::Object(schema.clone()));
        out.push_str("<h3>Body</h3><table><tr><th>field</th><th>required</th><th>rule</th></tr>");
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (field, s) in schema["properties"].as_object().into_iter().flatten() {
            let max = s["maxLength"]
                .as_u64()
                .map(|m| format!(" (at most {m})"))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}{}</td></tr>",
                escape(field),
                required.contains(&field.as_str()),
                text(&s["description"]),
                escape(&max),
            );
        }
        out.push_str("</table>");
    }
    out.push_str("<h3>Answers</h3>");
    for (status, r) in op["responses"].as_object().into_iter().flatten() {
        let _ = write!(
            out,
            "<p><b>{}</b> {}</p>",
            escape(status),
            text(&r["description"])
        );
        let content = &r["content"]["application/json"];
        let examples = content["examples"]
            .as_object()
            .map(|e| e.values().map(|v| v["value"].clone()).collect::<Vec<_>>())
            .or_else(|| content.get("example").map(|e| vec![e.clone()]))
            .unwrap_or_default();
        for e in examples {
            let pretty = serde_json::to_string_pretty(&e).expect("a value serialises");
            let _ = write!(out, "<pre>{}</pre>", escape(&pretty));
        }
    }
}

/// A schema, or the component schema it refers to.
fn resolve(doc: &Value, schema: &Value) -> Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            doc["components"]["schemas"][name].clone()
        }
        None => schema.clone(),
    }
}

/// Descriptions as they are written (Markdown's `code` spans), escaped.
fn prose(s: &str) -> String {
    escape(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_owned()
            }
        })
        .collect()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
