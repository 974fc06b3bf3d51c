//! The NATS JetStream implementation of the bus: one file stream over
//! `<prefix>.>` with the configured replicas and duplicate window, publishes with
//! `Nats-Msg-Id` retried until a PubAck arrives, a durable pull consumer per
//! partition (explicit acks, raised `max_ack_pending`), consumer lag for the
//! detector's barrier, and the detector lease in a key-value bucket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::Publish;
use async_nats::jetstream::stream::{self, StorageType};
use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::message::{decode, encode, OutgoingBatch, MESSAGE_VERSION, VERSION_HEADER};
use crate::{BatchPublisher, Bus, BusConfig, BusError, ConsumeStats, Handler, PublishReport};
use scanwatch_centre::PublishFuture;

fn nats<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> BusError + '_ {
    move |e| BusError::Nats(format!("{what}: {e}"))
}

/// How long a role's start-up waits for an answer about the event stream or the
/// deployment stream (made, read, the seed read) before it asks again
/// (`answered`); the client's request timeout, for every other JetStream request,
/// stays at its default 10 s. Observed with nats-server 2.9.10 (the Debian
/// package): of eight roles starting at once on a fresh 3-node cluster, some get
/// no answer to their creation of a stream that the others are creating (a bug
/// like nats-io/nats-server#3677), or to the first read of a stream just made, and
/// such a role waited the whole 10 s, twice when it met it twice
/// (`tests/scale/start-race.sh`). Asked again, the stream is found made.
const API_TIMEOUT: Duration = Duration::from_secs(3);

/// `request`, a stream's creation, or an error once it has gone unanswered for
/// [`API_TIMEOUT`].
async fn answered<T, E: std::fmt::Display>(
    what: &str,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BusError> {
    match tokio::time::timeout(API_TIMEOUT, request).await {
        Ok(r) => r.map_err(nats(what)),
        Err(_) => Err(BusError::Nats(format!(
            "{what}: no answer in {} s",
            API_TIMEOUT.as_secs()
        ))),
    }
}

/// A step asked again until `deadline` (connecting, making the stream, storing
/// the seed): a failure is a warning, with the error, once the step has taken a
/// second (before that, roles starting together meet each other's half-made
/// streams, which is expected: debug), then at most one every 5 s, so a role that
/// waits says what for.
struct Retrying<'a> {
    what: &'a str,
    started: Instant,
    deadline: Instant,
    warned: Option<Instant>,
}

impl<'a> Retrying<'a> {
    fn new(what: &'a str, deadline: Instant) -> Self {
        Retrying {
            what,
            started: Instant::now(),
            deadline,
            warned: None,
        }
    }

    /// Whether to ask again after `error` (the deadline is not reached); logs it.
    fn again(&mut self, error: &dyn std::fmt::Display) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        if now.duration_since(self.started) < Duration::from_secs(1) {
            tracing::debug!(%error, "bus: {} did not succeed yet; asking again", self.what);
        } else if self
            .warned
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(5))
        {
            self.warned = Some(now);
            tracing::warn!(
                %error,
                left_s = self.deadline.duration_since(now).as_secs(),
                "bus: {} did not succeed yet; asking again",
                self.what
            );
        }
        true
    }
}

/// A connection to the NATS cluster with the stream made sure of.
#[derive(Clone)]
pub struct NatsBus {
    cfg: BusConfig,
    client: async_nats::Client,
    js: jetstream::Context,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("url", &self.cfg.url)
            .finish()
    }
}

impl NatsBus {
    /// Connects (retrying for up to `publish_timeout`) and creates the stream if it
    /// does not exist (the same config again is accepted by the server).
    pub async fn connect(cfg: &BusConfig) -> Result<NatsBus, BusError> {
        cfg.validate()?;
        if !cfg.enabled() {
            return Err(BusError::Config("bus.kind is \"none\"".into()));
        }
        let deadline = Instant::now() + cfg.publish_timeout()?;
        let mut retry = Retrying::new("connecting", deadline);
        let client = loop {
            match connect_options(cfg)
                .await?
                .name("scanwatch")
                .connection_timeout(Duration::from_secs(5))
                .connect(cfg.urls())
                .await
            {
                Ok(c) => break c,
                Err(e) if retry.again(&e) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(nats("cannot connect")(e)),
            }
        };
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(5));
        let bus = NatsBus {
            cfg: cfg.clone(),
            client,
            js,
        };
        bus.ensure_stream(deadline).await?;
        Ok(bus)
    }

    pub fn config(&self) -> &BusConfig {
        &self.cfg
    }

    async fn ensure_stream(&self, deadline: Instant) -> Result<(), BusError> {
        let sc = stream::Config {
            name: self.cfg.stream.clone(),
            subjects: vec![format!("{}.>", self.cfg.subject_prefix)],
            storage: StorageType::File,
            num_replicas: self.cfg.replicas,
            duplicate_window: self.cfg.duplicate_window()?,
            max_age: self.cfg.max_age()?,
            ..Default::default()
        };
        // Right after a cluster starts, JetStream may have no meta leader yet.
        let mut retry = Retrying::new("making the stream", deadline);
        loop {
            let made = answered(
                "cannot create the stream",
                self.js.get_or_create_stream(sc.clone()),
            );
            match made.await {
                Ok(_) => return Ok(()),
                Err(e) if retry.again(&e) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The durable pull consumer of one partition (created on first use).
    async fn consumer(
        &self,
        partition: u32,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, BusError> {
        let name = self.cfg.consumer_name(partition);
        let stream = self
            .js
            .get_stream(&self.cfg.stream)
            .await
            .map_err(nats("cannot open the stream"))?;
        stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: self.cfg.subject(partition),
                    ack_policy: AckPolicy::Explicit,
                    deliver_policy: DeliverPolicy::All,
                    ack_wait: self.cfg.ack_wait()?,
                    max_ack_pending: self.cfg.max_ack_pending,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats("cannot create the consumer"))
    }

    /// Publishes one message, retrying with the same id until a PubAck or the
    /// deadline; returns whether the server called it a duplicate.
    async fn publish_one(
        &self,
        subject: String,
        id: String,
        payload: bytes::Bytes,
        deadline: Instant,
    ) -> Result<bool, BusError> {
        let mut wait = Duration::from_millis(50);
        loop {
            let p = Publish::build()
                .payload(payload.clone())
                .message_id(&id)
                .header(VERSION_HEADER, MESSAGE_VERSION.to_string().as_str());
            let err = match self.js.send_publish(subject.clone(), p).await {
                Ok(ack) => match ack.await {
                    Ok(a) => return Ok(a.duplicate),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(BusError::Timeout(format!("{id} ({err})")));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }

    /// Whether every partition's consumer has delivered and seen acknowledged every
    /// message of its partition (nothing pending, nothing in flight): then all that
    /// was published before this call is in the store.
    pub async fn caught_up(&self) -> Result<bool, BusError> {
        for p in 0..self.cfg.partitions {
            let mut c = self.consumer(p).await?;
            let info = c.info().await.map_err(nats("consumer info"))?;
            if info.num_pending > 0 || info.num_ack_pending > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The lease stream: one subject per lease, one message each, messages expire
    /// after `lease_ttl` (so an unrenewed lease disappears by itself).
    async fn lease_stream(&self) -> Result<stream::Stream, BusError> {
        let sc = stream::Config {
            name: self.cfg.lease_bucket.clone(),
            subjects: vec![format!("{}.*", self.cfg.lease_bucket)],
            storage: StorageType::File,
            num_replicas: self.cfg.replicas,
            max_age: self.cfg.lease_ttl()?,
            max_messages_per_subject: 1,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(sc)
            .await
            .map_err(nats("cannot create the lease stream"))
    }

    /// Tries to take the lease `name` for `holder`: `Some` if it was free (never
    /// taken, released, or its holder stopped renewing for `lease_ttl`). A
    /// compare-and-set: the publish only succeeds if the subject has no message.
    pub async fn try_lease(&self, name: &str, holder: &str) -> Result<Option<Lease>, BusError> {
        let stream = self.lease_stream().await?;
        let subject = format!("{}.{name}", self.cfg.lease_bucket);
        match cas(&self.js, &subject, holder, 0, "lease").await? {
            Some(revision) => Ok(Some(Lease {
                js: self.js.clone(),
                stream,
                subject,
                holder: holder.to_string(),
                revision,
            })),
            None => Ok(None),
        }
    }

    /// The deployment's sample seed (`scanwatch_aggregate::sample_seed`), which
    /// every role must share: the first role to ask publishes a random one to a
    /// stream of its own (`<stream>_DEPLOYMENT`, kept for good) by a
    /// compare-and-set on an empty subject; every role then reads the one stored.
    /// Right after a cluster starts, or while another role is making the stream,
    /// it is asked again for up to `publish_timeout`.
    pub async fn sample_seed(&self) -> Result<u64, BusError> {
        let (name, subject) = self.cfg.deployment_stream();
        let sc = stream::Config {
            name,
            subjects: vec![subject.clone()],
            storage: StorageType::File,
            num_replicas: self.cfg.replicas,
            max_messages_per_subject: 1,
            // Kept for good: a new seed would make every stored part's sample
            // foreign (read as a sample of its own entries, `witness`).
            deny_delete: true,
            deny_purge: true,
            ..Default::default()
        };
        let candidate = scanwatch_store::random_id()?;
        let deadline = Instant::now() + self.cfg.publish_timeout()?;
        let mut retry = Retrying::new("storing the deployment's sample seed", deadline);
        let payload = loop {
            match self.seed_stored(&sc, &subject, candidate).await {
                Ok(payload) => break payload,
                Err(e @ (BusError::Nats(_) | BusError::NoStream(_))) if retry.again(&e) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e),
            }
        };
        std::str::from_utf8(&payload)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                BusError::Nats(format!(
                    "the deployment's sample seed on {subject} is not a number"
                ))
            })
    }

    /// Makes sure of the deployment stream and that a seed is stored on it (this
    /// one, `candidate`, unless another role stored one first); the stored one.
    async fn seed_stored(
        &self,
        sc: &stream::Config,
        subject: &str,
        candidate: u64,
    ) -> Result<bytes::Bytes, BusError> {
        let mut stream = answered(
            "cannot create the deployment stream",
            self.js.get_or_create_stream(sc.clone()),
        )
        .await?;
        let info = answered("cannot read the deployment stream", stream.info()).await?;
        if !info.config.subjects.iter().any(|s| s == subject) {
            return Err(BusError::Config(format!(
                "a stream named {} exists without subject {subject} (another deployment's?): set [bus] stream to a name of this deployment's own",
                info.config.name
            )));
        }
        // `None`: another role stored one first; the one stored is read either way.
        cas(&self.js, subject, &candidate.to_string(), 0, "sample seed").await?;
        let msg = answered(
            "cannot read the deployment's sample seed",
            stream.get_last_raw_message_by_subject(subject),
        )
        .await?;
        Ok(msg.payload)
    }

    /// Flushes what the client still has to send (acks).
    pub async fn flush(&self) -> Result<(), BusError> {
        self.client.flush().await.map_err(nats("flush"))
    }
}

/// Publishes `value` to `subject` only if the subject's last message has sequence
/// `expected` (0: none); `None` if it had another.
async fn cas(
    js: &jetstream::Context,
    subject: &str,
    value: &str,
    expected: u64,
    what: &str,
) -> Result<Option<u64>, BusError> {
    let p = Publish::build()
        .payload(bytes::Bytes::from(value.to_string()))
        .expected_last_subject_sequence(expected);
    use jetstream::context::PublishErrorKind;
    let refused = |e: jetstream::context::PublishError| match e.kind() {
        PublishErrorKind::StreamNotFound => BusError::NoStream(subject.to_string()),
        _ => nats(what)(e),
    };
    let ack = js
        .send_publish(subject.to_string(), p)
        .await
        .map_err(refused)?;
    match ack.await {
        Ok(a) => Ok(Some(a.sequence)),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(None),
        Err(e) => Err(refused(e)),
    }
}

/// A held lease: renew it well within `lease_ttl` (a compare-and-set on the
/// sequence of its last renewal, so two holders can never both renew).
#[derive(Debug)]
pub struct Lease {
    js: jetstream::Context,
    stream: stream::Stream,
    subject: String,
    holder: String,
    revision: u64,
}

impl Lease {
    /// Renews the lease; `false` if it was lost (expired, maybe taken by another).
    pub async fn renew(&mut self) -> Result<bool, BusError> {
        match cas(
            &self.js,
            &self.subject,
            &self.holder,
            self.revision,
            "lease",
        )
        .await?
        {
            Some(r) => {
                self.revision = r;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Gives the lease up at once (a clean stop), so a standby need not wait.
    pub async fn release(self) -> Result<(), BusError> {
        self.stream
            .purge()
            .filter(self.subject.clone())
            .await
            .map(|_| ())
            .map_err(nats("lease release"))
    }
}

impl NatsBus {
    /// Publishes every part of a batch; resolves once each part is durable.
    async fn publish_parts(&self, batch: &OutgoingBatch) -> Result<PublishReport, BusError> {
        let msgs = encode(batch, self.cfg.partitions, self.cfg.max_message_bytes);
        let deadline = Instant::now() + self.cfg.publish_timeout()?;
        let futs = msgs.into_iter().map(|m| {
            self.publish_one(
                self.cfg.subject(m.partition),
                m.msg_id,
                bytes::Bytes::from(m.payload),
                deadline,
            )
        });
        let results = futures_util::future::join_all(futs).await;
        let mut report = PublishReport::default();
        for r in results {
            if r? {
                report.duplicates += 1;
            } else {
                report.stored += 1;
            }
        }
        Ok(report)
    }
}

impl Bus for NatsBus {
    async fn consume(
        &self,
        partition: u32,
        handler: Handler,
        mut stop: watch::Receiver<bool>,
    ) -> Result<ConsumeStats, BusError> {
        let consumer = self.consumer(partition).await?;
        let mut stats = ConsumeStats::default();
        // Consecutive store failures of this partition: the nak delay and the pause
        // before the next fetch grow with them (bounded), and a recovery is logged.
        let mut failures: u32 = 0;
        while !*stop.borrow() {
            let batch = consumer
                .batch()
                .max_messages(self.cfg.fetch_batch)
                .expires(Duration::from_secs(1))
                .messages()
                .await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(_) => {
                    tokio::select! {
                        _ = stop.changed() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    continue;
                }
            };
            // The whole fetch first (up to `fetch_batch` messages or 1 s), then one
            // store commit for all of it: the store's cost is per commit, not per
            // message.
            let mut msgs: Vec<(async_nats::jetstream::Message, Arc<crate::BusBatch>)> = Vec::new();
            loop {
                let next = tokio::select! {
                    m = batch.next() => m,
                    _ = stop.changed() => None,
                };
                let Some(m) = next else { break };
                let Ok(m) = m else { break };
                let id = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default();
                match decode(&id, &m.payload) {
                    Ok(d) => msgs.push((m, Arc::new(d))),
                    Err(_) => {
                        // A message this build cannot read would come back forever:
                        // terminate it (counted), never ack it as stored.
                        stats.refused += 1;
                        let _ = m.ack_with(AckKind::Term).await;
                    }
                }
            }
            if msgs.is_empty() {
                continue;
            }
            let parts: Vec<Arc<crate::BusBatch>> = msgs.iter().map(|(_, b)| b.clone()).collect();
            let mut backoff: Option<Duration> = None;
            match commit_with_retries(&handler, parts).await {
                Ok(outcomes) => {
                    if failures > 0 {
                        tracing::info!(
                            partition,
                            failures,
                            "aggregator: partition {partition}: store accepts again after {failures} failed fetches"
                        );
                        failures = 0;
                    }
                    // Ack only now: the store has them. A lost ack only means a
                    // redelivery, which the store answers with `Duplicate`.
                    for ((m, b), outcome) in msgs.iter().zip(outcomes) {
                        match outcome {
                            scanwatch_store::BatchOutcome::Accepted { events } => {
                                stats.accepted += 1;
                                stats.events += events as u64;
                            }
                            scanwatch_store::BatchOutcome::Duplicate => stats.duplicates += 1,
                        }
                        if let Err(e) = m.ack().await {
                            tracing::warn!(
                                partition,
                                msg_id = %b.msg_id,
                                error = %e,
                                "aggregator: partition {partition}: ack of {}: {e}",
                                b.msg_id
                            );
                            break;
                        }
                    }
                }
                Err(e) => {
                    stats.failed += msgs.len() as u64;
                    failures = failures.saturating_add(1);
                    let delay = fail_delay(failures);
                    tracing::warn!(
                        partition,
                        messages = msgs.len(),
                        error = %e,
                        "aggregator: partition {partition}: {} messages not stored ({e}); not acked, redelivered in {delay:?}",
                        msgs.len()
                    );
                    // Never acked: redelivered after `delay`.
                    for (m, _) in &msgs {
                        let _ = m.ack_with(AckKind::Nak(Some(delay))).await;
                    }
                    backoff = Some(delay);
                }
            }
            if let Some(delay) = backoff {
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
        let _ = self.client.flush().await;
        Ok(stats)
    }
}

/// In-process attempts at one fetch before it is handed back to JetStream.
const COMMIT_ATTEMPTS: u32 = 3;

/// The nak delay (and pause) after `n` consecutive failed fetches: 1 s doubling up to
/// 8 s.
fn fail_delay(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(3))
}

/// Runs the handler off the async threads, up to [`COMMIT_ATTEMPTS`] times with a
/// short backoff (100 ms, 200 ms) for brief store hiccups. A panic in the handler
/// counts as a failure (never as stored).
async fn commit_with_retries(
    handler: &Handler,
    batches: Vec<Arc<crate::BusBatch>>,
) -> Result<Vec<scanwatch_store::BatchOutcome>, BusError> {
    let batches = Arc::new(batches);
    let mut wait = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        let (h, b) = (handler.clone(), batches.clone());
        let r = match tokio::task::spawn_blocking(move || h(&b)).await {
            Ok(r) => r,
            Err(e) => Err(BusError::Handler(format!("handler failed: {e}"))),
        };
        match r {
            Ok(o) => return Ok(o),
            Err(e) if attempt >= COMMIT_ATTEMPTS => return Err(e),
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
        }
    }
}

/// The one publish trait: the collector publishes through it.
impl BatchPublisher for NatsBus {
    fn publish<'a>(&'a self, batch: &'a OutgoingBatch) -> PublishFuture<'a> {
        Box::pin(async move { Ok(self.publish_parts(batch).await?) })
    }
}

/// Shared handle type for the roles.
pub type SharedBus = Arc<NatsBus>;

/// The connect options of `[bus]`'s authentication and TLS: the secret files are
/// read here (a missing or empty one is an error naming it).
async fn connect_options(cfg: &BusConfig) -> Result<async_nats::ConnectOptions, BusError> {
    let secret = |what: &str, p: &std::path::Path| -> Result<String, BusError> {
        let s = std::fs::read_to_string(p)
            .map_err(|e| BusError::Config(format!("bus.{what} {}: {e}", p.display())))?;
        let s = s.trim().to_string();
        if s.is_empty() {
            return Err(BusError::Config(format!(
                "bus.{what} {} is empty",
                p.display()
            )));
        }
        Ok(s)
    };
    let mut o = async_nats::ConnectOptions::new();
    if let (Some(u), Some(p)) = (&cfg.user, &cfg.password_file) {
        o = o.user_and_password(u.clone(), secret("password_file", p)?);
    }
    if let Some(p) = &cfg.token_file {
        o = o.token(secret("token_file", p)?);
    }
    if let Some(p) = &cfg.nkey_seed_file {
        o = o.nkey(secret("nkey_seed_file", p)?);
    }
    if let Some(p) = &cfg.credentials_file {
        o = async_nats::ConnectOptions::with_credentials_file(p.clone())
            .await
            .map_err(|e| BusError::Config(format!("bus.credentials_file {}: {e}", p.display())))?;
    }
    if let Some(ca) = &cfg.tls_ca_file {
        if !ca.exists() {
            return Err(BusError::Config(format!(
                "bus.tls_ca_file {} does not exist",
                ca.display()
            )));
        }
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(c), Some(k)) = (&cfg.tls_cert_file, &cfg.tls_key_file) {
        o = o
            .add_client_certificate(c.clone(), k.clone())
            .require_tls(true);
    }
    Ok(o)
}
