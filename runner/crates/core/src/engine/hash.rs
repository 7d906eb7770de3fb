//! Pod-template and step hashes, as Argo computes them: FNV-32a, printed in decimal, then
//! "safe-encoded" into consonants and digits so a hash never spells a word.
//!
//! We hash our own JSON serialization of the template. Go's field order differs, so a hash we
//! compute for a template does not equal the one Argo would compute; this only matters when
//! taking over a ReplicaSet Argo created, and the engine then falls back to comparing templates.

use k8s_openapi::api::core::v1::PodTemplateSpec;

use rollout_runner_api::crd::CanaryStep;

const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv32a(chunks: &[&[u8]]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for chunk in chunks {
        for byte in *chunk {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    hash
}

/// Kubernetes' `rand.SafeEncodeString`.
pub fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// The `rollouts-pod-template-hash` of a template and collision count.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    // Serializing a k8s-openapi struct cannot fail: it has no maps with non-string keys.
    let json = serde_json::to_vec(template).unwrap_or_default();
    let hash = match collision_count {
        Some(count) => {
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
            fnv32a(&[&json, &bytes])
        }
        None => fnv32a(&[&json]),
    };
    safe_encode(&hash.to_string())
}

/// Argo's `ComputeStepHash`: the hash of the canary steps ("" for no canary).
///
/// Every reconcile asks for it, and hashing means serializing every step: with thousands of
/// steps that made a release quadratic in their number. The last answer is kept per thread
/// and reused while the steps compare equal, which costs a comparison, not a serialization.
pub fn step_hash(steps: &[CanaryStep]) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(Vec<CanaryStep>, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some((cached_steps, hash)) = last.as_ref()
            && cached_steps.as_slice() == steps
        {
            return hash.clone();
        }
        let json = serde_json::to_vec(steps).unwrap_or_default();
        let hash = safe_encode(&fnv32a(&[&json]).to_string());
        *last = Some((steps.to_vec(), hash.clone()));
        hash
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv32a_matches_reference_vectors() {
        // Published FNV-1a 32-bit test vectors.
        assert_eq!(fnv32a(&[b""]), 0x811c9dc5);
        assert_eq!(fnv32a(&[b"a"]), 0xe40c292c);
        assert_eq!(fnv32a(&[b"foobar"]), 0xbf9cf968);
        assert_eq!(fnv32a(&[b"foo", b"bar"]), 0xbf9cf968);
    }

    #[test]
    fn the_kept_step_hash_follows_the_steps() {
        let steps = |weight| {
            vec![CanaryStep {
                set_weight: Some(weight),
                ..CanaryStep::default()
            }]
        };
        let uncached = |steps: &[CanaryStep]| {
            safe_encode(&fnv32a(&[&serde_json::to_vec(steps).unwrap()]).to_string())
        };
        for weight in [10, 10, 20, 10] {
            assert_eq!(step_hash(&steps(weight)), uncached(&steps(weight)));
        }
        assert_ne!(step_hash(&steps(10)), step_hash(&steps(20)));
    }

    #[test]
    fn safe_encoding_uses_only_the_safe_alphabet() {
        let encoded = safe_encode("1234567890");
        assert_eq!(encoded.len(), 10);
        assert!(encoded.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        // '0' is byte 48; 48 % 27 = 21, the alphabet's 22nd character
        assert_eq!(safe_encode("0"), "4");
    }

    #[test]
    fn collision_count_changes_the_hash() {
        let template = PodTemplateSpec::default();
        let plain = pod_template_hash(&template, None);
        assert_eq!(plain, pod_template_hash(&template, None));
        assert_ne!(plain, pod_template_hash(&template, Some(1)));
        assert_ne!(
            pod_template_hash(&template, Some(1)),
            pod_template_hash(&template, Some(2))
        );
    }
}
