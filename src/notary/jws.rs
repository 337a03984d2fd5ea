//! The JWS envelope: flattened JWS JSON serialization with exactly one signature (RFC 7515 §7.2.2),
//! as the Notary Project's `signature-envelope-jws.md` profiles it.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{check_content_type, check_critical, check_scheme, Decoded, EnvelopeType, NotaryError};
use super::{EXPIRY, SIGNING_AGENT, SIGNING_SCHEME, SIGNING_TIME};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    payload: String,
    protected: String,
    #[serde(default)]
    header: Map<String, Value>,
    signature: String,
}

fn malformed(reason: impl Into<String>) -> NotaryError {
    NotaryError::Malformed { envelope: "JWS", reason: reason.into() }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Decoded, NotaryError> {
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8"))?.trim();
    if !text.starts_with('{') {
        let form = if text.split('.').count() == 3 { "the compact serialization" } else { "not JSON" };
        return Err(malformed(format!("{form}; Notary signatures use the flattened JSON serialization")));
    }
    let env: Flattened = serde_json::from_str(text).map_err(|e| {
        if text.contains("\"signatures\"") {
            malformed("the general JSON serialization (a signatures array); exactly one signature is allowed")
        } else {
            malformed(format!("not a flattened JWS JSON object ({e})"))
        }
    })?;
    let b64 =
        |what: &str, s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed(format!("{what} is not base64url")));
    let protected_bytes = b64("protected", &env.protected)?;
    let payload = b64("payload", &env.payload)?;
    let signature = b64("signature", &env.signature)?;
    let protected: Map<String, Value> =
        serde_json::from_slice(&protected_bytes).map_err(|_| malformed("the protected header is not a JSON object"))?;

    let text_header = |name: &'static str| match protected.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(NotaryError::MissingHeader(name)),
    };
    let alg = text_header("alg")?.ok_or(NotaryError::MissingHeader("alg"))?.to_owned();
    check_scheme(text_header(SIGNING_SCHEME)?)?;
    check_content_type(text_header("cty")?)?;
    let signing_time = text_header(SIGNING_TIME)?
        .ok_or(NotaryError::MissingHeader(SIGNING_TIME))
        .and_then(|t| time(SIGNING_TIME, t))?;
    let expiry = text_header(EXPIRY)?.map(|t| time(EXPIRY, t)).transpose()?;
    let crit = match protected.get("crit") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(NotaryError::MissingHeader("crit")))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(NotaryError::MissingHeader("crit")),
    };
    check_critical(&crit, expiry.is_some())?;

    // Unknown unprotected headers are ignored (the spec's own example misnames one).
    let chain = match env.header.get("x5c") {
        Some(Value::Array(certs)) if !certs.is_empty() => certs
            .iter()
            .map(|c| {
                c.as_str()
                    .and_then(|s| STANDARD.decode(s).ok())
                    .ok_or_else(|| malformed("x5c holds an entry that is not base64 DER"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(malformed("the unprotected header lacks the x5c certificate chain")),
    };
    let signing_agent = env.header.get(SIGNING_AGENT).and_then(Value::as_str).map(str::to_owned);

    let mut signed = env.protected.into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(env.payload.as_bytes());
    Ok(Decoded { kind: EnvelopeType::Jws, alg, payload, signing_time, expiry, chain, signed, signature, signing_agent })
}

fn time(header: &'static str, value: &str) -> Result<i64, NotaryError> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| NotaryError::Unsupported { header, value: format!("{value} (not RFC 3339)") })
}
