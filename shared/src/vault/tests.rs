//! Vault behaviour that needs no AWS: the local-key scheme, and the KMS scheme over a key wrapper
//! that does NOT enforce the encryption context — proving the AES-GCM associated data alone keeps a
//! token from opening for another owner.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use zeroize::Zeroizing;

use super::cipher::DataKey;
use super::context::Context;
use super::kms::{KeyWrapper, NewDataKey};
use super::*;
use crate::audit::{BoxFuture, MemoryAuditSink};
use crate::users::UserId;

const TOKEN: &str = "THAAplantedAccessToken0123456789";

fn owner(user: &str, account: &str) -> TokenOwner {
    TokenOwner::new(UserId::parse(user).unwrap(), account)
}

fn audit() -> (Arc<MemoryAuditSink>, Audit) {
    let sink = Arc::new(MemoryAuditSink::new());
    (sink.clone(), Audit::new(sink, true))
}

/// A wrapper that hands out one fixed data key and unwraps anything to it, whatever the context:
/// as if KMS (or an emulator) did not enforce the encryption context at all.
struct CarelessWrapper {
    generated: AtomicU64,
    unwrapped: AtomicU64,
}

impl CarelessWrapper {
    fn new() -> Self {
        CarelessWrapper {
            generated: AtomicU64::new(0),
            unwrapped: AtomicU64::new(0),
        }
    }
}

impl KeyWrapper for Arc<CarelessWrapper> {
    fn key_id(&self) -> &str {
        "careless"
    }
    fn generate<'a>(&'a self, _ctx: &'a Context) -> BoxFuture<'a, Result<NewDataKey, VaultError>> {
        // Each "wrapped" key is distinct, as KMS's are; all unwrap to the same key.
        let n = self.generated.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            Ok(NewDataKey {
                plaintext: Zeroizing::new([0x11; 32]),
                wrapped: n.to_be_bytes().to_vec(),
            })
        })
    }
    fn unwrap<'a>(
        &'a self,
        _wrapped: &'a [u8],
        _ctx: &'a Context,
    ) -> BoxFuture<'a, Result<DataKey, VaultError>> {
        self.unwrapped.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(Zeroizing::new([0x11; 32])) })
    }
}

fn careless_vault(limits: CacheLimits) -> (Arc<CarelessWrapper>, Arc<MemoryAuditSink>, Vault) {
    let wrapper = Arc::new(CarelessWrapper::new());
    let (sink, audit) = audit();
    let vault = Vault::with_wrapper(Box::new(Arc::clone(&wrapper)), limits, audit);
    (wrapper, sink, vault)
}

#[tokio::test]
async fn another_owner_is_refused_by_the_aad_even_when_the_data_key_unwraps() {
    // No cache, so every unseal really asks the wrapper, which unwraps the key for anyone.
    let (wrapper, sink, vault) = careless_vault(CacheLimits::none());
    let a = owner("user-a", "1784");
    let sealed = vault
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    let opened = vault
        .unseal(sealed.as_str(), &a, Purpose::ThreadsAccessToken, "publish")
        .await
        .unwrap();
    assert_eq!(opened.expose(), TOKEN);

    for other in [owner("user-b", "1784"), owner("user-a", "1785")] {
        let err = vault
            .unseal(
                sealed.as_str(),
                &other,
                Purpose::ThreadsAccessToken,
                "publish",
            )
            .await
            .unwrap_err();
        assert!(matches!(err, VaultError::Undecryptable), "{err:?}");
    }
    assert_eq!(
        wrapper.unwrapped.load(Ordering::Relaxed),
        3,
        "the key was unwrapped each time"
    );

    let records = sink.records();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].category, crate::audit::Category::DataAccess);
    assert_eq!(records[0].user_id.as_deref(), Some("user-a"));
    assert_eq!(records[0].metadata["reason"], "publish");
    assert_eq!(records[0].metadata["account_id"], "1784");
    assert_eq!(records[1].category, crate::audit::Category::Security);
    assert_eq!(records[1].outcome, crate::audit::Outcome::Failure);
    assert!(!format!("{records:?}").contains(TOKEN));
}

#[test]
fn a_fake_unwrapped_key_with_another_context_does_not_decrypt() {
    let key: DataKey = Zeroizing::new([0x42; 32]);
    let a = Context::new(&owner("user-a", "1784"), Purpose::ThreadsAccessToken).unwrap();
    let b = Context::new(&owner("user-b", "1784"), Purpose::ThreadsAccessToken).unwrap();
    let (nonce, ct) = cipher::encrypt(&key, a.canonical(), TOKEN.as_bytes());
    assert!(cipher::decrypt(&key, &nonce, a.canonical(), &ct).is_some());
    assert!(cipher::decrypt(&key, &nonce, b.canonical(), &ct).is_none());
}

#[tokio::test]
async fn data_keys_are_reused_per_context_within_their_bounds() {
    let limits = CacheLimits {
        max_uses: 3,
        ..CacheLimits::default()
    };
    let (wrapper, _sink, vault) = careless_vault(limits);
    let a = owner("user-a", "1");
    for _ in 0..7 {
        vault
            .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
            .await
            .unwrap();
    }
    // 7 seals, 3 uses per key: keys made at seals 1, 4 and 7.
    assert_eq!(wrapper.generated.load(Ordering::Relaxed), 3);
    // Another owner never shares a data key.
    vault
        .seal(TOKEN, &owner("user-b", "1"), Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    assert_eq!(wrapper.generated.load(Ordering::Relaxed), 4);
    assert_eq!(vault.kms_calls(), 4);
}

#[tokio::test]
async fn data_keys_expire_by_age() {
    let limits = CacheLimits {
        max_age: std::time::Duration::from_millis(30),
        ..CacheLimits::default()
    };
    let (wrapper, _sink, vault) = careless_vault(limits);
    let a = owner("user-a", "1");
    let sealed = vault
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    vault
        .unseal(sealed.as_str(), &a, Purpose::ThreadsAccessToken, "t")
        .await
        .unwrap();
    assert_eq!(
        vault.kms_calls(),
        1,
        "just sealed: the data key is cached for opening"
    );
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    vault
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    vault
        .unseal(sealed.as_str(), &a, Purpose::ThreadsAccessToken, "t")
        .await
        .unwrap();
    assert_eq!(wrapper.generated.load(Ordering::Relaxed), 2);
    assert_eq!(wrapper.unwrapped.load(Ordering::Relaxed), 1);
}

fn ring(keys: &[[u8; 32]]) -> LocalKeyRing {
    LocalKeyRing::new(keys.iter().map(|k| LocalKey::from_bytes(*k)).collect()).unwrap()
}

#[tokio::test]
async fn local_keys_bind_the_owner_and_purpose() {
    let (_sink, audit) = audit();
    let vault = Vault::with_local_keys(ring(&[[1; 32]]), audit);
    assert_eq!(
        vault.mode(),
        &VaultMode::LocalKey {
            source: LocalKeySource::Config
        }
    );
    let a = owner("user-a", "1784");
    let sealed = vault
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    assert!(!sealed.as_str().contains(TOKEN));
    let opened = vault
        .unseal(sealed.as_str(), &a, Purpose::ThreadsAccessToken, "publish")
        .await
        .unwrap();
    assert_eq!(opened.expose(), TOKEN);
    for other in [owner("user-b", "1784"), owner("user-a", "9")] {
        assert!(matches!(
            vault
                .unseal(
                    sealed.as_str(),
                    &other,
                    Purpose::ThreadsAccessToken,
                    "publish"
                )
                .await,
            Err(VaultError::Undecryptable)
        ));
    }
    assert_eq!(vault.kms_calls(), 0);
}

#[tokio::test]
async fn local_key_rotation_keeps_old_tokens_readable_and_seals_with_the_newest() {
    let (_sink, audit_a) = audit();
    let old = Vault::with_local_keys(ring(&[[1; 32]]), audit_a);
    let a = owner("user-a", "1784");
    let sealed_old = old
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();

    let (_sink, audit_b) = audit();
    let rotated = Vault::with_local_keys(ring(&[[2; 32], [1; 32]]), audit_b);
    let opened = rotated
        .unseal(
            sealed_old.as_str(),
            &a,
            Purpose::ThreadsAccessToken,
            "refresh",
        )
        .await
        .unwrap();
    assert_eq!(opened.expose(), TOKEN);
    let sealed_new = rotated
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    // The new token names the new key: the old vault cannot open it.
    assert!(matches!(
        old.unseal(sealed_new.as_str(), &a, Purpose::ThreadsAccessToken, "t")
            .await,
        Err(VaultError::UnknownLocalKey { .. })
    ));
    // Once the old key is dropped, its tokens name a key nobody holds.
    let (_sink, audit_c) = audit();
    let dropped = Vault::with_local_keys(ring(&[[2; 32]]), audit_c);
    let err = dropped
        .unseal(sealed_old.as_str(), &a, Purpose::ThreadsAccessToken, "t")
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::UnknownLocalKey { .. }), "{err}");
}

#[tokio::test]
async fn a_token_of_one_scheme_is_not_opened_by_the_other() {
    let a = owner("user-a", "1");
    let (_w, _s, kms) = careless_vault(CacheLimits::default());
    let (_sink, audit) = audit();
    let local = Vault::with_local_keys(ring(&[[1; 32]]), audit);
    let by_kms = kms
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    let by_local = local
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    assert!(matches!(
        local
            .unseal(by_kms.as_str(), &a, Purpose::ThreadsAccessToken, "t")
            .await,
        Err(VaultError::SchemeMismatch { .. })
    ));
    assert!(matches!(
        kms.unseal(by_local.as_str(), &a, Purpose::ThreadsAccessToken, "t")
            .await,
        Err(VaultError::SchemeMismatch { .. })
    ));
}

#[tokio::test]
async fn malformed_stored_values_are_typed_errors() {
    let (_sink, audit) = audit();
    let vault = Vault::with_local_keys(ring(&[[1; 32]]), audit);
    let a = owner("user-a", "1");
    let sealed = vault
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    let bytes = STANDARD.decode(sealed.as_str()).unwrap();
    let mut versionless = bytes.clone();
    versionless[0] = 0;
    let cases = [
        String::new(),
        TOKEN.to_owned(),
        STANDARD.encode(&bytes[..bytes.len() / 2]),
        STANDARD.encode(&versionless),
        STANDARD.encode(&bytes[1..]),
    ];
    for case in cases {
        let err = vault
            .unseal(&case, &a, Purpose::ThreadsAccessToken, "t")
            .await
            .unwrap_err();
        assert!(
            matches!(err, VaultError::Malformed(_) | VaultError::Undecryptable),
            "{err:?}"
        );
        assert!(!err.to_string().contains(TOKEN));
    }
    // Flipping any single byte of the body breaks authentication.
    for i in 4..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[i] ^= 0x01;
        let err = vault
            .unseal(
                &STANDARD.encode(&tampered),
                &a,
                Purpose::ThreadsAccessToken,
                "t",
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                VaultError::Undecryptable | VaultError::UnknownLocalKey { .. }
            ),
            "byte {i}: {err:?}"
        );
    }
}

#[tokio::test]
async fn errors_and_debug_output_never_contain_the_token_or_keys() {
    let (_sink, audit) = audit();
    let vault = Vault::with_local_keys(ring(&[[0x5A; 32]]), audit);
    let a = owner("user-a", "1");
    let sealed = vault
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    let opened = vault
        .unseal(sealed.as_str(), &a, Purpose::ThreadsAccessToken, "t")
        .await
        .unwrap();
    let err = vault
        .unseal(
            sealed.as_str(),
            &owner("user-b", "1"),
            Purpose::ThreadsAccessToken,
            "t",
        )
        .await
        .unwrap_err();
    let shown = format!("{opened:?} {err} {err:?} {vault:?} {sealed:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!shown.contains(sealed.as_str()), "{shown}");
    let key_b64 = STANDARD.encode([0x5A; 32]);
    assert!(!shown.contains(&key_b64), "{shown}");
}

#[tokio::test]
async fn the_largest_token_sealed_still_opens_and_larger_or_empty_ones_are_refused() {
    let (_w, _s, vault) = careless_vault(CacheLimits::default());
    let a = owner("user-a", "1");
    let largest = "T".repeat(MAX_TOKEN_BYTES);
    let sealed = vault
        .seal(&largest, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    assert!(sealed.as_str().len() <= MAX_SEALED_CHARS);
    let opened = vault
        .unseal(sealed.as_str(), &a, Purpose::ThreadsAccessToken, "t")
        .await
        .unwrap();
    assert_eq!(opened.expose(), largest);
    for bad in [String::new(), "T".repeat(MAX_TOKEN_BYTES + 1)] {
        assert!(matches!(
            vault.seal(&bad, &a, Purpose::ThreadsAccessToken).await,
            Err(VaultError::TokenSize)
        ));
    }
}

#[tokio::test]
async fn an_unauditable_opening_returns_no_token() {
    struct Broken;
    impl crate::audit::AuditSink for Broken {
        fn append<'a>(&'a self, _record: &'a AuditRecord) -> BoxFuture<'a, Result<(), AuditError>> {
            Box::pin(async {
                Err(AuditError::Store(crate::store::StoreError {
                    operation: "PutItem",
                    table: "audit".into(),
                    message: "unreachable".into(),
                }))
            })
        }
    }
    let vault = Vault::with_local_keys(ring(&[[1; 32]]), Audit::new(Arc::new(Broken), true));
    let a = owner("user-a", "1");
    let sealed = vault
        .seal(TOKEN, &a, Purpose::ThreadsAccessToken)
        .await
        .unwrap();
    let err = vault
        .unseal(sealed.as_str(), &a, Purpose::ThreadsAccessToken, "publish")
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Audit(_)), "{err:?}");
    assert!(err.is_retryable());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn opening_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let keys = ring(&[[1; 32]]);
        let ctx = Context::new(&owner("u", "1"), Purpose::ThreadsAccessToken).unwrap();
        if let Ok(envelope) = Envelope::decode(&STANDARD.encode(&bytes)) {
            let _ = open_local(&keys, &envelope, &ctx);
        }
    }

    #[test]
    fn opening_a_valid_header_with_random_tail_never_panics(
        id_matches in any::<bool>(), tail in proptest::collection::vec(any::<u8>(), 0..200)
    ) {
        let keys = ring(&[[1; 32]]);
        let ctx = Context::new(&owner("u", "1"), Purpose::ThreadsAccessToken).unwrap();
        let mut bytes = vec![1, 2, 0, 8];
        if id_matches {
            bytes.extend_from_slice(&LocalKey::from_bytes([1; 32]).id());
        } else {
            bytes.extend_from_slice(&[0; 8]);
        }
        bytes.extend_from_slice(&tail);
        if let Ok(envelope) = Envelope::from_bytes(&bytes) {
            let result = open_local(&keys, &envelope, &ctx);
            prop_assert!(!matches!(result, Ok(Some(_))), "random bytes authenticated");
        }
    }
}

#[test]
fn a_new_local_key_is_proved_against_the_old_one_without_naming_either() {
    let old = Secret::new("a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V2w3X4y5Z6a7B8c9D0e1F2");
    let new = Secret::new(STANDARD.encode([9u8; 32]));
    assert!(prove_local_key(&new, Some(&old)).is_ok());
    assert!(prove_local_key(&new, None).is_ok());
    assert!(prove_local_key(&old, Some(&old)).is_err(), "unchanged key");
    let err = prove_local_key(&Secret::new("planted-short"), Some(&old)).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("planted"), "{err}");
}
