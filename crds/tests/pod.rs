//! Pure pod pieces: environment precedence, annotations, labels, resources and the Docker
//! entry point / command mapping.

// Test helpers may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use titus_crds::job::NetworkMode;
use titus_crds::pod::{
    PodCommand, TaskIdentity, job_selector, pod_annotations, pod_command, pod_labels,
    pod_resources, shell_split, task_env, termination_grace_period_seconds,
};
use titus_crds::{JobDisruptionBudget, TitusJobSpec, TitusJobStatus, sanitize};

fn identity(index: Option<u32>) -> TaskIdentity {
    TaskIdentity {
        job_id: "job-1".into(),
        task_id: "task-1".into(),
        original_id: "task-0".into(),
        index,
    }
}

fn spec() -> TitusJobSpec {
    let mut spec = TitusJobSpec::batch(2)
        .with_job_group("main", "blue", "v007")
        .with_env("USER_VAR", "u")
        .with_env("TITUS_NUM_CPU", "user-wins-over-resources")
        .with_env("TITUS_TASK_ID", "system-wins-over-user");
    sanitize(&mut spec);
    spec
}

#[test]
fn task_env_layers_resources_naming_user_and_identity_in_titus_order() {
    let env = task_env(&spec(), &identity(Some(1)));
    let get = |k: &str| env.vars.get(k).map(String::as_str);
    assert_eq!(get("USER_VAR"), Some("u"));
    assert_eq!(get("TITUS_NUM_CPU"), Some("user-wins-over-resources"));
    assert_eq!(get("TITUS_TASK_ID"), Some("task-1"));
    assert_eq!(get("TITUS_JOB_ID"), Some("job-1"));
    assert_eq!(get("NETFLIX_INSTANCE_ID"), Some("task-1"));
    assert_eq!(get("TITUS_TASK_ORIGINAL_ID"), Some("task-0"));
    assert_eq!(get("TITUS_TASK_INDEX"), Some("1"));
    assert_eq!(get("NETFLIX_EXECUTOR"), Some("titus"));
    assert_eq!(get("TITUS_NUM_MEM"), Some("512"));
    assert_eq!(get("NETFLIX_APP"), Some("titusapp"));
    assert_eq!(get("NETFLIX_CLUSTER"), Some("titusapp-main-blue"));
    assert_eq!(
        get("NETFLIX_AUTO_SCALE_GROUP"),
        Some("titusapp-main-blue-v007")
    );
    assert_eq!(
        get("TITUS_IMAGE_NAME"),
        Some("localhost:5000/titus/busybox")
    );
    assert_eq!(get("TITUS_IAM_ROLE"), Some("titusAppRole"));
    assert!(env.system_names.contains(&"TITUS_TASK_ID".to_string()));
    assert!(
        !env.system_names.contains(&"TITUS_NUM_CPU".to_string()),
        "the user set it"
    );
    assert!(!env.system_names.contains(&"USER_VAR".to_string()));
}

#[test]
fn service_tasks_have_no_index_and_clusters_follow_frigga_rules() {
    let mut spec = TitusJobSpec::service(0, 1, 1);
    spec.job_group_info.detail = "d".into();
    let env = task_env(&spec, &identity(None));
    assert!(!env.vars.contains_key("TITUS_TASK_INDEX"));
    assert_eq!(env.vars["NETFLIX_CLUSTER"], "titusapp--d");
    assert_eq!(env.vars["NETFLIX_AUTO_SCALE_GROUP"], "titusapp--d-v000");
}

#[test]
fn resources_become_kubernetes_quantities() {
    let mut spec = spec();
    spec.container.resources.gpu = 1;
    let r = pod_resources(&spec.container.resources);
    let got: BTreeMap<&str, &str> = r.iter().map(|(k, v)| (k.as_str(), v.0.as_str())).collect();
    assert_eq!(
        got,
        BTreeMap::from([
            ("cpu", "1"),
            ("memory", "512Mi"),
            ("ephemeral-storage", "10000Mi"),
            ("titus/network", "128M"),
            ("nvidia.com/gpu", "1"),
        ])
    );
    spec.container.resources.cpu = 1.25;
    assert_eq!(pod_resources(&spec.container.resources)["cpu"].0, "1250m");
}

#[test]
fn docker_entry_point_and_command_map_to_pod_command_and_args() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let none: BTreeMap<String, String> = BTreeMap::new();
    let skip = BTreeMap::from([(
        "titusParameter.entryPoint.skipShellParsing".to_string(),
        "true".to_string(),
    )]);
    let cases = [
        // entryPoint, command, attributes, expected (command, args, shell splitting)
        (
            s(&["/bin/sh", "-c"]),
            s(&["echo hi"]),
            &none,
            (s(&["/bin/sh", "-c"]), s(&["echo hi"]), false),
        ),
        (
            s(&["/bin/sh", "-c", "echo 'a b'"]),
            s(&[]),
            &none,
            (s(&["/bin/sh -c echo 'a b'"]), s(&[]), true),
        ),
        (
            s(&["/bin/sh", "-c"]),
            s(&[]),
            &skip,
            (s(&["/bin/sh", "-c"]), s(&[]), false),
        ),
        (s(&[]), s(&["arg"]), &none, (s(&[]), s(&["arg"]), false)),
        (
            s(&[""]),
            s(&["/bin/echo", "x"]),
            &none,
            (s(&["/bin/echo", "x"]), s(&[]), false),
        ),
        (
            s(&["/bin/run"]),
            s(&[""]),
            &none,
            (s(&["/bin/run"]), s(&[]), false),
        ),
        (s(&[]), s(&[]), &none, (s(&[]), s(&[]), false)),
    ];
    for (entry_point, command, attributes, (want_command, want_args, want_split)) in cases {
        let mut spec = spec();
        spec.container.entry_point = entry_point.clone();
        spec.container.command = command.clone();
        assert_eq!(
            pod_command(&spec.container, attributes),
            PodCommand {
                command: want_command,
                args: want_args,
                shell_splitting: want_split
            },
            "entryPoint {entry_point:?} command {command:?}"
        );
    }
}

#[test]
fn shell_split_follows_shell_word_rules() {
    assert_eq!(
        shell_split(r#"/bin/sh -c "echo 'a b'" x\ y"#).unwrap(),
        ["/bin/sh", "-c", "echo 'a b'", "x y"]
    );
    assert!(shell_split("echo 'unbalanced").is_err());
}

#[test]
fn annotations_carry_titus_pod_metadata() {
    let mut spec = spec().with_entry_point(["/bin/sh -c 'x'"]);
    spec.network_configuration.network_mode = NetworkMode::Ipv6AndIpv4;
    spec.container.attributes.insert(
        "titusParameter.agent.allowCpuBursting".into(),
        "true".into(),
    );
    spec.container
        .attributes
        .insert("titusParameter.agent.schedBatch".into(), "true".into());
    spec.container
        .attributes
        .insert("titusParameter.agent.log.uploadRegexp".into(), ".*".into());
    spec.container
        .attributes
        .insert("titusParameter.agent.custom".into(), "c".into());
    spec.attributes
        .insert("titusParameter.mockVK.runTime".into(), "5s".into());
    let status = TitusJobStatus {
        timestamp: 1234,
        ..Default::default()
    };
    let env = task_env(&spec, &identity(Some(0)));
    let a = pod_annotations(&spec, "job-1", Some(&status), &env.system_names);
    let get = |k: &str| a.get(k).map(String::as_str);
    assert_eq!(get("pod.netflix.com/pod-schema-version"), Some("1"));
    assert_eq!(get("v3.job.titus.netflix.com/job-id"), Some("job-1"));
    assert_eq!(get("v3.job.titus.netflix.com/type"), Some("BATCH"));
    assert_eq!(
        get("v3.job.titus.netflix.com/disruption-budget-policy"),
        Some("SelfManagedDisruptionBudgetPolicy")
    );
    assert_eq!(
        get("v3.job.titus.netflix.com/accepted-timestamp-ms"),
        Some("1234")
    );
    assert_eq!(get("workload.netflix.com/name"), Some("titusapp"));
    assert_eq!(get("workload.netflix.com/sequence"), Some("v007"));
    assert_eq!(get("kubernetes.io/egress-bandwidth"), Some("128M"));
    assert_eq!(
        get("network.netflix.com/security-groups"),
        Some("sg-titusdefault")
    );
    assert_eq!(get("iam.amazonaws.com/role"), Some("titusAppRole"));
    assert_eq!(get("network.netflix.com/network-mode"), Some("Ipv6AndIpv4"));
    assert_eq!(get("pod.titus.netflix.com/image-tag-main"), Some("1"));
    assert_eq!(
        get("pod.titus.netflix.com/entrypoint-shell-splitting-enabled"),
        Some("true")
    );
    assert_eq!(get("pod.netflix.com/cpu-bursting-enabled"), Some("true"));
    assert_eq!(get("pod.netflix.com/sched-policy"), Some("batch"));
    assert_eq!(get("log.netflix.com/uploadRegexp"), Some(".*"));
    assert_eq!(get("titusParameter.agent.custom"), Some("c"));
    assert_eq!(get("github.com.netflix.titus.executor/runTime"), Some("5s"));
    assert!(
        get("pod.titus.netflix.com/system-env-var-names")
            .unwrap()
            .contains("TITUS_TASK_ID")
    );
}

#[test]
fn labels_select_the_job_and_mark_self_managed_budgets() {
    let mut spec = spec().with_capacity_group("Flex_Group");
    let labels = pod_labels(&spec, "my-job", &identity(Some(3)));
    assert_eq!(labels["titus.dev/job-name"], "my-job");
    assert_eq!(labels["v3.job.titus.netflix.com/task-id"], "task-1");
    assert_eq!(labels["titus.netflix.com/capacity-group"], "flex_group");
    assert_eq!(labels["titus.dev/task-index"], "3");
    assert_eq!(
        labels["pod.titus.netflix.com/relocation-binpack"],
        "SelfManaged"
    );
    assert_eq!(job_selector("my-job"), "titus.dev/job-name=my-job");
    spec.disruption_budget = Some(JobDisruptionBudget {
        relocation_limit: Some(Default::default()),
        ..Default::default()
    });
    assert!(
        !pod_labels(&spec, "my-job", &identity(None))
            .contains_key("pod.titus.netflix.com/relocation-binpack")
    );
}

#[test]
fn grace_period_comes_from_kill_wait_seconds() {
    assert_eq!(termination_grace_period_seconds(&spec()), 600);
    let spec = spec().with_attribute("titusParameter.agent.killWaitSeconds", "30");
    assert_eq!(termination_grace_period_seconds(&spec), 30);
}
