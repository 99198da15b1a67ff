//! Identifiers that must be unique, not secret: request ids and trace ids.
//!
//! `uuid::Uuid::new_v4` asks the kernel for 16 random bytes each time (a `getrandom` system
//! call); on the invoke path that is two system calls per invocation for values nobody needs to
//! be unguessable. These come from a per-thread generator seeded once from the OS instead. Keep
//! `Uuid::new_v4` for anything that guards access.

/// A random (version 4) UUID from the per-thread generator.
pub fn fast_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

/// A request id as AWS prints them: a hyphenated lower-case UUID.
pub fn new_request_id() -> String {
    fast_uuid().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids_and_differ() {
        let first = new_request_id();
        let second = new_request_id();
        assert_ne!(first, second);
        let parsed = uuid::Uuid::parse_str(&first).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(first.len(), 36);
    }

    #[test]
    fn threads_do_not_repeat_each_other() {
        let ids: Vec<String> = (0..4)
            .map(|_| std::thread::spawn(|| (0..1000).map(|_| new_request_id()).collect::<Vec<_>>()))
            .flat_map(|thread| thread.join().expect("thread"))
            .collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
