//! Signing and verifying JWTs with the token-signing key (`tokenSigning` in the config).
//!
//! Hand-rolled on top of aws-lc-rs (already in the tree through rustls) rather than a JWT crate:
//! we need exactly two things, compact-serialised RS256/ES256 signing with a custom header
//! (`x5c` for the CNCF registry) and checking our own signature, and nothing else.
//!
//! Claim checks (audience, issuer, expiry) are the callers' business: each emulated service
//! answers a failed check with its own error shape.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Map, Value};

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

pub struct Signer {
    key: Key,
    /// The certificate chain from the cert file, leaf first, as standard base64 DER (the JWS
    /// `x5c` form the CNCF registry checks against its `rootcertbundle`).
    x5c: Vec<String>,
    /// AAD-style key id: base64url(SHA-1(leaf DER)), also sent as `x5t`.
    kid: String,
    rng: SystemRandom,
}

pub type Claims = Map<String, Value>;

#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// Not three base64url parts of JSON.
    Malformed,
    /// Not signed by our key (or with another algorithm).
    BadSignature,
}

impl Signer {
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Signer> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading {}", cert.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("parsing {}", cert.display()))?;
        let leaf = certs.first().ok_or_else(|| anyhow!("no certificate in {}", cert.display()))?;
        let der = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
        let key = match &der {
            PrivateKeyDer::Pkcs1(k) => Key::Rsa(RsaKeyPair::from_der(k.secret_pkcs1_der())?),
            PrivateKeyDer::Sec1(k) => Key::Ec(EcdsaKeyPair::from_private_key_der(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                k.secret_sec1_der(),
            )?),
            PrivateKeyDer::Pkcs8(k) => match RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()) {
                Ok(rsa) => Key::Rsa(rsa),
                Err(_) => Key::Ec(
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, k.secret_pkcs8_der())
                        .map_err(|e| anyhow!("token-signing key is neither RSA nor P-256: {e}"))?,
                ),
            },
            _ => bail!("unsupported key format in {}", key.display()),
        };
        let thumb = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf.as_ref());
        Ok(Signer {
            key,
            x5c: certs.iter().map(|c| STANDARD.encode(c.as_ref())).collect(),
            kid: URL_SAFE_NO_PAD.encode(thumb.as_ref()),
            rng: SystemRandom::new(),
        })
    }

    pub fn alg(&self) -> &'static str {
        match self.key {
            Key::Rsa(_) => "RS256",
            Key::Ec(_) => "ES256",
        }
    }

    /// A header as AAD sends it (`kid`/`x5t`), for managed-identity tokens.
    pub fn aad_header(&self) -> Value {
        json!({"typ": "JWT", "alg": self.alg(), "x5t": self.kid, "kid": self.kid})
    }

    /// A header carrying the certificate chain, for registry tokens: the CNCF registry accepts
    /// `x5c` chaining to its root bundle (it rejects RFC 7638 `kid`s, see local-stack-notes.md).
    pub fn x5c_header(&self) -> Value {
        json!({"typ": "JWT", "alg": self.alg(), "x5c": self.x5c})
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = match &self.key {
            Key::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut sig)
                    .expect("RSA signing cannot fail with a valid key");
                sig
            }
            Key::Ec(k) => k.sign(&self.rng, input.as_bytes()).expect("ECDSA signing").as_ref().to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Checks that `token` is a JWT this emulator signed and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(VerifyError::Malformed);
        };
        let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|_| VerifyError::Malformed);
        let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| VerifyError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&decode(c)?).map_err(|_| VerifyError::Malformed)?;
        let sig = decode(s)?;
        if header.get("alg").and_then(Value::as_str) != Some(self.alg()) {
            return Err(VerifyError::BadSignature);
        }
        let signed = &token.as_bytes()[..h.len() + 1 + c.len()];
        let ok = match &self.key {
            Key::Rsa(k) => UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, k.public_key().as_ref())
                .verify(signed, &sig),
            Key::Ec(k) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, k.public_key().as_ref())
                .verify(signed, &sig),
        };
        ok.map_err(|_| VerifyError::BadSignature)?;
        Ok(claims)
    }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Audiences compare without a trailing slash: AAD issues `https://management.azure.com/` for
/// the slash form of the resource and services accept either.
pub fn same_audience(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

pub fn claim_str<'a>(claims: &'a Claims, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

pub fn claim_i64(claims: &Claims, name: &str) -> Option<i64> {
    claims.get(name).and_then(Value::as_i64)
}
