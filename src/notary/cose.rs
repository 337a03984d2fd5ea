//! The COSE envelope: `COSE_Sign1_Tagged` (RFC 9052) as `signature-envelope-cose.md` profiles it.

use coset::cbor::value::Value;
use coset::{iana, CborSerializable, ContentType, Label, RegisteredLabelWithPrivate, TaggedCborSerializable};

use super::{check_content_type, check_critical, check_scheme, Decoded, EnvelopeType, NotaryError};
use super::{EXPIRY, SIGNING_AGENT, SIGNING_SCHEME, SIGNING_TIME};

/// `x5chain` (RFC 9360), leaf first.
const X5CHAIN: i64 = 33;

fn malformed(reason: impl Into<String>) -> NotaryError {
    NotaryError::Malformed { envelope: "COSE", reason: reason.into() }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Decoded, NotaryError> {
    let msg = coset::CoseSign1::from_tagged_slice(bytes).map_err(|e| {
        if coset::CoseSign1::from_slice(bytes).is_ok() {
            malformed("an untagged COSE_Sign1; COSE_Sign1_Tagged is required")
        } else {
            malformed(format!("not a COSE_Sign1_Tagged message ({e})"))
        }
    })?;
    let h = &msg.protected.header;
    let alg = match &h.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) => {
            alg_name(*a).ok_or_else(|| NotaryError::Unsupported { header: "alg", value: format!("{a:?}") })?.to_owned()
        }
        Some(other) => return Err(NotaryError::Unsupported { header: "alg", value: format!("{other:?}") }),
        None => return Err(NotaryError::MissingHeader("alg")),
    };
    let text = |name: &'static str| -> Option<&Value> {
        h.rest.iter().find_map(|(l, v)| matches!(l, Label::Text(t) if t == name).then_some(v))
    };
    let scheme = match text(SIGNING_SCHEME) {
        None => None,
        Some(Value::Text(s)) => Some(s.as_str()),
        Some(_) => return Err(NotaryError::MissingHeader(SIGNING_SCHEME)),
    };
    check_scheme(scheme)?;
    let cty = match &h.content_type {
        None => None,
        Some(ContentType::Text(t)) => Some(t.as_str()),
        Some(ContentType::Assigned(a)) => {
            return Err(NotaryError::Unsupported { header: "content type (cty)", value: format!("{a:?}") })
        }
    };
    check_content_type(cty)?;
    let signing_time = epoch(SIGNING_TIME, text(SIGNING_TIME))?.ok_or(NotaryError::MissingHeader(SIGNING_TIME))?;
    let expiry = epoch(EXPIRY, text(EXPIRY))?;
    if h.crit.is_empty() {
        return Err(NotaryError::MissingHeader("crit"));
    }
    let crit = h
        .crit
        .iter()
        .map(|c| match c {
            RegisteredLabelWithPrivate::Text(t) => t.clone(),
            RegisteredLabelWithPrivate::Assigned(a) => format!("{a:?}"),
            RegisteredLabelWithPrivate::PrivateUse(n) => n.to_string(),
        })
        .collect::<Vec<_>>();
    check_critical(&crit, expiry.is_some())?;

    let u = &msg.unprotected;
    let chain = match u.rest.iter().find_map(|(l, v)| (*l == Label::Int(X5CHAIN)).then_some(v)) {
        Some(Value::Bytes(one)) => vec![one.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::Bytes(b) => Ok(b.clone()),
                _ => Err(malformed("x5chain holds an entry that is not a byte string")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(malformed("the unprotected header lacks x5chain (label 33)")),
    };
    let signing_agent = u.rest.iter().find_map(|(l, v)| match (l, v) {
        (Label::Text(t), Value::Text(s)) if t == SIGNING_AGENT => Some(s.clone()),
        _ => None,
    });
    let payload = msg.payload.clone().ok_or_else(|| malformed("the payload is detached"))?;
    let signed = msg.tbs_data(b"");
    Ok(Decoded {
        kind: EnvelopeType::Cose,
        alg,
        payload,
        signing_time,
        expiry,
        chain,
        signed,
        signature: msg.signature,
        signing_agent,
    })
}

/// A time header: CBOR tag 1 (epoch seconds) around an integer.
fn epoch(header: &'static str, v: Option<&Value>) -> Result<Option<i64>, NotaryError> {
    match v {
        None => Ok(None),
        Some(Value::Tag(1, inner)) => match inner.as_ref() {
            Value::Integer(i) => i64::try_from(*i).map(Some).map_err(|_| NotaryError::MissingHeader(header)),
            _ => Err(NotaryError::Unsupported { header, value: "a tag-1 time that is not an integer".into() }),
        },
        Some(_) => Err(NotaryError::Unsupported { header, value: "not a CBOR tag-1 epoch time".into() }),
    }
}

fn alg_name(a: iana::Algorithm) -> Option<&'static str> {
    Some(match a {
        iana::Algorithm::PS256 => "PS256",
        iana::Algorithm::PS384 => "PS384",
        iana::Algorithm::PS512 => "PS512",
        iana::Algorithm::ES256 => "ES256",
        iana::Algorithm::ES384 => "ES384",
        iana::Algorithm::ES512 => "ES512",
        _ => return None,
    })
}
