//! Titus's syntax rules for names, images and paths, as anchored regular expressions (Java's
//! `matches()` is a whole-string match).

use std::sync::LazyLock;

use regex::Regex;

/// Builds a constant pattern. The patterns are literals of this module, each exercised by the
/// tests below, so a failure here is a programming error caught before release.
#[allow(clippy::expect_used)]
fn pattern(re: &str) -> Regex {
    Regex::new(re).expect("constant validation pattern compiles")
}

/// Titus image names: letters, digits, `.`, `\`, `/`, `_`, `-`.
static IMAGE_NAME: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[a-zA-Z0-9.\\/_-]+$"));
/// A registry host with a port, the one extension this project allows in front of an image name.
static REGISTRY_HOST_PORT: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?:[0-9]{1,5}$"));
static IMAGE_TAG: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[a-zA-Z0-9._-]+$"));
/// Titus's loose port of Docker's digest grammar; `[+.-_]` is, as in Java, `+` plus the range
/// `.`..=`_`.
static IMAGE_DIGEST: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"^[A-Za-z][A-Za-z0-9]*(?:[+.-_][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
});
static DNS_LABEL: LazyLock<Regex> = LazyLock::new(|| pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"));
static DOTTED_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"^[a-z0-9]([\-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([\-a-z0-9]*[a-z0-9])?)*$")
});
static ABSOLUTE_PATH: LazyLock<Regex> = LazyLock::new(|| pattern(r"^/.*$"));
static SECURITY_GROUP: LazyLock<Regex> = LazyLock::new(|| pattern(r"^sg-.*$"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| pattern(r"^.*@.*$"));

/// An image name as Titus accepts it, optionally preceded by `host:port/` (a registry with a
/// port, e.g. `localhost:5000/titus/busybox`, which Titus's pattern refused because of `:`).
pub(crate) fn is_image_name(name: &str) -> bool {
    if IMAGE_NAME.is_match(name) {
        return true;
    }
    match name.split_once('/') {
        Some((host, rest)) => REGISTRY_HOST_PORT.is_match(host) && IMAGE_NAME.is_match(rest),
        None => false,
    }
}

pub(crate) fn is_image_tag(tag: &str) -> bool {
    IMAGE_TAG.is_match(tag)
}

pub(crate) fn is_image_digest(digest: &str) -> bool {
    IMAGE_DIGEST.is_match(digest)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`: container, volume and volume-mount names.
pub(crate) fn is_dns_label(name: &str) -> bool {
    DNS_LABEL.is_match(name)
}

/// DNS-label parts joined by dots: platform sidecar names and channels.
pub(crate) fn is_dotted_label(name: &str) -> bool {
    DOTTED_LABEL.is_match(name)
}

pub(crate) fn is_absolute_path(path: &str) -> bool {
    ABSOLUTE_PATH.is_match(path)
}

pub(crate) fn is_security_group(id: &str) -> bool {
    SECURITY_GROUP.is_match(id)
}

pub(crate) fn is_email(email: &str) -> bool {
    EMAIL.is_match(email)
}

/// Strict environment variable names: `^[A-Z_][A-Z0-9_]*$`. Returns Titus's reason when not.
pub(crate) fn env_name_violation(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_uppercase() || first == '_') {
        return Some("the environment name must start with an upper case ASCII letter or '_'");
    }
    if chars.any(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')) {
        return Some(
            "the environment name characters may be an upper case ASCII letter, a digit or '_'",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_follow_titus_plus_a_registry_port() {
        assert!(is_image_name("titus/busybox"));
        assert!(is_image_name("localhost:5000/titus/busybox"));
        assert!(is_image_name("registry.example.com/a/b"));
        assert!(!is_image_name("busybox:1"));
        assert!(!is_image_name("bad name"));
        assert!(!is_image_name(""));
    }

    #[test]
    fn tags_and_digests_follow_titus_patterns() {
        assert!(is_image_tag("1.2-rc_3"));
        assert!(!is_image_tag("a:b"));
        assert!(is_image_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_image_digest("sha256:abc"));
        assert!(!is_image_digest(&format!("1sha:{}", "a".repeat(32))));
    }

    #[test]
    fn names_paths_groups_and_emails() {
        assert!(is_dns_label("side-car1") && !is_dns_label("Side") && !is_dns_label("a-"));
        assert!(is_dotted_label("logs.v2") && !is_dotted_label("logs..v2"));
        assert!(is_absolute_path("/data") && !is_absolute_path("data"));
        assert!(is_security_group("sg-123") && !is_security_group("123"));
        assert!(is_email("a@b") && !is_email("ab"));
    }

    #[test]
    fn strict_env_names_refuse_lower_case_and_leading_digits() {
        assert_eq!(env_name_violation("PATH_2"), None);
        assert_eq!(env_name_violation("_X"), None);
        assert!(env_name_violation("path").is_some());
        assert!(env_name_violation("2X").is_some());
        assert!(env_name_violation("A-B").is_some());
    }
}
