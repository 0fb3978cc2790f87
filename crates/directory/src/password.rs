//! Argon2id password hashing in PHC string format.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tracing::warn;

/// Argon2 cost parameters used when hashing. Verification always uses the
/// parameters stored in the hash, so changing these never breaks old hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl HashParams {
    /// Cheapest parameters argon2 accepts. For tests only: offers no real
    /// protection against offline cracking.
    pub const MINIMAL: HashParams = HashParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
}

impl Default for HashParams {
    /// The argon2 crate's defaults (OWASP's recommended Argon2id settings).
    fn default() -> Self {
        HashParams {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid Argon2 parameters: {0}")]
    Params(argon2::Error),
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Hash with the default [`HashParams`] and a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_password_with(password, HashParams::default())
}

/// Hash with explicit parameters; returns a `$argon2id$...` PHC string.
pub fn hash_password_with(password: &str, params: HashParams) -> Result<String, PasswordError> {
    let params =
        Params::new(params.memory_kib, params.iterations, params.parallelism, None).map_err(PasswordError::Params)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(PasswordError::Hash)
}

/// True if `password` matches the PHC string. A malformed or unsupported hash
/// is logged and treated as a mismatch, so a corrupt row cannot let anyone in.
pub fn verify_password(phc: &str, password: &str) -> bool {
    let parsed = match PasswordHash::new(phc) {
        Ok(parsed) => parsed,
        Err(e) => {
            warn!(error = %e, "stored password hash is malformed");
            return false;
        }
    };
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => true,
        Err(argon2::password_hash::Error::Password) => false,
        Err(e) => {
            warn!(error = %e, algorithm = %parsed.algorithm, "stored password hash unusable");
            false
        }
    }
}

/// The algorithm id of a PHC string (`argon2id` for `$argon2id$v=19$...`),
/// or `None` when it is not a well-formed PHC string. Lets tools report how
/// a password is stored without showing the hash.
pub fn password_scheme(phc: &str) -> Option<String> {
    PasswordHash::new(phc).ok().map(|parsed| parsed.algorithm.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_of_phc_strings() {
        let h = hash_password_with("pw", HashParams::MINIMAL).unwrap();
        assert_eq!(password_scheme(&h).as_deref(), Some("argon2id"));
        let scrypt = "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E";
        assert_eq!(password_scheme(scrypt).as_deref(), Some("scrypt"));
        for bad in ["", "plaintext", "$", "$$", "argon2id$v=19$x"] {
            assert_eq!(password_scheme(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn round_trip_and_salt_is_random() {
        let a = hash_password_with("hunter2", HashParams::MINIMAL).unwrap();
        let b = hash_password_with("hunter2", HashParams::MINIMAL).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{a}");
        assert_ne!(a, b, "salts must differ");
        assert!(verify_password(&a, "hunter2"));
        assert!(!verify_password(&a, "hunter3"));
        assert!(!verify_password(&a, ""));
    }

    #[test]
    fn default_params_are_argon2_defaults() {
        let h = hash_password("pw").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "pw"));
    }

    #[test]
    fn malformed_hashes_never_verify() {
        for phc in ["", "plaintext", "$argon2id$", "$2b$12$abcdefghijklmnopqrstuu"] {
            assert!(!verify_password(phc, ""), "{phc:?}");
            assert!(!verify_password(phc, "plaintext"), "{phc:?}");
        }
        // Well-formed PHC, unknown algorithm.
        assert!(!verify_password("$scrypt$ln=1,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "x"));
    }

    #[test]
    fn invalid_params_are_an_error() {
        let bad = HashParams {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1,
        };
        assert!(matches!(hash_password_with("x", bad), Err(PasswordError::Params(_))));
    }
}
