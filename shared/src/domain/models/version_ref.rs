//! How a path names a version: `v2.0`, `v2`, `2`, or `latest` (the newest READY version).

use crate::domain::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    Number(u32),
    Latest,
}

impl VersionRef {
    pub fn parse(text: &str) -> Result<VersionRef, DomainError> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("latest") {
            return Ok(VersionRef::Latest);
        }
        let digits = t.strip_prefix(['v', 'V']).unwrap_or(t);
        let major = digits.strip_suffix(".0").unwrap_or(digits);
        match major.parse::<u32>() {
            Ok(n) if n >= 1 && !major.starts_with('+') => Ok(VersionRef::Number(n)),
            _ => Err(DomainError::not_found(format!(
                "{text:?} is not a version; use v2.0, v2, 2 or latest"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_form_parses() {
        for form in ["v2.0", "v2", "2", "V2.0"] {
            assert_eq!(
                VersionRef::parse(form).ok(),
                Some(VersionRef::Number(2)),
                "{form}"
            );
        }
        assert_eq!(VersionRef::parse("latest").ok(), Some(VersionRef::Latest));
        for bad in ["", "v", "v0", "0", "v2.1", "two", "+2", "-1", "v2.0.0"] {
            assert!(VersionRef::parse(bad).is_err(), "{bad}");
        }
    }
}
