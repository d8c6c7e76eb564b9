//! The environment the Titus agent injects into a task's container (titus-semantics §13.2), as a
//! pure function of task facts and host facts, so the node half computes it and tests can pin it.
//!
//! Layers, lowest priority first: hard-coded values; values copied from the host; resources;
//! naming (app, stack, detail, cluster, ASG); the Pod container's env (user env plus the control
//! plane's variables of §10.4); then agent overrides (image, IAM, network, batch, IMDS, runtime).

use std::collections::BTreeMap;

/// Hard-coded variables (layer 1).
pub const HARDCODED: [(&str, &str); 4] = [
    ("NETFLIX_APPUSER", "appuser"),
    ("EC2_DOMAIN", "amazonaws.com"),
    ("AWS_METADATA_SERVICE_TIMEOUT", "5"),
    ("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "3"),
];

/// Host variables copied as they are (layer 2).
pub const COPIED_FROM_HOST: [&str; 7] = [
    "NETFLIX_ENVIRONMENT",
    "NETFLIX_ACCOUNT",
    "EC2_INSTANCE_ID",
    "EC2_REGION",
    "EC2_AVAILABILITY_ZONE",
    "EC2_OWNER_ID",
    "EC2_RESERVATION_ID",
];

/// What the agent knows about its host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Host variables to copy (the [`COPIED_FROM_HOST`] names, plus `TITUS_STACK`).
    pub env: BTreeMap<String, String>,
}

impl HostFacts {
    /// Picks the copied variables out of the host's environment; the host's `NETFLIX_STACK`
    /// becomes `TITUS_STACK` (the container's own `NETFLIX_STACK` is the job's stack).
    pub fn from_host_env(host_env: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut env = BTreeMap::new();
        for (name, value) in host_env {
            if name == "NETFLIX_STACK" {
                env.insert("TITUS_STACK".to_owned(), value);
            } else if COPIED_FROM_HOST.contains(&name.as_str()) {
                env.insert(name, value);
            }
        }
        Self { env }
    }
}

/// Titus network mode, as the agent names it in `NETFLIX_NETWORK_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// Not known: the variable is not set.
    Unknown,
    /// `IPV4_ONLY`.
    Ipv4Only,
    /// `DUAL_STACK`.
    Ipv6AndIpv4,
    /// `IPV6_WITH_TRANSITION`.
    Ipv6AndIpv4Fallback,
    /// `IPV6_ONLY`.
    Ipv6Only,
}

impl NetworkMode {
    /// The environment value, if any.
    pub fn env_value(self) -> Option<&'static str> {
        match self {
            Self::Unknown => None,
            Self::Ipv4Only => Some("IPV4_ONLY"),
            Self::Ipv6AndIpv4 => Some("DUAL_STACK"),
            Self::Ipv6AndIpv4Fallback => Some("IPV6_WITH_TRANSITION"),
            Self::Ipv6Only => Some("IPV6_ONLY"),
        }
    }
}

/// The task's ENI, when the network stack gave it one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eni {
    /// `EC2_VPC_ID`.
    pub vpc_id: String,
    /// `EC2_INTERFACE_ID`.
    pub interface_id: String,
    /// `EC2_SUBNET_ID`.
    pub subnet_id: String,
}

/// What the agent knows about the task (from the Pod, its annotations and the network setup).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFacts {
    /// Job `applicationName`; the image name is used when empty.
    pub app_name: String,
    /// `jobGroupInfo.stack`.
    pub stack: String,
    /// `jobGroupInfo.detail`.
    pub detail: String,
    /// `jobGroupInfo.sequence` (`v001`); `v000` when empty.
    pub sequence: String,
    /// CPUs; reported rounded up to an integer, like a Kubernetes quantity's value.
    pub cpu: f64,
    /// Memory, MiB.
    pub memory_mb: u64,
    /// Disk, MiB.
    pub disk_mb: u64,
    /// GPUs.
    pub gpu: u32,
    /// Network bandwidth, Mbps.
    pub network_mbps: u64,
    /// The Pod container's env: the user's env and the control plane's variables (§10.4).
    pub container_env: BTreeMap<String, String>,
    /// Image name (without registry or tag).
    pub image_name: Option<String>,
    /// Image tag (Pod annotation `pod.titus.netflix.com/image-tag-main`).
    pub image_tag: Option<String>,
    /// Image digest.
    pub image_digest: Option<String>,
    /// IAM role (`iam.amazonaws.com/role`).
    pub iam_role: Option<String>,
    /// Metatron credentials are available and enabled on this agent.
    pub metatron_enabled: bool,
    /// Effective network mode.
    pub network_mode: NetworkMode,
    /// VPC account id (`EC2_OWNER_ID` when neither host nor Pod sets it).
    pub vpc_account_id: Option<String>,
    /// Assigned IPv4 address.
    pub ipv4: Option<String>,
    /// Assigned IPv6 address.
    pub ipv6: Option<String>,
    /// Elastic (public) IPv4.
    pub elastic_ipv4: Option<String>,
    /// ENI the container uses.
    pub eni: Option<Eni>,
    /// Batch priority (`TITUS_BATCH`).
    pub batch: Option<String>,
    /// `TITUS_IMDS_REQUIRE_TOKEN`.
    pub imds_require_token: Option<String>,
    /// The container id the runtime gave (`TITUS_CONTAINER_ID`).
    pub container_id: Option<String>,
    /// OCI runtime name (`TITUS_OCI_RUNTIME`).
    pub oci_runtime: String,
    /// Last-word overrides (GPU variables and the like).
    pub overrides: BTreeMap<String, String>,
}

impl Default for TaskFacts {
    fn default() -> Self {
        Self {
            app_name: String::new(),
            stack: String::new(),
            detail: String::new(),
            sequence: String::new(),
            cpu: 0.0,
            memory_mb: 0,
            disk_mb: 0,
            gpu: 0,
            network_mbps: 0,
            container_env: BTreeMap::new(),
            image_name: None,
            image_tag: None,
            image_digest: None,
            iam_role: None,
            metatron_enabled: false,
            network_mode: NetworkMode::Unknown,
            vpc_account_id: None,
            ipv4: None,
            ipv6: None,
            elastic_ipv4: None,
            eni: None,
            batch: None,
            imds_require_token: None,
            container_id: None,
            oci_runtime: "runc".into(),
            overrides: BTreeMap::new(),
        }
    }
}

/// Netflix cluster name (frigga): `app-stack-detail`, `app-stack`, or `app`. A detail without a
/// stack gives `app--detail`.
pub fn cluster_name(app: &str, stack: &str, detail: &str) -> String {
    if !detail.is_empty() {
        format!("{app}-{stack}-{detail}")
    } else if !stack.is_empty() {
        format!("{app}-{stack}")
    } else {
        app.to_owned()
    }
}

/// The container's environment.
pub fn titus_environment(task: &TaskFacts, host: &HostFacts) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = HARDCODED
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.extend(host.env.clone());
    // Kept before the Pod env may replace EC2_INSTANCE_ID: tools want the real host.
    let host_instance = env.get("EC2_INSTANCE_ID").cloned().unwrap_or_default();
    env.insert("TITUS_HOST_EC2_INSTANCE_ID".into(), host_instance);

    let cpu = if task.cpu.is_finite() && task.cpu > 0.0 {
        task.cpu.ceil() as u64
    } else {
        0
    };
    env.insert("TITUS_NUM_CPU".into(), cpu.to_string());
    env.insert("TITUS_NUM_MEM".into(), task.memory_mb.to_string());
    env.insert("TITUS_NUM_DISK".into(), task.disk_mb.to_string());
    env.insert("TITUS_NUM_GPU".into(), task.gpu.to_string());
    env.insert(
        "TITUS_NUM_NETWORK_BANDWIDTH".into(),
        task.network_mbps.to_string(),
    );

    let app = if task.app_name.is_empty() {
        task.image_name.clone().unwrap_or_default()
    } else {
        task.app_name.clone()
    };
    let cluster = cluster_name(&app, &task.stack, &task.detail);
    let sequence = if task.sequence.is_empty() {
        "v000"
    } else {
        task.sequence.as_str()
    };
    env.insert(
        "NETFLIX_AUTO_SCALE_GROUP".into(),
        format!("{cluster}-{sequence}"),
    );
    env.insert("NETFLIX_CLUSTER".into(), cluster);
    env.insert("NETFLIX_STACK".into(), task.stack.clone());
    env.insert("NETFLIX_DETAIL".into(), task.detail.clone());
    env.insert("NETFLIX_APP".into(), app);

    env.extend(task.container_env.clone());

    let mut set = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            env.insert(name.to_owned(), value.clone());
        }
    };
    set("TITUS_IMAGE_NAME", &task.image_name);
    set("TITUS_IMAGE_TAG", &task.image_tag);
    set("TITUS_IMAGE_DIGEST", &task.image_digest);
    set("TITUS_BATCH", &task.batch);
    set("TITUS_IMDS_REQUIRE_TOKEN", &task.imds_require_token);
    set("TITUS_CONTAINER_ID", &task.container_id);
    if let Some(ipv6) = &task.ipv6 {
        for name in ["EC2_IPV6S", "NETFLIX_IPV6", "NETFLIX_IPV6S"] {
            env.insert(name.into(), ipv6.clone());
        }
        env.insert(
            "NETFLIX_IPV6_HOSTNAME".into(),
            format!("ip-{}.node.netflix.net", ipv6.replace(':', "-")),
        );
    }
    if let Some(public) = &task.elastic_ipv4 {
        env.insert("EC2_PUBLIC_IPV4".into(), public.clone());
        env.insert("EC2_PUBLIC_IPV4S".into(), public.clone());
    }
    if let Some(eni) = &task.eni {
        env.insert("EC2_VPC_ID".into(), eni.vpc_id.clone());
        env.insert("EC2_INTERFACE_ID".into(), eni.interface_id.clone());
        env.insert("EC2_SUBNET_ID".into(), eni.subnet_id.clone());
    }
    env.entry("EC2_OWNER_ID".into())
        .or_insert_with(|| task.vpc_account_id.clone().unwrap_or_default());
    env.insert(
        "TITUS_IAM_ROLE".into(),
        task.iam_role.clone().unwrap_or_default(),
    );
    env.insert(
        "TITUS_METATRON_ENABLED".into(),
        task.metatron_enabled.to_string(),
    );
    if let Some(mode) = task.network_mode.env_value() {
        env.insert("NETFLIX_NETWORK_MODE".into(), mode.into());
    }
    if task.network_mode == NetworkMode::Ipv6Only {
        // IPv6-only tasks still get a loopback IPv4 so that software reading it does not break.
        env.insert("EC2_LOCAL_IPV4".into(), "127.0.0.1".into());
    } else if let Some(ipv4) = &task.ipv4 {
        env.insert("EC2_LOCAL_IPV4".into(), ipv4.clone());
    }
    env.extend(task.overrides.clone());
    env.insert("TITUS_OCI_RUNTIME".into(), task.oci_runtime.clone());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn host() -> HostFacts {
        HostFacts::from_host_env(map(&[
            ("EC2_INSTANCE_ID", "i-host"),
            ("EC2_REGION", "us-east-1"),
            ("NETFLIX_STACK", "mainvpc"),
            ("HOME", "/root"),
        ]))
    }

    #[test]
    fn host_facts_copy_only_the_listed_variables_and_rename_the_stack() {
        assert_eq!(
            host().env,
            map(&[
                ("EC2_INSTANCE_ID", "i-host"),
                ("EC2_REGION", "us-east-1"),
                ("TITUS_STACK", "mainvpc")
            ])
        );
    }

    #[test]
    fn names_resources_and_defaults_follow_the_agent() {
        let task = TaskFacts {
            app_name: "app1".into(),
            stack: "stack1".into(),
            detail: "detail1".into(),
            sequence: "v001".into(),
            cpu: 1.5,
            memory_mb: 100,
            disk_mb: 1000,
            network_mbps: 128,
            ..TaskFacts::default()
        };
        let env = titus_environment(&task, &host());
        let want = [
            ("NETFLIX_APPUSER", "appuser"),
            ("EC2_DOMAIN", "amazonaws.com"),
            ("TITUS_STACK", "mainvpc"),
            ("TITUS_HOST_EC2_INSTANCE_ID", "i-host"),
            ("NETFLIX_APP", "app1"),
            ("NETFLIX_STACK", "stack1"),
            ("NETFLIX_CLUSTER", "app1-stack1-detail1"),
            ("NETFLIX_AUTO_SCALE_GROUP", "app1-stack1-detail1-v001"),
            ("TITUS_NUM_CPU", "2"),
            ("TITUS_NUM_MEM", "100"),
            ("TITUS_NUM_DISK", "1000"),
            ("TITUS_NUM_GPU", "0"),
            ("TITUS_NUM_NETWORK_BANDWIDTH", "128"),
            ("EC2_OWNER_ID", ""),
            ("TITUS_IAM_ROLE", ""),
            ("TITUS_METATRON_ENABLED", "false"),
            ("TITUS_OCI_RUNTIME", "runc"),
        ];
        for (name, value) in want {
            assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
        }
        assert!(!env.contains_key("HOME"));
        assert!(!env.contains_key("NETFLIX_NETWORK_MODE"));
        assert!(!env.contains_key("EC2_LOCAL_IPV4"));
    }

    #[test]
    fn cluster_and_asg_names_follow_frigga() {
        let cases = [
            ("app", "", "", "", "app", "app-v000"),
            ("app", "s", "", "", "app-s", "app-s-v000"),
            ("app", "", "d", "v002", "app--d", "app--d-v002"),
            ("", "s", "", "", "image1-s", "image1-s-v000"),
        ];
        for (app, stack, detail, seq, cluster, asg) in cases {
            let task = TaskFacts {
                app_name: app.into(),
                stack: stack.into(),
                detail: detail.into(),
                sequence: seq.into(),
                image_name: Some("image1".into()),
                ..TaskFacts::default()
            };
            let env = titus_environment(&task, &HostFacts::default());
            assert_eq!(env["NETFLIX_CLUSTER"], cluster);
            assert_eq!(env["NETFLIX_AUTO_SCALE_GROUP"], asg);
        }
    }

    #[test]
    fn pod_env_overrides_lower_layers_and_agent_overrides_win_over_the_pod() {
        let task = TaskFacts {
            app_name: "app".into(),
            container_env: map(&[
                ("NETFLIX_APP", "user-app"),
                ("EC2_INSTANCE_ID", "task-id"),
                ("TITUS_IMAGE_TAG", "user-tag"),
                ("EC2_OWNER_ID", "from-pod"),
                ("TITUS_TASK_ID", "task-id"),
            ]),
            image_tag: Some("1.0".into()),
            vpc_account_id: Some("123".into()),
            iam_role: Some("arn:role".into()),
            overrides: map(&[("CUDA_VISIBLE_DEVICES", "0")]),
            ..TaskFacts::default()
        };
        let env = titus_environment(&task, &host());
        assert_eq!(env["NETFLIX_APP"], "user-app");
        assert_eq!(env["EC2_INSTANCE_ID"], "task-id");
        assert_eq!(env["TITUS_HOST_EC2_INSTANCE_ID"], "i-host");
        assert_eq!(env["TITUS_TASK_ID"], "task-id");
        assert_eq!(env["TITUS_IMAGE_TAG"], "1.0");
        assert_eq!(env["EC2_OWNER_ID"], "from-pod", "set already: not replaced");
        assert_eq!(env["TITUS_IAM_ROLE"], "arn:role");
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "0");
    }

    #[test]
    fn network_facts_set_addresses_and_ipv6_only_gets_a_loopback_ipv4() {
        let dual = TaskFacts {
            network_mode: NetworkMode::Ipv6AndIpv4,
            ipv4: Some("10.0.0.5".into()),
            ipv6: Some("2600:1f18::1".into()),
            elastic_ipv4: Some("54.0.0.1".into()),
            eni: Some(Eni {
                vpc_id: "vpc-1".into(),
                interface_id: "eni-1".into(),
                subnet_id: "subnet-1".into(),
            }),
            vpc_account_id: Some("123".into()),
            ..TaskFacts::default()
        };
        let env = titus_environment(&dual, &HostFacts::default());
        assert_eq!(env["NETFLIX_NETWORK_MODE"], "DUAL_STACK");
        assert_eq!(env["EC2_LOCAL_IPV4"], "10.0.0.5");
        assert_eq!(env["NETFLIX_IPV6"], "2600:1f18::1");
        assert_eq!(
            env["NETFLIX_IPV6_HOSTNAME"],
            "ip-2600-1f18--1.node.netflix.net"
        );
        assert_eq!(env["EC2_PUBLIC_IPV4S"], "54.0.0.1");
        assert_eq!(env["EC2_SUBNET_ID"], "subnet-1");
        assert_eq!(env["EC2_OWNER_ID"], "123");
        let v6 = TaskFacts {
            network_mode: NetworkMode::Ipv6Only,
            ipv4: Some("10.0.0.5".into()),
            ..TaskFacts::default()
        };
        let env = titus_environment(&v6, &HostFacts::default());
        assert_eq!(env["EC2_LOCAL_IPV4"], "127.0.0.1");
        assert_eq!(env["NETFLIX_NETWORK_MODE"], "IPV6_ONLY");
    }
}
