//! Platforms (OCI image index spec, "platform" object) and the matching rules used to pick a manifest out of
//! an index. Matching follows containerd's normalization (`platforms` package): `x86_64` is `amd64`,
//! `aarch64` is `arm64`, arm64 without a variant is v8, arm without a variant is v7, and amd64 micro-
//! architecture levels (v2, v3) only matter when both sides name one.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// An operating system, CPU architecture and optional variant: "linux/arm64/v8".
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Parses "os/architecture[/variant]", lowercasing and mapping architecture aliases (x86_64, aarch64).
    pub fn parse(input: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = input.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(Error::platform(
                input,
                "expected \"os/architecture\" or \"os/architecture/variant\"",
            ));
        }
        for (part, what) in parts.iter().zip(["os", "architecture", "variant"]) {
            if part.is_empty() {
                return Err(Error::platform(input, format!("{what} is empty")));
            }
            if let Some(bad) =
                part.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            {
                return Err(Error::platform(input, format!("{what} contains invalid character {bad:?}")));
            }
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: normalize_architecture(&parts[1].to_ascii_lowercase()).to_owned(),
            variant: parts.get(2).map(|variant| variant.to_ascii_lowercase()),
        })
    }

    /// The platform berth itself runs on.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Whether a manifest for `os/architecture/variant` (as an index lists it) runs on this platform.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        if !self.os.eq_ignore_ascii_case(os) {
            return false;
        }
        let wanted_architecture = normalize_architecture(&self.architecture);
        let offered_architecture = normalize_architecture(&architecture.to_ascii_lowercase()).to_owned();
        if wanted_architecture != offered_architecture {
            return false;
        }
        let wanted_variant = normalize_variant(wanted_architecture, self.variant.as_deref());
        let offered_variant = normalize_variant(wanted_architecture, variant);
        match wanted_architecture {
            // arm and arm64 have a default variant, so a missing one equals that default.
            "arm" | "arm64" => wanted_variant == offered_variant,
            // Elsewhere a variant is a refinement: it only rules out a match when both sides name one.
            _ => match (wanted_variant, offered_variant) {
                (Some(wanted), Some(offered)) => wanted == offered,
                _ => true,
            },
        }
    }
}

fn normalize_architecture(architecture: &str) -> &str {
    match architecture {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        other => other,
    }
}

/// The variant to compare: lowercase with a leading 'v', arm64's default v8 as none, arm's none as v7.
fn normalize_variant(architecture: &str, variant: Option<&str>) -> Option<String> {
    let variant = variant.filter(|v| !v.is_empty()).map(|v| {
        let lower = v.to_ascii_lowercase();
        if lower.starts_with(|c: char| c.is_ascii_digit()) { format!("v{lower}") } else { lower }
    });
    match (architecture, variant.as_deref()) {
        ("arm64", Some("v8")) => None,
        ("arm", None) => Some("v7".to_owned()),
        _ => variant,
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(input: &str) -> Result<Platform, Error> {
        Platform::parse(input)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(formatter, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let platform = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(platform.os, "linux");
        assert_eq!(platform.architecture, "arm64");
        assert_eq!(platform.variant.as_deref(), Some("v8"));
        assert_eq!(platform.to_string(), "linux/arm64/v8");
        assert_eq!(Platform::parse("linux/amd64").unwrap().to_string(), "linux/amd64");
        assert_eq!(Platform::parse("Linux/X86_64").unwrap().to_string(), "linux/amd64");
        assert_eq!(Platform::parse("linux/aarch64").unwrap().architecture, "arm64");
        let from_str: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(from_str.variant.as_deref(), Some("v7"));
    }

    #[test]
    fn rejects_malformed_platforms() {
        for (input, expected) in [
            ("linux", "expected"),
            ("linux/amd64/v3/x", "expected"),
            ("/amd64", "os is empty"),
            ("linux/", "architecture is empty"),
            ("linux/arm/", "variant is empty"),
            ("linux/am d64", "invalid character ' '"),
        ] {
            match Platform::parse(input) {
                Err(Error::InvalidPlatform { input: got, reason }) => {
                    assert_eq!(got, input);
                    assert!(reason.contains(expected), "{input:?}: {reason}");
                }
                other => panic!("{input:?} should fail, got {other:?}"),
            }
        }
    }

    #[test]
    fn arm64_v8_equals_no_variant() {
        let wanted = Platform::parse("linux/arm64/v8").unwrap();
        assert!(wanted.matches("linux", "arm64", None));
        assert!(wanted.matches("linux", "arm64", Some("v8")));
        assert!(!wanted.matches("linux", "arm64", Some("v9")));
        let bare = Platform::parse("linux/arm64").unwrap();
        assert!(bare.matches("linux", "arm64", Some("v8")));
        assert!(bare.matches("linux", "arm64", None));
    }

    #[test]
    fn arm_variants_must_agree_and_default_to_v7() {
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(v7.matches("linux", "arm", Some("v7")));
        assert!(v7.matches("linux", "arm", None));
        assert!(!v7.matches("linux", "arm", Some("v6")));
        let v6 = Platform::parse("linux/arm/v6").unwrap();
        assert!(!v6.matches("linux", "arm", None));
        assert!(v6.matches("linux", "arm", Some("6")));
    }

    #[test]
    fn amd64_ignores_variant_unless_both_given() {
        let plain = Platform::parse("linux/amd64").unwrap();
        assert!(plain.matches("linux", "amd64", None));
        assert!(plain.matches("linux", "amd64", Some("v3")));
        let v3 = Platform::parse("linux/amd64/v3").unwrap();
        assert!(v3.matches("linux", "amd64", None));
        assert!(v3.matches("linux", "amd64", Some("v3")));
        assert!(!v3.matches("linux", "amd64", Some("v2")));
    }

    #[test]
    fn os_and_architecture_must_match() {
        let plain = Platform::parse("linux/amd64").unwrap();
        assert!(!plain.matches("windows", "amd64", None));
        assert!(!plain.matches("linux", "arm64", None));
        assert!(plain.matches("linux", "x86_64", None));
        assert!(!plain.matches("linux", "386", None));
    }

    #[test]
    fn host_platform_matches_itself() {
        let host = Platform::host();
        assert_eq!(host.os, std::env::consts::OS);
        assert!(host.matches(&host.os, &host.architecture, host.variant.as_deref()));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host.to_string(), "linux/amd64");
        }
        if cfg!(target_arch = "aarch64") {
            assert_eq!(host.to_string(), "linux/arm64/v8");
        }
    }
}
