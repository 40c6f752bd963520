//! A fake credential helper for tests: a shell script keeping one JSON file per server in a state dir,
//! speaking the docker-credential-helpers protocol, found through an explicit search path.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Keeps credentials in `$state/<server with non-alphanumerics as '_'>`; logs each action to `$state/calls`.
const FAKE_HELPER: &str = r#"#!/bin/sh
state="$(dirname "$0")/state"
mkdir -p "$state"
action="$1"
input="$(cat)"
echo "$action" >> "$state/calls"
file_for() { echo "$state/$(printf %s "$1" | sed 's/[^A-Za-z0-9]/_/g')"; }
case "$action" in
get)
  file="$(file_for "$input")"
  if [ -f "$file" ]; then cat "$file"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
  server="$(printf %s "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')"
  printf %s "$input" > "$(file_for "$server")" ;;
erase)
  file="$(file_for "$input")"
  if [ -f "$file" ]; then rm "$file"; else echo "credentials not found in native keychain"; exit 1; fi ;;
list)
  printf '{"reg.example":"bob","https://index.docker.io/v1/":"hubuser"}' ;;
*)
  echo "unknown action $action"; exit 2 ;;
esac
"#;

pub(crate) fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Installs the fake helper `docker-credential-<name>` in `dir` and returns the search path to find it.
pub(crate) fn fake_helper(dir: &Path, name: &str) -> OsString {
    write_script(dir, name, FAKE_HELPER);
    dir.as_os_str().to_owned()
}

/// Stores a credential in the fake helper's state directly, as if the user had logged in with Docker.
pub(crate) fn seed_fake_helper(dir: &Path, server: &str, username: &str, secret: &str) {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let file: String = server.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let json = serde_json::json!({ "ServerURL": server, "Username": username, "Secret": secret });
    std::fs::write(state.join(file), json.to_string()).unwrap();
}

/// The actions the fake helper was asked to perform, in order.
pub(crate) fn helper_calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("state/calls")).unwrap_or_default().lines().map(str::to_owned).collect()
}
