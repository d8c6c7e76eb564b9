//! The OCI runtime spec (config.json) for one container, built by hand with serde_json. Pure.
//!
//! Shape follows what runc needs and what Docker gives a default container: private pid, ipc,
//! uts, mount and network namespaces; proc, dev, devpts, shm, mqueue, sysfs and a read-only
//! cgroup mount; Docker's default capabilities and masked paths; cgroup v1 limits under
//! `<cgroup_parent>/<id>`.

use serde_json::{Value, json};

use crate::runtime::ContainerSpec;

/// `/dev/shm` size when the task gives none (Titus's 64 MiB default).
pub(crate) const DEFAULT_SHM_BYTES: u64 = 64 * 1024 * 1024;

/// Docker's default capability set.
const CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: [&str; 9] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

const READONLY_PATHS: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The cgroup path of a container: `<parent>/<id>`.
pub(crate) fn cgroup_path(cgroup_parent: &str, id: &str) -> String {
    format!("{}/{id}", cgroup_parent.trim_end_matches('/'))
}

/// The OCI runtime spec of `spec`, its cgroup under `cgroup_parent`.
pub(crate) fn runtime_spec(spec: &ContainerSpec, cgroup_parent: &str) -> Value {
    let id = spec.id.as_str();
    let env: Vec<String> = spec
        .process
        .env
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let shm = spec.resources.shm_bytes.unwrap_or(DEFAULT_SHM_BYTES);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": spec.process.args,
            "env": env,
            "cwd": spec.process.working_dir,
            "capabilities": {
                "bounding": CAPABILITIES,
                "effective": CAPABILITIES,
                "permitted": CAPABILITIES,
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true,
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": spec.hostname.as_deref().unwrap_or(id),
        "mounts": mounts(shm),
        "annotations": spec.annotations,
        "linux": {
            "resources": resources(spec),
            "cgroupsPath": cgroup_path(cgroup_parent, id),
            "namespaces": [
                { "type": "pid" }, { "type": "ipc" }, { "type": "uts" },
                { "type": "mount" }, { "type": "network" },
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    })
}

fn mounts(shm_bytes: u64) -> Value {
    json!([
        { "destination": "/proc", "type": "proc", "source": "proc",
          "options": ["nosuid", "noexec", "nodev"] },
        { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
          "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
        { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
          "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
        { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
          "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_bytes}")] },
        { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
          "options": ["nosuid", "noexec", "nodev"] },
        { "destination": "/sys", "type": "sysfs", "source": "sysfs",
          "options": ["nosuid", "noexec", "nodev", "ro"] },
        { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
          "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] },
    ])
}

fn resources(spec: &ContainerSpec) -> Value {
    let r = &spec.resources;
    let mut resources = json!({
        // Deny every device; runc adds its default allow list (null, zero, tty, ...).
        "devices": [{ "allow": false, "access": "rwm" }],
    });
    if let Some(cpu) = r.cpu {
        let mut cpu_json = json!({ "shares": cpu.shares, "period": cpu.period_us });
        if let Some(quota) = cpu.quota_us {
            cpu_json["quota"] = json!(quota);
        }
        resources["cpu"] = cpu_json;
    }
    if let Some(bytes) = r.memory_bytes {
        // Same swap limit as memory: the container gets no swap.
        resources["memory"] = json!({ "limit": bytes, "swap": bytes });
    }
    if let Some(pids) = r.pids_limit {
        resources["pids"] = json!({ "limit": pids });
    }
    resources
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::runtime::{ContainerId, CpuLimit, LogPaths, ProcessSpec, Resources};

    fn spec(resources: Resources) -> ContainerSpec {
        let id = ContainerId::new("task-1").unwrap();
        ContainerSpec {
            logs: LogPaths::in_dir(Path::new("/logs"), &id),
            id,
            image: "reg/busybox:1".into(),
            process: ProcessSpec {
                args: vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
                env: vec![("PATH".into(), "/bin".into()), ("A".into(), "b=c".into())],
                working_dir: "/tmp".into(),
            },
            resources,
            hostname: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::from([("k".to_string(), "v".to_string())]),
        }
    }

    #[test]
    fn process_carries_args_env_and_cwd() {
        let s = runtime_spec(&spec(Resources::default()), "/titus");
        assert_eq!(s["process"]["args"], json!(["/bin/sh", "-c", "exit 3"]));
        assert_eq!(s["process"]["env"], json!(["PATH=/bin", "A=b=c"]));
        assert_eq!(s["process"]["cwd"], "/tmp");
        assert_eq!(s["hostname"], "task-1");
        assert_eq!(s["annotations"]["k"], "v");
        assert_eq!(s["root"]["path"], "rootfs");
    }

    #[test]
    fn limits_land_in_linux_resources_and_the_cgroup_is_under_the_parent() {
        let s = runtime_spec(
            &spec(Resources {
                cpu: Some(CpuLimit::from_cpus(1.5, false)),
                memory_bytes: Some(64 << 20),
                pids_limit: Some(100),
                shm_bytes: Some(1 << 20),
            }),
            "/titus/",
        );
        let r = &s["linux"]["resources"];
        assert_eq!(
            r["cpu"],
            json!({"shares": 1536, "period": 100000, "quota": 150000})
        );
        assert_eq!(r["memory"], json!({"limit": 64 << 20, "swap": 64 << 20}));
        assert_eq!(r["pids"], json!({"limit": 100}));
        assert_eq!(s["linux"]["cgroupsPath"], "/titus/task-1");
        let shm = s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        assert!(
            shm["options"]
                .as_array()
                .unwrap()
                .contains(&json!("size=1048576"))
        );
    }

    #[test]
    fn no_limits_means_no_cpu_memory_or_pids_sections_and_default_shm() {
        let s = runtime_spec(&spec(Resources::default()), "/titus");
        let r = &s["linux"]["resources"];
        assert!(r.get("cpu").is_none() && r.get("memory").is_none() && r.get("pids").is_none());
        let bursting = runtime_spec(
            &spec(Resources {
                cpu: Some(CpuLimit::from_cpus(2.0, true)),
                ..Resources::default()
            }),
            "/titus",
        );
        assert!(bursting["linux"]["resources"]["cpu"].get("quota").is_none());
        let text = s["mounts"].to_string();
        assert!(text.contains(&format!("size={DEFAULT_SHM_BYTES}")));
    }
}
