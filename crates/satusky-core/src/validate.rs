//! Input rules shared by every service. Each returns a message that names the
//! field and says what is allowed.

use crate::{Error, Result};

/// Organization slugs: 3 to 40 characters, lowercase ASCII letters, digits
/// and `-`, starting with a letter, not ending with `-`, no `--`.
pub fn slug(field: &str, s: &str) -> Result<()> {
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let starts = s.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if !(3..=40).contains(&s.len()) || !ok_chars || !starts || s.ends_with('-') || s.contains("--")
    {
        return Err(Error::validation(format!(
            "{field} `{s}` is invalid: use 3 to 40 lowercase letters, digits and single dashes, \
             starting with a letter and not ending with a dash"
        )));
    }
    Ok(())
}

/// Display names: 1 to 100 characters after trimming, no control characters.
pub fn display_name(field: &str, s: &str) -> Result<String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 100 || t.chars().any(char::is_control) {
        return Err(Error::validation(format!(
            "{field} must be 1 to 100 printable characters"
        )));
    }
    Ok(t.to_owned())
}

/// A plausible email: one `@`, a non-empty local part, a dotted domain, at
/// most 254 characters. Returns it lowercased and trimmed.
pub fn email(s: &str) -> Result<String> {
    let e = s.trim().to_lowercase();
    let valid = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !valid {
        return Err(Error::validation(format!(
            "email `{}` is not a valid address",
            s.trim()
        )));
    }
    Ok(e)
}

/// Passwords: 10 to 256 characters.
pub fn password(field: &str, s: &str) -> Result<()> {
    let n = s.chars().count();
    if n < 10 {
        return Err(Error::validation(format!(
            "{field} must be at least 10 characters"
        )));
    }
    if n > 256 {
        return Err(Error::validation(format!(
            "{field} must be at most 256 characters"
        )));
    }
    Ok(())
}

/// Token names: 1 to 64 characters of letters, digits, `-`, `_`, `.`.
pub fn token_name(s: &str) -> Result<()> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Error::validation(format!(
            "token name `{s}` is invalid: use 1 to 64 letters, digits, `-`, `_` or `.`"
        )));
    }
    Ok(())
}

/// The Kubernetes namespace for an organization slug, with a numeric suffix
/// for the `n`th attempt (the first is unsuffixed). Always a DNS-1123 label.
pub fn namespace_for(slug: &str, attempt: u32) -> String {
    if attempt == 0 {
        format!("org-{slug}")
    } else {
        format!("org-{slug}-{}", attempt + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_rules() {
        for ok in ["acme", "a-b-c", "team42", "abc"] {
            assert!(slug("slug", ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Acme",
            "1abc",
            "abc-",
            "a--b",
            "a_b",
            "ábc",
            &"a".repeat(41),
        ] {
            assert!(slug("slug", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(email("  Alice@Example.COM ").unwrap(), "alice@example.com");
        for bad in [
            "",
            "alice",
            "@example.com",
            "a@b",
            "a@.com",
            "a b@c.com",
            "a@b@c.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespaces_are_dns_labels_and_distinct_per_attempt() {
        assert_eq!(namespace_for("acme", 0), "org-acme");
        assert_eq!(namespace_for("acme", 1), "org-acme-2");
        assert!(namespace_for(&"a".repeat(40), 99).len() <= 63);
    }

    #[test]
    fn passwords_and_token_names_have_bounds() {
        assert!(password("password", "short").is_err());
        assert!(password("password", "long enough pw").is_ok());
        assert!(token_name("ci-deploy_1.0").is_ok());
        assert!(token_name("has space").is_err());
        assert!(token_name("").is_err());
    }
}
