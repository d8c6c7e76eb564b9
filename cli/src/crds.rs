//! `titus crds`: prints the CustomResourceDefinitions of the Titus kinds.

use std::io::Write;

use anyhow::Context;

/// Prints every CRD as one multi-document YAML stream (`titus crds | kubectl apply -f -`).
///
/// # Errors
/// Rendering or output failures (a reader that closes the pipe early is not one).
pub fn run() -> anyhow::Result<()> {
    let yaml = titus_crds::crd::crds_yaml().context("rendering the CRDs")?;
    match std::io::stdout().lock().write_all(yaml.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(()),
    }
}
