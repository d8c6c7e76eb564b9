//! `MesosFramework`: an async Mesos v1 scheduler-API framework over plain HTTP (hyper).
//!
//! [`MesosFramework::start`] spawns a driver task that:
//!
//! - SUBSCRIBEs (with its framework id once it has one, top-level and in `framework_info.id`),
//!   reads the RecordIO event stream, and sends every other call on separate connections with
//!   the subscription's `Mesos-Stream-Id`;
//! - keeps the outstanding offers per host, forgets rescinded ones (a launch on a host whose
//!   offers were all rescinded fails with [`FrameworkError::NoOffers`] and sends nothing), drops
//!   all of them on (re-)subscription and agent loss, and declines offers held longer than
//!   [`FrameworkConfig::offer_hold`];
//! - launches with ACCEPT/LAUNCH over all of a host's offers (Fenzo's lease pool);
//! - surfaces status updates mapped to Titus states, with an [`AckToken`] the consumer hands
//!   back to [`MesosFramework::acknowledge`] once it has recorded the new state;
//! - treats `missed_heartbeats` heartbeat intervals without any event as a lost connection,
//!   re-subscribes with exponential back-off, and after every SUBSCRIBED runs explicit
//!   reconciliation of the tasks it knows (implicit when it knows none), re-sending for tasks
//!   still unanswered with back-off.
//!
//! The consumer reads [`FrameworkEvent`]s from the returned channel.

mod driver;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::mesos::calls::CallType;
use crate::mesos::offers::OfferMapping;
use crate::mesos::states::{TitusReasonCode, TitusTaskState};
use crate::mesos::types::{FrameworkInfo, Id, Source, TaskInfo, TaskState};
use crate::model::Agent;

/// Driver settings.
#[derive(Clone, Debug)]
pub struct FrameworkConfig {
    /// Base URL of a master, `http://host:5050`.
    pub master: String,
    /// The framework to subscribe as.
    pub framework_info: FrameworkInfo,
    /// How offers become agents.
    pub offer_mapping: OfferMapping,
    /// Heartbeat intervals without any event before the connection is considered lost (5).
    pub missed_heartbeats: u32,
    /// First re-subscription delay (doubles up to `backoff_max`).
    pub backoff_min: Duration,
    /// Largest re-subscription delay (15 s, as the Mesos guide suggests).
    pub backoff_max: Duration,
    /// Timeout of one call (75 s, as the Mesos guide suggests).
    pub call_timeout: Duration,
    /// How long an unused offer is held before it is declined (Fenzo: 120 s).
    pub offer_hold: Duration,
    /// `refuse_seconds` of declines (Mesos default 5).
    pub decline_refuse_seconds: f64,
    /// `refuse_seconds` for the unused part of accepted offers (Mesos default 5).
    pub accept_refuse_seconds: f64,
    /// First delay before re-sending reconciliation for unanswered tasks (doubles up to
    /// `reconcile_retry_max`).
    pub reconcile_retry: Duration,
    /// Largest reconciliation re-send delay.
    pub reconcile_retry_max: Duration,
    /// Period of offer-expiry and reconciliation checks.
    pub housekeeping_interval: Duration,
}

impl FrameworkConfig {
    /// Defaults for a master at `master`.
    pub fn new(master: impl Into<String>, framework_info: FrameworkInfo) -> FrameworkConfig {
        FrameworkConfig {
            master: master.into(),
            framework_info,
            offer_mapping: OfferMapping::default(),
            missed_heartbeats: 5,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(15),
            call_timeout: Duration::from_secs(75),
            offer_hold: Duration::from_secs(120),
            decline_refuse_seconds: 5.0,
            accept_refuse_seconds: 5.0,
            reconcile_retry: Duration::from_secs(5),
            reconcile_retry_max: Duration::from_secs(300),
            housekeeping_interval: Duration::from_secs(1),
        }
    }
}

/// All outstanding offers of one host, as one agent.
#[derive(Clone, Debug, PartialEq)]
pub struct HostOffers {
    /// Host name (the agent id in the scheduler's model).
    pub host: String,
    /// The Mesos agent id the offers belong to.
    pub agent_id: String,
    /// The offers, oldest first.
    pub offer_ids: Vec<String>,
    /// What they offer, mapped to the scheduler's model.
    pub agent: Agent,
}

/// What the consumer returns to acknowledge a status update it has recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckToken {
    agent_id: Id,
    task_id: Id,
    uuid: String,
}

impl AckToken {
    /// The update's uuid, as the master sent it (base64).
    pub fn uuid(&self) -> &str {
        &self.uuid
    }
}

/// A task status update, mapped to Titus.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    /// The task.
    pub task_id: String,
    /// Its agent, when the master said.
    pub agent_id: Option<String>,
    /// The Mesos state.
    pub state: TaskState,
    /// The Titus state and reason code; `None` for states Titus ignored.
    pub titus: Option<(TitusTaskState, TitusReasonCode)>,
    /// `REASON_*` (e.g. `REASON_RECONCILIATION`).
    pub reason: Option<String>,
    /// Human message.
    pub message: Option<String>,
    /// Who generated it.
    pub source: Option<Source>,
    /// Present when the update must be acknowledged (it carried a uuid).
    pub ack: Option<AckToken>,
}

/// What the driver reports.
#[derive(Clone, Debug, PartialEq)]
pub enum FrameworkEvent {
    /// A subscription is live; offers held before are gone.
    Subscribed {
        /// The framework id (stable across re-subscriptions).
        framework_id: String,
    },
    /// The set of held offers changed.
    OffersChanged {
        /// Hosts with offers now.
        hosts: usize,
    },
    /// A task status update.
    TaskStatus(StatusUpdate),
    /// The master reported an agent lost; its offers were dropped.
    AgentLost {
        /// The Mesos agent id.
        agent_id: String,
    },
    /// The master sent ERROR; the driver re-subscribes.
    Error {
        /// The master's message.
        message: String,
    },
    /// The subscription ended; the driver re-subscribes with back-off.
    Disconnected {
        /// Why.
        reason: String,
    },
}

/// Errors of framework calls.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameworkError {
    /// No live subscription.
    #[error("not subscribed to a Mesos master")]
    NotSubscribed,
    /// No offer is held for the host (never offered, launched on, declined or rescinded).
    #[error("no offers held for host {host}")]
    NoOffers {
        /// The host.
        host: String,
    },
    /// The task is not known to the framework.
    #[error("task {task_id} is not known")]
    UnknownTask {
        /// The task.
        task_id: String,
    },
    /// The master answered with an error status.
    #[error("master answered {status} to {call:?}: {body}")]
    Status {
        /// The call.
        call: CallType,
        /// HTTP status.
        status: u16,
        /// The master's plain-text reason.
        body: String,
    },
    /// The call could not be sent or timed out.
    #[error("{call:?} call failed: {message}")]
    Transport {
        /// The call.
        call: CallType,
        /// What went wrong.
        message: String,
    },
    /// The driver has stopped.
    #[error("the framework driver has stopped")]
    Stopped,
}

type Reply<T> = oneshot::Sender<Result<T, FrameworkError>>;

enum Command {
    Offers(Reply<Vec<HostOffers>>),
    Launch {
        host: String,
        tasks: Vec<TaskInfo>,
        reply: Reply<()>,
    },
    Decline {
        host: String,
        reply: Reply<()>,
    },
    Acknowledge {
        token: AckToken,
        reply: Reply<()>,
    },
    Kill {
        task_id: String,
        reply: Reply<()>,
    },
    Track {
        task_id: String,
        agent_id: Option<String>,
        reply: Reply<()>,
    },
    Reconcile(Reply<()>),
}

/// Handle of a running framework driver; dropping it stops the driver.
#[derive(Debug)]
pub struct MesosFramework {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl MesosFramework {
    /// Spawns the driver on the current Tokio runtime; events arrive on the receiver.
    pub fn start(config: FrameworkConfig) -> (MesosFramework, mpsc::Receiver<FrameworkEvent>) {
        let (commands, command_rx) = mpsc::channel(64);
        let (events, event_rx) = mpsc::channel(4096);
        let task = tokio::spawn(driver::Driver::new(config, events).run(command_rx));
        (MesosFramework { commands, task }, event_rx)
    }

    async fn ask<T>(&self, build: impl FnOnce(Reply<T>) -> Command) -> Result<T, FrameworkError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(build(reply))
            .await
            .map_err(|_| FrameworkError::Stopped)?;
        answer.await.map_err(|_| FrameworkError::Stopped)?
    }

    /// The offers held now, one entry per host, by host name.
    pub async fn offers(&self) -> Result<Vec<HostOffers>, FrameworkError> {
        self.ask(Command::Offers).await
    }

    /// Launches tasks on a host with all of its held offers (their `agent_id` is set to the
    /// offers' agent). The offers are used up whatever the answer.
    ///
    /// # Errors
    /// [`FrameworkError::NoOffers`] when no offer is held for the host (nothing is sent);
    /// [`FrameworkError::Status`] / [`FrameworkError::Transport`] when the ACCEPT fails.
    pub async fn launch(&self, host: &str, tasks: Vec<TaskInfo>) -> Result<(), FrameworkError> {
        let host = host.to_string();
        self.ask(|reply| Command::Launch { host, tasks, reply })
            .await
    }

    /// Declines every offer held for a host.
    ///
    /// # Errors
    /// As [`MesosFramework::launch`].
    pub async fn decline(&self, host: &str) -> Result<(), FrameworkError> {
        let host = host.to_string();
        self.ask(|reply| Command::Decline { host, reply }).await
    }

    /// Acknowledges a status update (after recording it).
    ///
    /// # Errors
    /// [`FrameworkError::NotSubscribed`], or the call's failure.
    pub async fn acknowledge(&self, token: AckToken) -> Result<(), FrameworkError> {
        self.ask(|reply| Command::Acknowledge { token, reply })
            .await
    }

    /// Kills a task the framework knows.
    ///
    /// # Errors
    /// [`FrameworkError::UnknownTask`], [`FrameworkError::NotSubscribed`], or the call's failure.
    pub async fn kill(&self, task_id: &str) -> Result<(), FrameworkError> {
        let task_id = task_id.to_string();
        self.ask(|reply| Command::Kill { task_id, reply }).await
    }

    /// Adds a task (known from the consumer's own records, e.g. after a restart) to the set
    /// reconciled after every subscription.
    ///
    /// # Errors
    /// [`FrameworkError::Stopped`].
    pub async fn track_task(
        &self,
        task_id: &str,
        agent_id: Option<&str>,
    ) -> Result<(), FrameworkError> {
        let task_id = task_id.to_string();
        let agent_id = agent_id.map(str::to_string);
        self.ask(|reply| Command::Track {
            task_id,
            agent_id,
            reply,
        })
        .await
    }

    /// Starts explicit reconciliation of every known task now.
    ///
    /// # Errors
    /// [`FrameworkError::NotSubscribed`], or the call's failure.
    pub async fn reconcile(&self) -> Result<(), FrameworkError> {
        self.ask(Command::Reconcile).await
    }
}

impl Drop for MesosFramework {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
