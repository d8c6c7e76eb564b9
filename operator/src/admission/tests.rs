//! Titus admission: one refused case per rule class, the sanitize-then-validate order, updates.

use serde_json::{Value, json};
use titus_apiserver::{Operation, Rejection};
use titus_crds::{RetryPolicy, TitusJob, TitusJobSpec};

use super::*;

fn object(spec: TitusJobSpec) -> Value {
    serde_json::to_value(TitusJob::new("job", spec)).unwrap()
}

fn refused(result: Result<(), Rejection>) -> Vec<String> {
    match result {
        Err(Rejection::Invalid(causes)) => causes.iter().map(FieldError::message).collect(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn each_titus_rule_class_is_refused_naming_the_field() {
    let admission = TitusAdmission::default();
    let batch = TitusJobSpec::batch(2);
    let mut digest_only = batch.clone();
    digest_only.container.image.tag = String::new();
    digest_only.container.image.digest = "sha256:nothex".into();
    #[rustfmt::skip]
    let cases: Vec<(&str, TitusJobSpec, &str)> = vec![
        ("cpu above the maximum", batch.clone().with_cpu_memory(200.0, 1024),
         "spec.container.resources.cpu: Invalid value: 200.0: Above maximum allowed value 96.0"),
        ("batch size 0", TitusJobSpec::batch(0), "spec.batch.size: Invalid value: 0: Batch job must have at least one task"),
        ("batch size above 1000", TitusJobSpec::batch(1001), "spec.batch.size: Invalid value: 1001: Batch job too big 1001 > 1000"),
        ("desired above max", TitusJobSpec::service(1, 5, 3), "spec.service.capacity: Invalid value:"),
        ("malformed digest", digest_only, "spec.container.image.digest: Invalid value: \"sha256:nothex\": must specify a valid digest or tag"),
        ("bad env name", batch.clone().with_env("lower-case", "x"), "spec.container.env[lower-case]: Invalid value: \"x\": Environment variable validation error"),
        ("runtime limit 0", batch.clone().with_runtime_limit_sec(0), "spec.batch.runtimeLimitSec: Invalid value: 0: Runtime limit too low"),
        ("no security group", { let mut s = batch.clone(); s.container.security_profile.security_groups.clear(); s },
         "spec.container.securityProfile.securityGroups: Required value: Number of security groups must be between 1 and 6"),
        ("bad owner email", { let mut s = batch.clone(); s.owner.team_email = "nobody".into(); s }, "spec.owner.teamEmail: Invalid value: \"nobody\": Invalid email address"),
        ("no application name", { let mut s = batch.clone(); s.application_name.clear(); s }, "spec.applicationName: "),
        ("no retry policy", { let mut s = batch.clone(); s.batch.as_mut().unwrap().retry_policy = None; s }, "spec.batch.retryPolicy"),
    ];
    for (name, spec, expected) in cases {
        let mut obj = object(spec);
        let messages = refused(admission.mutate_object(Operation::Create, "", &mut obj, None));
        assert!(
            messages.iter().any(|m| m.starts_with(expected)),
            "{name}: {messages:?} has no cause starting with {expected:?}"
        );
        let obj = obj.clone();
        assert!(
            admission
                .validate_object(Operation::Create, "", Some(&obj), None)
                .is_err(),
            "{name}"
        );
    }
}

#[test]
fn sanitize_runs_first_and_raises_minimums_into_the_stored_object() {
    let admission = TitusAdmission::default();
    let mut spec = TitusJobSpec::batch(1).with_cpu_memory(0.5, 100);
    spec.container.resources.disk_mb = 1;
    let mut obj = object(spec);
    admission
        .mutate_object(Operation::Create, "", &mut obj, None)
        .unwrap();
    let resources = &obj["spec"]["container"]["resources"];
    assert_eq!(resources["cpu"], json!(1.0));
    assert_eq!(resources["memoryMB"], json!(512));
    assert_eq!(resources["diskMB"], json!(10000));
    assert_eq!(obj["spec"]["capacityGroup"], json!("DEFAULT"));
    assert!(
        obj["spec"]["disruptionBudget"].is_object(),
        "the job-type default budget is filled in"
    );
    admission
        .validate_object(Operation::Create, "", Some(&obj), None)
        .unwrap();
}

#[test]
fn updates_follow_titus_mutability_rules() {
    let admission = TitusAdmission::default();
    let mut old =
        object(TitusJobSpec::service(1, 2, 4).with_retry_policy(RetryPolicy::delayed(1_000, 0)));
    admission
        .mutate_object(Operation::Create, "", &mut old, None)
        .unwrap();
    let change = |f: &dyn Fn(&mut Value)| {
        let mut new = old.clone();
        f(&mut new);
        new
    };
    let scaled = change(&|v| v["spec"]["service"]["capacity"]["desired"] = json!(3));
    let mut obj = scaled.clone();
    admission
        .mutate_object(Operation::Update, "scale", &mut obj, Some(&old))
        .unwrap();
    let too_big = change(&|v| v["spec"]["service"]["capacity"]["desired"] = json!(5));
    let messages = refused(admission.mutate_object(
        Operation::Update,
        "scale",
        &mut too_big.clone(),
        Some(&old),
    ));
    assert!(
        messages[0].starts_with("spec.service.capacity"),
        "{messages:?}"
    );
    let image = change(&|v| v["spec"]["container"]["image"]["tag"] = json!("2"));
    let messages =
        refused(admission.validate_object(Operation::Update, "", Some(&image), Some(&old)));
    assert!(
        messages
            .iter()
            .any(|m| m.contains("spec.container.image") && m.contains("immutable")),
        "{messages:?}"
    );
    let labelled = change(&|v| v["metadata"]["labels"] = json!({"a": "b"}));
    admission
        .validate_object(Operation::Update, "", Some(&labelled), Some(&old))
        .unwrap();
    // Status writes and deletes are not Titus admission's business.
    admission
        .validate_object(Operation::Update, "status", Some(&too_big), Some(&old))
        .unwrap();
    admission
        .validate_object(Operation::Delete, "", None, Some(&old))
        .unwrap();
}

#[test]
fn field_paths_become_json_pointers() {
    let cases = [
        (
            "spec.container.resources.cpu",
            "/spec/container/resources/cpu",
        ),
        (
            "spec.extraContainers[0].name",
            "/spec/extraContainers/0/name",
        ),
        ("spec.container.env[a/b]", "/spec/container/env/a~1b"),
    ];
    for (field, pointer) in cases {
        assert_eq!(json_pointer(field), pointer);
    }
}
