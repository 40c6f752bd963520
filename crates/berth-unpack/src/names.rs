//! Entry names: cleaning tar paths into paths relative to the layer root, and recognizing overlay
//! whiteouts (OCI image spec layer.md "Whiteouts").
//!
//! Cleaning is lexical and strict; confinement itself does not depend on it (every path is resolved by the
//! kernel with `RESOLVE_IN_ROOT`), but rejecting an escaping `..` early gives a clear error.

/// Writes the cleaned form of `raw` into `out`: components joined by '/', no leading or trailing '/', no "."
/// components, ".." applied lexically. Leading "/" and "./" are dropped (absolute names are relative to the
/// layer root, as in Docker). An empty result means the root itself.
pub(crate) fn clean(raw: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    out.clear();
    if raw.contains(&0) {
        return Err("the name contains a NUL byte");
    }
    for component in raw.split(|byte| *byte == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return Err("the name escapes the layer root with \"..\"");
                }
                let cut = out.iter().rposition(|byte| *byte == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(component);
            }
        }
    }
    Ok(())
}

/// Splits a cleaned, non-empty path into (parent, last component); the parent of a top-level name is "".
pub(crate) fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|byte| *byte == b'/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (&path[..0], path),
    }
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
/// AUFS bookkeeping entries (".wh..wh.plnk", ".wh..wh.aufs"): meaningless to overlay.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind<'name> {
    Plain,
    /// The parent directory hides everything below it in lower layers.
    Opaque,
    /// The named sibling is deleted in this layer.
    Whiteout(&'name [u8]),
    AufsMeta,
}

/// Classifies the last component of an entry name.
pub(crate) fn classify(name: &[u8]) -> Result<Kind<'_>, &'static str> {
    if name == OPAQUE {
        return Ok(Kind::Opaque);
    }
    if name.starts_with(AUFS_META_PREFIX) {
        return Ok(Kind::AufsMeta);
    }
    match name.strip_prefix(WHITEOUT_PREFIX) {
        None => Ok(Kind::Plain),
        Some(b"" | b"." | b"..") => Err("the whiteout names no file in its directory"),
        Some(target) => Ok(Kind::Whiteout(target)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(raw: &str) -> Result<String, &'static str> {
        let mut out = Vec::new();
        clean(raw.as_bytes(), &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn clean_strips_prefixes_and_dots() {
        assert_eq!(cleaned("./usr/bin/ls").unwrap(), "usr/bin/ls");
        assert_eq!(cleaned("/etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(cleaned("//a/./b//c/").unwrap(), "a/b/c");
        assert_eq!(cleaned("a/b/../c").unwrap(), "a/c");
        assert_eq!(cleaned("./").unwrap(), "");
    }

    #[test]
    fn clean_rejects_escapes_and_nul() {
        assert!(cleaned("../etc/passwd").is_err());
        assert!(cleaned("a/../../b").is_err());
        assert!(cleaned("/..").is_err());
        assert!(cleaned("a\0b").is_err());
    }

    #[test]
    fn split_gives_parent_and_name() {
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
    }

    #[test]
    fn classify_whiteouts() {
        assert_eq!(classify(b"file").unwrap(), Kind::Plain);
        assert_eq!(classify(b".wh..wh..opq").unwrap(), Kind::Opaque);
        assert_eq!(classify(b".wh..wh.plnk").unwrap(), Kind::AufsMeta);
        assert_eq!(classify(b".wh.gone").unwrap(), Kind::Whiteout(b"gone"));
        assert_eq!(classify(b".wh..hidden").unwrap(), Kind::Whiteout(b".hidden"));
        for bad in [&b".wh."[..], b".wh..", b".wh..."] {
            assert!(classify(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
