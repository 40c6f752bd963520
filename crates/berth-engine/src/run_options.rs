//! Turning `docker run`-style flag values into runtime options: sizes, env files, volumes, mounts.
//! Parsing lives here, not in the CLI, so every front end gets the same rules and messages.

use std::path::{Path, PathBuf};

use berth_runtime::BindMount;

use crate::Error;

/// `--memory 512m`, `1g`, `1048576`: bytes. Suffixes b, k, m, g (powers of 1024, as Docker).
pub fn parse_size(value: &str) -> Result<i64, Error> {
    let lower = value.trim().to_ascii_lowercase();
    let (number, unit) = match lower.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let multiplier: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(Error::Usage(format!("invalid size {value:?}: use a number with b, k, m or g"))),
    };
    let number: f64 = number.parse().map_err(|_| Error::Usage(format!("invalid size {value:?}")))?;
    if number <= 0.0 {
        return Err(Error::Usage(format!("invalid size {value:?}: must be positive")));
    }
    Ok((number * multiplier) as i64)
}

/// `-e KEY=VALUE` passes through; `-e KEY` takes KEY from berth's environment and is dropped when unset
/// (Docker's rule).
pub fn resolve_env(raw: &[String], lookup: impl Fn(&str) -> Option<String>) -> Vec<String> {
    raw.iter()
        .filter_map(|entry| {
            if entry.contains('=') {
                Some(entry.clone())
            } else {
                lookup(entry).map(|value| format!("{entry}={value}"))
            }
        })
        .collect()
}

/// An `--env-file`: one `KEY=VALUE` or `KEY` per line; blank lines and `#` comments skipped.
pub fn read_env_file(path: &Path) -> Result<Vec<String>, Error> {
    let text =
        std::fs::read_to_string(path).map_err(Error::io(format!("reading env file {}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// `-v /host/path:/container/path[:ro|rw]`. Named volumes are not supported yet: the source must be an
/// absolute host path; it is created when missing, as Docker does.
pub fn parse_volume(value: &str) -> Result<BindMount, Error> {
    let parts: Vec<&str> = value.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        [source, destination] => (*source, *destination, ""),
        [source, destination, mode] => (*source, *destination, *mode),
        _ => {
            return Err(Error::Usage(format!(
                "invalid volume {value:?}: use /host/path:/container/path[:ro]"
            )));
        }
    };
    if !source.starts_with('/') {
        return Err(Error::Usage(format!(
            "invalid volume {value:?}: named volumes are not supported; give an absolute host path"
        )));
    }
    if !destination.starts_with('/') {
        return Err(Error::Usage(format!("invalid volume {value:?}: the container path must be absolute")));
    }
    let read_only = match mode {
        "" | "rw" => false,
        "ro" => true,
        other => {
            return Err(Error::Usage(format!("invalid volume mode {other:?} in {value:?}: use ro or rw")));
        }
    };
    Ok(BindMount { source: PathBuf::from(source), destination: destination.to_string(), read_only })
}

/// `--mount type=bind,source=/a,target=/b[,readonly]`.
pub fn parse_mount(value: &str) -> Result<BindMount, Error> {
    let mut kind = None;
    let mut source = None;
    let mut target = None;
    let mut read_only = false;
    for field in value.split(',') {
        let (key, val) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "type" => kind = Some(val.to_string()),
            "source" | "src" => source = Some(val.to_string()),
            "target" | "destination" | "dst" => target = Some(val.to_string()),
            "readonly" | "ro" => read_only = val.is_empty() || val == "true" || val == "1",
            other => return Err(Error::Usage(format!("unknown --mount option {other:?} in {value:?}"))),
        }
    }
    if kind.as_deref().unwrap_or("bind") != "bind" {
        return Err(Error::Usage(format!("--mount {value:?}: only type=bind is supported")));
    }
    match (source, target) {
        (Some(source), Some(target)) => {
            parse_volume(&format!("{source}:{target}:{}", if read_only { "ro" } else { "rw" }))
        }
        _ => Err(Error::Usage(format!("--mount {value:?} needs source= and target="))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("32m").unwrap(), 32 * 1024 * 1024);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 * 1024);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("64MB").unwrap(), 64 * 1024 * 1024);
        assert!(parse_size("12x").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn env_without_value_comes_from_berth() {
        let env =
            resolve_env(&["A=1".into(), "B".into(), "C".into()], |k| (k == "B").then(|| "two".to_string()));
        assert_eq!(env, vec!["A=1".to_string(), "B=two".to_string()]);
    }

    #[test]
    fn volumes() {
        let v = parse_volume("/tmp/x:/data:ro").unwrap();
        assert!(v.read_only);
        assert_eq!(v.destination, "/data");
        assert!(parse_volume("named:/data").unwrap_err().to_string().contains("named volumes"));
        assert!(parse_volume("/a:b").is_err());
        let m = parse_mount("type=bind,source=/a,target=/b,readonly").unwrap();
        assert!(m.read_only);
        assert_eq!(m.source, PathBuf::from("/a"));
        assert!(parse_mount("type=volume,source=a,target=/b").is_err());
    }

    #[test]
    fn env_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        std::fs::write(&path, "# comment\nA=1\n\n  B=2\nC\n").unwrap();
        assert_eq!(read_env_file(&path).unwrap(), vec!["A=1", "B=2", "C"]);
    }
}
