//! Allocator flags in Mesos's text forms.

/// `--weights=role1=2,role2=3.5`.
pub fn parse_weights(text: &str) -> Result<Vec<(String, f64)>, String> {
    text.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (role, weight) = item
                .split_once('=')
                .ok_or_else(|| format!("'{item}' is not ROLE=WEIGHT in --weights"))?;
            let weight: f64 = weight
                .trim()
                .parse()
                .map_err(|_| format!("'{item}': the weight must be a number in --weights"))?;
            if !weight.is_finite() || weight <= 0.0 {
                return Err(format!(
                    "'{item}': the weight must be a positive number in --weights"
                ));
            }
            let role = role.trim();
            if role.is_empty() {
                return Err(format!("'{item}': the role is empty in --weights"));
            }
            Ok((role.to_string(), weight))
        })
        .collect()
}

/// `--roles=a,b`: the deprecated whitelist of roles frameworks may use.
pub fn parse_roles(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_roles() {
        assert_eq!(
            parse_weights("a=1, b/c=3.5").unwrap(),
            vec![("a".to_string(), 1.0), ("b/c".to_string(), 3.5)]
        );
        assert!(parse_weights("a").is_err());
        assert!(parse_weights("a=0").is_err());
        assert!(parse_weights("a=x").is_err());
        assert_eq!(parse_roles("a, b,,"), vec!["a", "b"]);
    }
}
