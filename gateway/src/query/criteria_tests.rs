use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn job(id: &str, app: &str, batch: bool, attributes: &[(&str, &str)]) -> pb::Job {
    let spec = if batch {
        pb::job_descriptor::JobSpec::Batch(pb::BatchJobSpec::default())
    } else {
        pb::job_descriptor::JobSpec::Service(pb::ServiceJobSpec::default())
    };
    pb::Job {
        id: id.into(),
        job_descriptor: Some(pb::JobDescriptor {
            application_name: app.into(),
            owner: Some(pb::Owner {
                team_email: "team@example.com".into(),
            }),
            attributes: map(attributes),
            platform_sidecars: vec![pb::PlatformSidecar {
                name: "logs".into(),
                channel: "stable".into(),
                arguments: None,
            }],
            job_spec: Some(spec),
            ..Default::default()
        }),
        status: Some(pb::JobStatus::default()),
        ..Default::default()
    }
}

fn task(id: &str, job_id: &str, state: pb::task_status::TaskState, reason: &str) -> pb::Task {
    pb::Task {
        id: id.into(),
        job_id: job_id.into(),
        status: Some(pb::TaskStatus {
            state: state as i32,
            reason_code: reason.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn job_criteria_match_one_rule_each() {
    use pb::task_status::TaskState as S;
    let j = job("j1", "app", true, &[("team", "red"), ("tier", "1")]);
    let tasks = [task("t1", "j1", S::Started, "normal")];
    let cases: &[(&[(&str, &str)], bool)] = &[
        (&[], true),
        (&[("jobIds", "j2, j1")], true),
        (&[("jobIds", "j2")], false),
        (&[("applicationName", "app")], true),
        (&[("appName", "other")], false),
        (&[("owner", "team@example.com")], true),
        (&[("capacityGroup", "DEFAULT")], true),
        (&[("capacityGroup", "default")], false),
        (&[("jobType", "BATCH")], true),
        (&[("jobType", "service")], false),
        (&[("jobState", "ACCEPTED")], true),
        (&[("jobState", "Finished")], false),
        (&[("taskStates", "Started,Finished")], true),
        (&[("taskStates", "Accepted")], false),
        (&[("taskStates", "any")], true),
        (&[("taskIds", "t1")], true),
        (&[("taskIds", "t9")], false),
        // taskStateReasons does not filter job queries (Titus behaviour).
        (&[("taskStateReasons", "failed")], true),
        (&[("attributes", "team")], true),
        (&[("attributes", "team:red,tier:1")], true),
        (&[("attributes", "team:blue,tier:1")], false),
        (
            &[("attributes", "team:blue,tier:1"), ("attributes.op", "or")],
            true,
        ),
        (&[("labels", "team:blue,team:red")], true),
        (&[("labels", "missing"), ("labels.op", "OR")], false),
        (
            &[
                ("platformSidecar", "logs"),
                ("platformSidecarChannel", "stable"),
            ],
            true,
        ),
        (&[("platformSidecar", "metrics")], false),
        (&[("needsMigration", "true")], false),
        (&[("applicationName", "   ")], true),
    ];
    for (pairs, expected) in cases {
        let c = Criteria::parse(&map(pairs)).unwrap();
        assert_eq!(c.matches_job(&j, tasks.iter()), *expected, "{pairs:?}");
    }
}

#[test]
fn task_criteria_apply_task_only_rules_and_the_job_rules_of_its_job() {
    use pb::task_status::TaskState as S;
    let j = job("j1", "app", false, &[]);
    let finished_crash = task("t1", "j1", S::Finished, "crashed");
    let finished_ok = task("t2", "j1", S::Finished, "normal");
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a pb::Task, bool);
    let cases: &[Case<'_>] = &[
        (&[("taskStateReasons", "crashed")], &finished_crash, true),
        (&[("taskStateReasons", "crashed")], &finished_ok, false),
        (&[("skipSystemFailures", "true")], &finished_crash, false),
        (&[("skipSystemFailures", "true")], &finished_ok, true),
        (&[("jobType", "service")], &finished_ok, true),
        (&[("jobType", "batch")], &finished_ok, false),
        (&[("jobIds", "j1")], &finished_ok, true),
        (&[("taskIds", "t2")], &finished_ok, true),
    ];
    for (pairs, t, expected) in cases {
        let c = Criteria::parse(&map(pairs)).unwrap();
        assert_eq!(c.matches_task(t, Some(&j)), *expected, "{pairs:?} {}", t.id);
    }
    let c = Criteria::parse(&map(&[("applicationName", "app")])).unwrap();
    assert!(
        !c.matches_task(&finished_ok, None),
        "unknown job fails job criteria"
    );
}

#[test]
fn bad_criteria_are_refused_with_titus_messages() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("cell", "a")], "Unrecognized field(s) [cell]"),
        (
            &[("zzz", "a"), ("aaa", "b")],
            "Unrecognized field(s) [aaa, zzz]",
        ),
        (&[("jobType", "cron")], "Invalid jobType value cron"),
        (&[("jobState", "Running")], "Invalid jobState value Running"),
        (
            &[("taskStates", "Started,Bogus")],
            "Invalid task state value Bogus",
        ),
        (
            &[("attributes.op", "xor")],
            "Invalid attributes.op value xor (expected 'and' or 'or')",
        ),
        (
            &[("needsMigration", "yes")],
            "Invalid needsMigration value yes (expected true or false)",
        ),
    ];
    for (pairs, message) in cases {
        let err = Criteria::parse(&map(pairs)).unwrap_err();
        assert_eq!(err.to_string(), *message);
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
}
