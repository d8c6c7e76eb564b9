//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: the holder renews
//! the lease every `retry_period`; anyone may take it over once it has not been renewed for
//! `lease_duration`; a holder that cannot renew within `renew_deadline` steps down.
//!
//! Leadership gates writers only: every component keeps its caches warm while following, so a
//! takeover starts acting at once. The decision ([`decide`]) is a pure function of the observed
//! lease, the identity and the time; [`LeaderElection::run`] observes and acts.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;

/// Settings of one election.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// Lease name, e.g. `titus-operator`.
    pub lease_name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This candidate's identity (unique per process).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long steps down.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl LeaderElection {
    /// client-go's defaults (15 s lease, 10 s renew deadline, 2 s retry).
    pub fn new(lease_name: &str, namespace: &str, identity: &str) -> Self {
        Self {
            lease_name: lease_name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What to do with the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// No lease yet: create it holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Someone else held it and it expired (or was released): take it over.
    TakeOver,
    /// Someone else holds a valid lease.
    Follow {
        /// The current holder.
        holder: String,
    },
}

/// The pure decision: given the observed lease, who we are and the time.
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> LeaseAction {
    let Some(spec) = lease else {
        return LeaseAction::Create;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        return LeaseAction::Renew;
    }
    if holder.is_empty() {
        return LeaseAction::TakeOver;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let renewed = spec
        .renew_time
        .as_ref()
        .map(|t| t.0)
        .or(spec.acquire_time.as_ref().map(|t| t.0));
    match renewed {
        Some(at) if now.as_second() < at.as_second() + duration => LeaseAction::Follow { holder },
        _ => LeaseAction::TakeOver,
    }
}

fn spec_for(
    identity: &str,
    election: &LeaderElection,
    now: Timestamp,
    previous: Option<&LeaseSpec>,
    new_term: bool,
) -> LeaseSpec {
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(
            i32::try_from(election.lease_duration.as_secs()).unwrap_or(15),
        ),
        acquire_time: if new_term {
            Some(MicroTime(now))
        } else {
            previous.and_then(|p| p.acquire_time.clone())
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if new_term && previous.is_some() {
            transitions + 1
        } else {
            transitions
        }),
        ..LeaseSpec::default()
    }
}

impl LeaderElection {
    /// Runs the election until `shutdown` resolves, publishing whether we lead. On shutdown the
    /// lease is released so a successor takes over at once.
    pub async fn run(
        self,
        client: kube::Client,
        leading: watch::Sender<bool>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let api: Api<Lease> = Api::namespaced(client, &self.namespace);
        let mut last_renewal: Option<tokio::time::Instant> = None;
        tokio::pin!(shutdown);
        loop {
            match self.try_acquire_or_renew(&api).await {
                Ok(true) => last_renewal = Some(tokio::time::Instant::now()),
                Ok(false) => last_renewal = None,
                Err(error) => {
                    tracing::warn!(%error, lease = %self.lease_name, "leader election: lease update failed")
                }
            }
            let is_leader = last_renewal.is_some_and(|t| t.elapsed() < self.renew_deadline);
            if *leading.borrow() != is_leader {
                tracing::info!(lease = %self.lease_name, identity = %self.identity, is_leader, "leadership changed");
            }
            leading.send_replace(is_leader);
            tokio::select! {
                () = tokio::time::sleep(self.retry_period) => {}
                () = &mut shutdown => break,
            }
        }
        if *leading.borrow() {
            leading.send_replace(false);
            if let Err(error) = self.release(&api).await {
                tracing::warn!(%error, "leader election: could not release the lease");
            }
        }
    }

    /// One round; true when we hold the lease afterwards.
    async fn try_acquire_or_renew(&self, api: &Api<Lease>) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = api.get_opt(&self.lease_name).await?;
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let new_spec = match decide(spec, &self.identity, now) {
            LeaseAction::Follow { .. } => return Ok(false),
            LeaseAction::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.lease_name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec_for(&self.identity, self, now, None, true)),
                };
                return match api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
            LeaseAction::Renew => spec_for(&self.identity, self, now, spec, false),
            LeaseAction::TakeOver => spec_for(&self.identity, self, now, spec, true),
        };
        let Some(mut lease) = current else {
            return Ok(false);
        };
        lease.spec = Some(new_spec);
        // replace() carries the resourceVersion we read: a concurrent candidate gets 409.
        match api
            .replace(&self.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn release(&self, api: &Api<Lease>) -> Result<(), kube::Error> {
        let Some(mut lease) = api.get_opt(&self.lease_name).await? else {
            return Ok(());
        };
        if lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            != Some(self.identity.as_str())
        {
            return Ok(());
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        api.replace(&self.lease_name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        let at = Timestamp::from_second(1_000_000 - renewed_secs_ago).unwrap();
        LeaseSpec {
            holder_identity: (!holder.is_empty()).then(|| holder.to_owned()),
            renew_time: Some(MicroTime(at)),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn the_lease_decision_follows_client_go() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let cases: [(&str, Option<LeaseSpec>, LeaseAction); 5] = [
            ("no lease", None, LeaseAction::Create),
            ("we hold it", Some(lease("me", 3, 15)), LeaseAction::Renew),
            (
                "another holds a fresh lease",
                Some(lease("other", 3, 15)),
                LeaseAction::Follow {
                    holder: "other".into(),
                },
            ),
            (
                "another's lease expired",
                Some(lease("other", 16, 15)),
                LeaseAction::TakeOver,
            ),
            ("released", Some(lease("", 0, 1)), LeaseAction::TakeOver),
        ];
        for (name, observed, expected) in cases {
            assert_eq!(decide(observed.as_ref(), "me", now), expected, "{name}");
        }
    }

    #[tokio::test]
    async fn two_candidates_elect_exactly_one_leader_and_a_release_hands_over() {
        let running = titus_apiserver::start(titus_apiserver::ApiServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            fsync: false,
            ..Default::default()
        })
        .await
        .unwrap();
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&running.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let fast = |id: &str| LeaderElection {
            lease_duration: Duration::from_secs(2),
            renew_deadline: Duration::from_millis(1500),
            retry_period: Duration::from_millis(100),
            ..LeaderElection::new("test-lease", "default", id)
        };
        let (a_tx, mut a_rx) = watch::channel(false);
        let (b_tx, mut b_rx) = watch::channel(false);
        let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
        let a = tokio::spawn(fast("a").run(client.clone(), a_tx, async {
            let _ = stopped_a.await;
        }));
        a_rx.wait_for(|l| *l).await.unwrap();
        let b = tokio::spawn(fast("b").run(client.clone(), b_tx, std::future::pending()));
        // b keeps following while a renews.
        let followed = tokio::time::timeout(Duration::from_millis(800), b_rx.wait_for(|l| *l))
            .await
            .is_ok();
        assert!(!followed, "b must not lead while a holds the lease");
        stop_a.send(()).unwrap();
        a.await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), b_rx.wait_for(|l| *l))
            .await
            .unwrap()
            .unwrap();
        b.abort();
    }
}
