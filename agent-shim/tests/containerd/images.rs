//! Client-side pulls: by tag, by digest, idempotent, and the typed not-found error.

use titus_agent_shim::containerd::ContainerdRuntime;
use titus_agent_shim::testsupport::TestRegistry;
use titus_agent_shim::{ContainerRuntime, RegistryAuth, RuntimeError};

use crate::fixture::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_by_digest_is_pulled_and_runs() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let by_digest = env.images.busybox_by_digest();
    let info = env.pull(&by_digest).await?;
    assert_eq!(info.digest, env.images.busybox_digest);
    assert_eq!(info.reference, by_digest);
    assert_eq!(
        info.config.cmd,
        vec!["/bin/sh", "-c", "echo hello from busybox"]
    );
    let spec = env.spec("by-digest", &by_digest, &[], &[]).await?;
    let (exit, stdout) = env.run_and_remove(&spec).await?;
    assert_eq!(exit.code, 0);
    assert_eq!(stdout, "hello from busybox\n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulling_twice_is_idempotent_and_tag_and_digest_agree() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let first = env.pull(&env.images.busybox).await?;
    let second = env.pull(&env.images.busybox).await?;
    assert_eq!(first, second);
    assert_eq!(first.digest, env.images.busybox_digest);
    // A fresh runtime (empty cache) finds the image in containerd's store without pulling.
    let fresh =
        titus_agent_shim::containerd::ContainerdRuntime::connect(env.containerd.runtime_config())
            .await?;
    let spec = env
        .spec("from-store", &env.images.busybox, &[], &[])
        .await?;
    fresh.create_and_start(&spec).await?;
    let exit = fresh.wait(&spec.id).await?;
    assert_eq!(exit.code, 0);
    fresh.remove(&spec.id).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_gives_the_typed_not_found_error() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let registry = env.registry.addr();
    for image in [
        format!("{registry}/no-such-repository:1"),
        format!("{registry}/busybox:no-such-tag"),
        format!("{registry}/busybox@sha256:{}", "0".repeat(64)),
    ] {
        let result = env.runtime.pull(&image, &RegistryAuth::Anonymous).await;
        match result {
            Err(RuntimeError::ImageNotFound { image: got, reason }) => {
                assert_eq!(got, image);
                assert!(!reason.is_empty());
            }
            other => panic!("{image}: expected ImageNotFound, got {other:?}"),
        }
    }
    let spec = env.spec("ok", &env.images.busybox, &[], &[]).await?;
    let mut never_pulled = spec.clone();
    never_pulled.image = format!("{registry}/never-pulled:1");
    assert!(matches!(
        env.runtime.create_and_start(&never_pulled).await,
        Err(RuntimeError::ImageNotPresent { .. })
    ));
    Ok(())
}

/// Pushes `<registry>/busybox:multi`, an OCI index whose arm64 entry is the entrypoint image and
/// whose amd64 entry is busybox:1, and returns its digest.
async fn push_index(env: &Env) -> anyhow::Result<String> {
    use oci_client::client::{ClientConfig, ClientProtocol};
    use oci_client::secrets::RegistryAuth as OciAuth;
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let manifest_type = "application/vnd.oci.image.manifest.v1+json";
    let mut entries = Vec::new();
    for (digest, arch) in [
        (&env.images.entrypoint_digest, "arm64"),
        (&env.images.busybox_digest, "amd64"),
    ] {
        let reference: oci_client::Reference =
            format!("{}@{digest}", env.images.repository).parse()?;
        let (bytes, _) = client
            .pull_manifest_raw(&reference, &OciAuth::Anonymous, &[manifest_type])
            .await?;
        entries.push(serde_json::json!({
            "mediaType": manifest_type, "digest": digest, "size": bytes.len(),
            "platform": {"architecture": arch, "os": "linux"}
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    })
    .to_string();
    let target: oci_client::Reference = format!("{}:multi", env.images.repository).parse()?;
    client
        .push_manifest_raw(
            &target,
            index.clone().into_bytes(),
            http::HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
        )
        .await?;
    Ok(titus_agent_shim::containerd::sha256_digest(
        index.as_bytes(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_index_resolves_to_its_linux_amd64_manifest() -> anyhow::Result<()> {
    let env = Env::start().await?;
    let index_digest = push_index(&env).await?;
    let multi = format!("{}:multi", env.images.repository);
    let info = env.pull(&multi).await?;
    assert_eq!(
        info.digest, index_digest,
        "the image is named by its index digest"
    );
    assert_eq!(
        info.config.cmd,
        vec!["/bin/sh", "-c", "echo hello from busybox"],
        "the amd64 entry (busybox:1), not the arm64 one"
    );
    let spec = env.spec("multi", &multi, &[], &[]).await?;
    let (exit, stdout) = env.run_and_remove(&spec).await?;
    assert_eq!(exit.code, 0);
    assert_eq!(stdout, "hello from busybox\n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_auth_registry_needs_credentials_given_per_pull_or_configured() -> anyhow::Result<()>
{
    let env = Env::start_with(
        || TestRegistry::start_with_basic_auth("titus", "s3cret"),
        |_| {},
    )
    .await?;
    let image = env.images.busybox.clone();
    match env.runtime.pull(&image, &RegistryAuth::Anonymous).await {
        Err(RuntimeError::Pull { reason, .. }) => {
            assert!(reason.contains("authorized"), "{reason}")
        }
        other => panic!("anonymous pull from an auth registry: {other:?}"),
    }
    let wrong = RegistryAuth::Basic {
        username: "titus".into(),
        password: "wrong".into(),
    };
    assert!(matches!(
        env.runtime.pull(&image, &wrong).await,
        Err(RuntimeError::Pull { .. })
    ));
    let right = RegistryAuth::Basic {
        username: "titus".into(),
        password: "s3cret".into(),
    };
    let info = env.runtime.pull(&image, &right).await?;
    assert_eq!(info.digest, env.images.busybox_digest);

    // Credentials configured for the registry serve anonymous pulls.
    let mut config = env.containerd.runtime_config();
    config
        .registry_credentials
        .insert(env.registry.addr().to_owned(), right);
    let configured = ContainerdRuntime::connect(config).await?;
    let info = configured
        .pull(&env.images.entrypoint, &RegistryAuth::Anonymous)
        .await?;
    assert_eq!(info.digest, env.images.entrypoint_digest);
    Ok(())
}
