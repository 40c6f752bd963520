//! Changes the helper makes to a spec before libcontainer reads it, where libcontainer 0.7 reads a valid
//! spec differently from runc. Each change keeps the spec's meaning under runtime-spec `config.md`, so
//! the file stays right for runc too; the file is rewritten (by rename) only when something changed.
//!
//! - `process.noNewPrivileges: false` is removed (false is the default when absent). libcontainer loads
//!   the seccomp filter before dropping capabilities only when the field is absent; when it is present,
//!   even as false, it loads the filter after the drop, where the kernel refuses a filter to a process
//!   without CAP_SYS_ADMIN or no_new_privs, and the container fails with "failed to load seccomp context".

use std::path::Path;

use serde_json::Value;

/// Adapts `<bundle>/config.json` for libcontainer.
pub(super) fn adapt_bundle(bundle: &Path) -> Result<(), String> {
    adapt_file(&bundle.join("config.json"), |spec| spec.get_mut("process").is_some_and(adapt_process))
}

/// Adapts an exec's process file (runtime-spec `config.md` "process") for libcontainer.
pub(super) fn adapt_process_file(path: &Path) -> Result<(), String> {
    adapt_file(path, adapt_process)
}

/// Applies the process rules; whether anything changed.
fn adapt_process(process: &mut Value) -> bool {
    let Some(process) = process.as_object_mut() else { return false };
    if process.get("noNewPrivileges") == Some(&Value::Bool(false)) {
        process.remove("noNewPrivileges");
        return true;
    }
    false
}

fn adapt_file(path: &Path, adapt: impl FnOnce(&mut Value) -> bool) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut document: Value =
        serde_json::from_slice(&text).map_err(|error| format!("cannot parse {}: {error}", path.display()))?;
    if !adapt(&mut document) {
        return Ok(());
    }
    let temporary = path.with_extension("embedded-tmp");
    let text = serde_json::to_vec(&document)
        .map_err(|error| format!("cannot serialize {}: {error}", path.display()))?;
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|error| format!("cannot rewrite {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_a_false_no_new_privileges_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"noNewPrivileges":false}}"#,
        )
        .unwrap();
        adapt_bundle(dir.path()).unwrap();
        let adapted: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        assert_eq!(adapted["process"].get("noNewPrivileges"), None);
        assert_eq!(adapted["process"]["args"][0], "sh");

        let process = dir.path().join("process.json");
        std::fs::write(&process, r#"{"args":["sh"],"noNewPrivileges":true}"#).unwrap();
        adapt_process_file(&process).unwrap();
        let kept: Value = serde_json::from_slice(&std::fs::read(&process).unwrap()).unwrap();
        assert_eq!(kept["noNewPrivileges"], true);
        assert!(adapt_bundle(&dir.path().join("missing")).unwrap_err().contains("missing"));
    }
}
