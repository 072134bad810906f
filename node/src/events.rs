//! Committed events for the outside world: the leader publishes every committed event once into
//! the site's JetStream stream, and `flowlens events tail` follows it.
//!
//! Subjects are `flowlens.<site>.events.<kind>` (`asset.discovered`, `dependency.traffic`, …:
//! [`proto::event::EventKind::name`]); the stream is `FLOWLENS_<SITE>`. Each message is one
//! [`PublishedEvent`] in JSON with `Nats-Msg-Id = <site>:<log index>:<position in the entry>`.
//! A new leader resumes after the last message in the stream, and JetStream drops a message
//! whose id it has seen within its duplicate window, so a leader change never publishes an
//! event twice. The schema is in `docs/events.md`.

use std::time::Duration;

use anyhow::{bail, Context as _};
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use proto::event::Event;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::raft::EventLog;

/// The version of [`PublishedEvent`]'s JSON; raised on any incompatible change.
pub const EVENT_JSON_SCHEMA: u32 = 1;

/// Entries read from the log per round.
const ENTRIES_PER_ROUND: u64 = 256;

/// How long JetStream remembers message ids (a leader change must resume within it).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// One committed event as subscribers receive it.
#[derive(Debug, Serialize)]
pub struct PublishedEvent<'a> {
    /// [`EVENT_JSON_SCHEMA`].
    pub schema: u32,
    /// The site (cluster) that committed it.
    pub site: &'a str,
    /// Its Raft log index.
    pub index: u64,
    /// Its position among the entry's events.
    pub position: u32,
    /// The event: `at_ms`, `kind` and the kind's fields.
    #[serde(flatten)]
    pub event: &'a Event,
}

/// The subject an event of kind `kind` is published on.
pub fn subject(site: &str, kind: &str) -> String {
    format!("flowlens.{site}.events.{kind}")
}

/// The stream holding a site's events (a site name is a valid stream name suffix as it is).
pub fn stream_name(site: &str) -> String {
    format!("FLOWLENS_{site}")
}

/// The message id of the event at `position` in entry `index`.
pub fn message_id(site: &str, index: u64, position: u32) -> String {
    format!("{site}:{index}:{position}")
}

/// Reads (index, position) back from a message id of `site`.
fn parse_message_id(site: &str, id: &str) -> Option<(u64, u32)> {
    let rest = id.strip_prefix(site)?.strip_prefix(':')?;
    let (index, position) = rest.split_once(':')?;
    Some((index.parse().ok()?, position.parse().ok()?))
}

/// Creates the site's stream if it does not exist.
async fn ensure_stream(
    js: &jetstream::Context,
    site: &str,
    max_age: Duration,
) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: stream_name(site),
        subjects: vec![format!("flowlens.{site}.events.>")],
        max_age,
        duplicate_window: DUPLICATE_WINDOW,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .with_context(|| format!("cannot create the JetStream stream {}", stream_name(site)))
}

/// Publishes committed events while this node leads, until the task is aborted.
pub fn spawn_publisher(
    client: async_nats::Client,
    site: String,
    max_age: Duration,
    log: std::sync::Arc<EventLog>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let js = jetstream::new(client);
        let mut failures = 0u32;
        // Where the round that failed began: its acks may have failed out of order, so the
        // stream's last message does not prove the ones before it were stored. Publishing the
        // round again is safe: JetStream drops the ids it already has.
        let mut retry_from = None;
        loop {
            let leading = log.metrics().state == openraft::ServerState::Leader;
            if !leading {
                retry_from = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            match publish_while_leading(&js, &site, max_age, &log, &mut retry_from).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(error = %format!("{e:#}"), failures, "publishing events");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    })
}

/// Resumes after the stream's last message (or, after a failed round, at that round's start)
/// and publishes until this node stops leading. Entries are read from the history, which keeps
/// what the Raft log has purged.
async fn publish_while_leading(
    js: &jetstream::Context,
    site: &str,
    max_age: Duration,
    log: &EventLog,
    retry_from: &mut Option<(u64, u32)>,
) -> anyhow::Result<()> {
    let mut stream = ensure_stream(js, site, max_age).await?;
    let last = stream
        .info()
        .await
        .context("stream info")?
        .state
        .last_sequence;
    let first = log
        .history()
        .base_point()?
        .map_or(0, |(index, _)| index + 1);
    let mut next = (first, 0u32);
    if let Some(from) = retry_from.take() {
        next = from;
    } else if last > 0 {
        let msg = stream
            .get_raw_message(last)
            .await
            .context("reading the stream's last message")?;
        let id = msg
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        match parse_message_id(site, &id) {
            Some((index, position)) => next = (index, position + 1),
            None => bail!("the stream's last message has no FlowLens message id ({id:?})"),
        }
    }
    while log.metrics().state == openraft::ServerState::Leader {
        let applied = log.applied_index();
        if next.0 > applied {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let end = applied.min(next.0 + ENTRIES_PER_ROUND - 1);
        let mut acks = Vec::new();
        let mut last_index = next.0;
        *retry_from = Some(next);
        for (index, batch) in log.history().entries_in(next.0..=end)? {
            last_index = index;
            let Some(batch) = batch else { continue };
            for (position, event) in (0u32..).zip(&batch.events) {
                if index == next.0 && position < next.1 {
                    continue;
                }
                let message = PublishedEvent {
                    schema: EVENT_JSON_SCHEMA,
                    site,
                    index,
                    position,
                    event,
                };
                let payload = serde_json::to_vec(&message)?;
                let publish = jetstream::message::PublishMessage::build()
                    .payload(payload.into())
                    .message_id(message_id(site, index, position));
                let ack = js
                    .send_publish(subject(site, event.kind.name()), publish)
                    .await
                    .context("publishing an event")?;
                acks.push(ack);
            }
        }
        for ack in acks {
            ack.await.context("JetStream did not store an event")?;
        }
        *retry_from = None;
        next = (last_index.max(end) + 1, 0);
    }
    Ok(())
}

/// `flowlens events` commands.
#[derive(clap::Subcommand, Debug)]
pub enum EventsCommand {
    /// Print a site's committed events as JSON lines, as they are published.
    Tail(TailArgs),
}

/// `flowlens events tail` flags.
#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// NATS server URL.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// The site (cluster name) whose events to follow.
    #[arg(long, default_value = "flowlens")]
    pub site: String,
    /// NATS authentication and TLS.
    #[command(flatten)]
    pub security: crate::nats::NatsSecurity,
    /// Event kinds, as a subject filter: `asset.*`, `dependency.discovered`, `>` for all.
    #[arg(long, default_value = ">")]
    pub filter: String,
    /// Start with the oldest event kept instead of new ones.
    #[arg(long)]
    pub from_start: bool,
    /// Exit after this many events.
    #[arg(long)]
    pub count: Option<u64>,
    /// Exit once no event has come for this long (`2s`, `500ms`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle_exit: Option<Duration>,
}

/// Runs `flowlens events tail`: prints each event's JSON on its own line.
pub async fn tail(args: &TailArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    crate::admin::check_name("site", &args.site)?;
    if args.filter.is_empty() || args.filter.contains(char::is_whitespace) {
        bail!(
            "--filter {:?}: must be a subject filter such as asset.*",
            args.filter
        );
    }
    let js = jetstream::new(crate::admin::connect(&args.nats, &args.security).await?);
    let name = stream_name(&args.site);
    let stream = js.get_stream(&name).await.with_context(|| {
        format!(
            "site {}: no event stream {name} (has its leader run in a cluster yet?)",
            args.site
        )
    })?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject(&args.site, &args.filter),
            deliver_policy: if args.from_start {
                consumer::DeliverPolicy::All
            } else {
                consumer::DeliverPolicy::New
            },
            ..Default::default()
        })
        .await
        .context("cannot create a consumer")?;
    let mut messages = consumer.messages().await.context("cannot consume")?;
    let mut seen = 0u64;
    let stdout = std::io::stdout();
    loop {
        if args.count.is_some_and(|n| seen >= n) {
            return Ok(());
        }
        let next = match args.idle_exit {
            Some(idle) => match tokio::time::timeout(idle, messages.next()).await {
                Ok(next) => next,
                Err(_) => return Ok(()),
            },
            None => messages.next().await,
        };
        let Some(message) = next else {
            return Ok(());
        };
        let message = message.context("reading an event")?;
        let mut out = stdout.lock();
        out.write_all(&message.payload)?;
        out.write_all(b"\n")?;
        out.flush()?;
        seen += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_read_back() {
        let id = message_id("site-a", 42, 7);
        assert_eq!(id, "site-a:42:7");
        assert_eq!(parse_message_id("site-a", &id), Some((42, 7)));
        assert_eq!(parse_message_id("site-b", &id), None);
        assert_eq!(parse_message_id("site-a", "site-a:x:1"), None);
        assert_eq!(stream_name("site-a"), "FLOWLENS_site-a");
        assert_eq!(
            subject("a", "asset.discovered"),
            "flowlens.a.events.asset.discovered"
        );
    }
}
