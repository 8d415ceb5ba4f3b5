//! AES-256-GCM with a fresh random 96-bit nonce per message and the owner context as associated
//! data. The only place the cipher is used, for both the KMS and the local-key scheme.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::format::NONCE_LEN;

/// A 256-bit data key, wiped from memory when dropped.
pub(crate) type DataKey = Zeroizing<[u8; 32]>;

/// Encrypts `plaintext` under `key` with `aad` authenticated alongside; returns the nonce and the
/// ciphertext with its tag.
///
/// Random nonces are safe here because a key encrypts few messages: a cached data key is bounded
/// by its use count (far below the 2^32 messages NIST allows per key with random nonces).
pub(crate) fn encrypt(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> ([u8; NONCE_LEN], Vec<u8>) {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let cipher = Aes256Gcm::new(&(**key).into());
    // Encryption only fails for inputs longer than 2^36 bytes; tokens are bounded far below.
    let ciphertext = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default();
    (nonce, ciphertext)
}

/// Decrypts and authenticates; `None` if the key, the nonce, the ciphertext or the associated data
/// differ in any bit from what was sealed.
pub(crate) fn decrypt(
    key: &DataKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = Aes256Gcm::new(&(**key).into());
    cipher
        .decrypt(
            &Nonce::from(*nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_mismatch_fails() {
        let key = Zeroizing::new([5u8; 32]);
        let (nonce, ct) = encrypt(&key, b"ctx-a", b"THtoken");
        assert_eq!(
            decrypt(&key, &nonce, b"ctx-a", &ct)
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"THtoken"[..])
        );
        assert!(decrypt(&key, &nonce, b"ctx-b", &ct).is_none());
        assert!(decrypt(&Zeroizing::new([6u8; 32]), &nonce, b"ctx-a", &ct).is_none());
        let mut other_nonce = nonce;
        other_nonce[0] ^= 1;
        assert!(decrypt(&key, &other_nonce, b"ctx-a", &ct).is_none());
        let mut tampered = ct.clone();
        tampered[0] ^= 1;
        assert!(decrypt(&key, &nonce, b"ctx-a", &tampered).is_none());
    }

    #[test]
    fn nonces_are_fresh() {
        let key = Zeroizing::new([5u8; 32]);
        let (a, ct_a) = encrypt(&key, b"", b"same");
        let (b, ct_b) = encrypt(&key, b"", b"same");
        assert_ne!(a, b);
        assert_ne!(ct_a, ct_b);
    }
}
