//! Identifiers: status update uuids and Mesos's ID validation.

/// 16 random bytes (a v4 UUID), as status updates carry.
#[cfg(feature = "full")]
pub fn new_uuid_bytes() -> Vec<u8> {
    uuid::Uuid::new_v4().as_bytes().to_vec()
}

/// Mesos's `validateID` for task, executor and framework IDs.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("ID must not be empty".into());
    }
    if id.len() > 255 {
        return Err(format!(
            "ID must be at most 255 bytes long, got {}",
            id.len()
        ));
    }
    if id == "." || id == ".." {
        return Err(format!("'{id}' is disallowed"));
    }
    if id.chars().any(|c| c.is_control()) {
        return Err("ID must not contain control characters".into());
    }
    if id.contains('/') || id.contains('\\') {
        return Err("ID must not contain slash or backslash".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_mesos() {
        assert!(validate_id("task-1.a_b").is_ok());
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&"x".repeat(256)).is_err());
        assert_eq!(new_uuid_bytes().len(), 16);
    }
}
