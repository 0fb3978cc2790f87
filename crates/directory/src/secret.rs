//! High-entropy secrets the server hands out: app passwords and OAuth
//! tokens. They are random enough that a fast hash (SHA-256) stores them
//! safely, so checking one is a single indexed lookup, not an Argon2 run.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Letters in an app password (5 groups of 4: log2(26^20) ≈ 94 bits).
const APP_PASSWORD_LETTERS: usize = 20;

/// A new app password: `abcd-efgh-ijkl-mnop-qrst`, easy to type on a phone.
pub fn generate_app_password() -> String {
    let mut rng = rand::thread_rng();
    let letters: Vec<char> = (0..APP_PASSWORD_LETTERS)
        .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
        .collect();
    letters
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The canonical form of what may be an app password (case, spaces and
/// dashes ignored, as users retype them), or `None` if it cannot be one.
pub fn app_password_form(password: &str) -> Option<String> {
    let letters: String = password
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (letters.len() == APP_PASSWORD_LETTERS && letters.bytes().all(|b| b.is_ascii_lowercase())).then_some(letters)
}

/// A new opaque token: `prefix` then 256 random bits, base64url.
pub fn generate_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// How a secret is stored and looked up: lower-case hex SHA-256.
pub fn secret_digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge`.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_passwords_round_trip_through_their_form() {
        let p = generate_app_password();
        assert_eq!(p.len(), 24);
        let form = app_password_form(&p).unwrap();
        assert_eq!(
            app_password_form(&p.to_uppercase().replace('-', " ")),
            Some(form.clone())
        );
        assert_eq!(app_password_form("correct horse battery"), None);
        assert_eq!(app_password_form("abcd-efgh-ijkl-mnop-qrs1"), None);
        assert_ne!(generate_app_password(), p);
    }

    #[test]
    fn rfc7636_appendix_b_example() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(secret_digest("abc").len(), 64);
        assert!(generate_token("lbx_at_").starts_with("lbx_at_"));
    }
}
