//! Titus admission on the embedded API server: invalid jobs are refused at the door with the
//! field named and nothing is stored; sanitize raises minimums before validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use titus_crds::{TitusJob, TitusJobSpec};

async fn api() -> anyhow::Result<(titus_apiserver::RunningApiServer, Api<TitusJob>)> {
    let server = titus_apiserver::start(titus_apiserver::ApiServerConfig {
        data_dir: None,
        bind: "127.0.0.1:0".parse()?,
        fsync: false,
        extra_sans: vec![],
    })
    .await?;
    titus_operator::register(&server.server, titus_crds::AdmissionConfig::default());
    let client = titus_runtime::client_from_yaml(&server.kubeconfig()).await?;
    titus_operator::install_crds(&client, Duration::from_secs(30)).await?;
    Ok((server, Api::namespaced(client, "default")))
}

#[tokio::test]
async fn invalid_jobs_are_refused_naming_the_field_and_nothing_is_stored() -> anyhow::Result<()> {
    let (_server, jobs) = api().await?;
    let mut digest = TitusJobSpec::batch(1);
    digest.container.image.tag.clear();
    digest.container.image.digest = "sha256:1234".into();
    let cases = [
        (
            "cpu",
            TitusJobSpec::batch(1).with_cpu_memory(97.0, 1024),
            "spec.container.resources.cpu: Invalid value: 97.0: Above maximum allowed value 96.0",
        ),
        (
            "size0",
            TitusJobSpec::batch(0),
            "spec.batch.size: Invalid value: 0: Batch job must have at least one task",
        ),
        (
            "desired",
            TitusJobSpec::service(0, 11, 10),
            "spec.service.capacity: Invalid value:",
        ),
        (
            "digest",
            digest,
            "spec.container.image.digest: Invalid value: \"sha256:1234\": must specify a valid digest or tag",
        ),
        (
            "env",
            TitusJobSpec::batch(1).with_env("bad-name", "v"),
            "spec.container.env[bad-name]: Invalid value: \"v\"",
        ),
    ];
    for (name, spec, expected) in cases {
        let err = jobs
            .create(&PostParams::default(), &TitusJob::new(name, spec))
            .await
            .expect_err(name);
        let kube::Error::Api(status) = err else {
            panic!("{name}: not an API error: {err}");
        };
        assert_eq!(status.code, 422, "{name}: {status:?}");
        assert!(
            status.message.contains(expected),
            "{name}: {}",
            status.message
        );
        assert!(
            jobs.get_opt(name).await?.is_none(),
            "{name} must not be stored"
        );
    }
    Ok(())
}

#[tokio::test]
async fn sanitize_raises_minimums_before_validation_and_updates_follow_titus_rules()
-> anyhow::Result<()> {
    let (_server, jobs) = api().await?;
    let mut spec = TitusJobSpec::service(1, 2, 4).with_cpu_memory(0.25, 64);
    spec.container.resources.network_mbps = 1;
    let stored = jobs
        .create(&PostParams::default(), &TitusJob::new("small", spec))
        .await?;
    let r = &stored.spec.container.resources;
    assert_eq!(
        (r.cpu, r.memory_mb, r.disk_mb, r.network_mbps),
        (1.0, 512, 10_000, 128)
    );
    assert_eq!(stored.spec.capacity_group, "DEFAULT");
    // kubectl scale through the scale subresource is admitted like any capacity change.
    jobs.patch_scale(
        "small",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 4}})),
    )
    .await?;
    let err = jobs
        .patch_scale(
            "small",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 5}})),
        )
        .await
        .expect_err("desired above max");
    assert!(err.to_string().contains("spec.service.capacity"), "{err}");
    let err = jobs
        .patch(
            "small",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"container": {"image": {"tag": "2"}}}})),
        )
        .await
        .expect_err("the image is immutable");
    assert!(err.to_string().contains("spec.container.image"), "{err}");
    Ok(())
}
