//! berth's default seccomp profile: a compact deny-list rather than Docker's full allow-list. It refuses,
//! with EPERM, the system calls Docker's default profile refuses to unprivileged containers that matter
//! most (kernel modules, kexec, handle-based opens that escape bind mounts, keyrings, mount APIs,
//! namespaces, clock changes, swap, reboot, bpf, perf, userfaultfd). Everything else is allowed; the
//! capability set already stops most of these, so this is a second wall, not the only one.
//!
//! Format: OCI runtime spec, config-linux.md "Seccomp". runc ignores names its libseccomp does not know
//! on this architecture (e.g. `vm86` on x86_64), so one list serves every architecture.

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder};

use crate::error::Error;

/// System calls refused with EPERM.
pub(crate) const DENIED_SYSCALLS: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "_sysctl",
    "sysfs",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// EPERM: what a caller lacking the privilege would see anyway.
const EPERM: u32 = 1;

/// The profile: allow by default, refuse [`DENIED_SYSCALLS`] on the host's native and compat ABIs.
pub(crate) fn default_profile() -> Result<LinuxSeccomp, Error> {
    let spec_error =
        |error: oci_spec::OciSpecError| Error::SpecBuild { part: "seccomp", reason: error.to_string() };
    let rule = LinuxSyscallBuilder::default()
        .names(DENIED_SYSCALLS.iter().map(|name| name.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(EPERM)
        .build()
        .map_err(spec_error)?;
    let mut builder =
        LinuxSeccompBuilder::default().default_action(LinuxSeccompAction::ScmpActAllow).syscalls(vec![rule]);
    // A deny-list must cover the compat ABIs too, or a 32-bit syscall entry would walk around it.
    let architectures = match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        _ => Vec::new(),
    };
    if !architectures.is_empty() {
        builder = builder.architectures(architectures);
    }
    builder.build().map_err(spec_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_denies_module_loading_with_eperm() {
        let profile = default_profile().unwrap();
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActAllow);
        let rules = profile.syscalls().as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(rules[0].errno_ret(), Some(EPERM));
        for name in ["init_module", "kexec_load", "open_by_handle_at", "unshare"] {
            assert!(rules[0].names().iter().any(|listed| listed == name), "{name} missing");
        }
    }
}
