//! The store: what must survive a restart — sensors and their token hashes, every
//! ingested batch (for exactly-once counting on top of at-least-once delivery) and
//! the raw events of each batch. One trait, [`Store`], so the analysis code never
//! cares which store is underneath; [`sqlite::SqliteStore`] is the embedded default.
//!
//! The store reads no clock: callers pass the time of each change.

pub mod clickhouse;
pub mod sqlite;
pub mod trust;

use scanwatch_event::{Event, Timestamp};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Version of the persisted schema (SQLite `user_version`).
pub const SCHEMA_VERSION: u32 = 11;

/// Errors of a store. Messages are lowercase with no trailing period.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("cannot use data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error(
        "the data directory has schema version {found}; this build reads version {SCHEMA_VERSION}"
    )]
    SchemaVersion { found: u32 },
    #[error("a sensor named {0:?} already exists")]
    SensorExists(String),
    #[error("an API token named {0:?} already exists")]
    TokenExists(String),
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    #[error("no sensor named {0:?}")]
    NoSuchSensor(String),
    #[error("no API token named {0:?}")]
    NoSuchToken(String),
    #[error("invalid sensor name {0:?}: use 1-64 letters, digits, '.', '_' or '-'")]
    InvalidName(String),
    #[error("cannot read random bytes for a token: {0}")]
    Random(String),
    #[error("batch {batch:?} of sensor {sensor:?} is already stored")]
    BatchStored { sensor: String, batch: String },
    #[error("invalid clickhouse configuration: {0}")]
    Config(String),
    #[error("clickhouse: {0}")]
    ClickHouse(String),
    #[error(
        "the clickhouse database has schema version {found}; this build reads version {}",
        clickhouse::SCHEMA_VERSION
    )]
    ClickHouseSchemaVersion { found: u32 },
    #[error("cannot encode a record: {0}")]
    Encode(String),
    /// An aggregate the embedded store keeps (a cell's counter, a source's day)
    /// that no longer reads back: derived data, counted again from the stored
    /// events by the next counting (what happens is said after the detail).
    #[error("a stored aggregate does not read back: {0}")]
    DamagedAggregate(String),
    /// A stored aggregate that does not read back, met again while the
    /// aggregates are counted again after one (a failing disk, a defect): not
    /// counted away again; an operator has to act (the detail says how).
    #[error("a stored aggregate does not read back again while the aggregates are counted again: {0}; check the disk, stop the centre and remove counts.db (and its -wal and -shm) to count them again at start")]
    DamageRecurs(String),
    #[error("this store keeps no {0}")]
    Unsupported(&'static str),
    #[error(
        "event {index} of the batch counts {count} packets; an event counts from 1 to {}",
        scanwatch_event::MAX_COUNT
    )]
    EventCount { index: usize, count: u32 },
}

/// Refuses a batch with an event that counts no packet or more than one line may
/// carry ([`scanwatch_event::MAX_COUNT`]): the parsers and the centre refuse such
/// lines already, and the stores' bounds rely on it (a cell's distinct counts are
/// held to its events; ClickHouse's top-k bound assumes every event counts at
/// least once), so a caller that skipped those checks cannot break them.
pub(crate) fn check_counts(events: &[Event]) -> Result<(), StoreError> {
    match events
        .iter()
        .position(|e| e.count == 0 || e.count > scanwatch_event::MAX_COUNT)
    {
        Some(index) => Err(StoreError::EventCount {
            index,
            count: events[index].count,
        }),
        None => Ok(()),
    }
}

/// What a threat-context document is: the `kind` its items are stored under. One
/// name per concept; the names are what the stores' `kind` column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContextKind {
    /// Advisories (NVD, KEV, Exploit-DB, CSAF), imported by `intel import`.
    Advisory,
    /// The user's asset inventory.
    Asset,
    /// Known benign scanners' networks (`scanwatch_context::benign`).
    Benign,
    /// The IDS alerts sensors send (`scanwatch_context::ids`): kept for the events'
    /// retention, pruned with them (docs/security.md).
    Ids,
    /// Each sensor's trust level, keyed by sensor name (`trust.rs`).
    SensorTrust,
    /// The analysts' states of incidents, keyed by incident id.
    IncidentState,
}

impl ContextKind {
    pub const ALL: [ContextKind; 6] = [
        ContextKind::Advisory,
        ContextKind::Asset,
        ContextKind::Benign,
        ContextKind::Ids,
        ContextKind::SensorTrust,
        ContextKind::IncidentState,
    ];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            ContextKind::Advisory => "advisory",
            ContextKind::Asset => "asset",
            ContextKind::Benign => "benign",
            ContextKind::Ids => "ids",
            ContextKind::SensorTrust => "sensor_trust",
            ContextKind::IncidentState => "incident-state",
        }
    }
}

impl std::fmt::Display for ContextKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One API token as the store knows it (never the token: only its hash is kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub name: String,
    pub role: Role,
    pub created: Timestamp,
    pub revoked: bool,
}

/// One sensor as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorRecord {
    pub name: String,
    pub created: Timestamp,
    pub revoked: bool,
    /// When its last batch was accepted.
    pub last_seen: Option<Timestamp>,
    pub batches: u64,
    pub events: u64,
    /// The last heartbeat: when it arrived, and the sensor's own counters as JSON
    /// (spool backlog, lines read, parse errors, …).
    pub heartbeat: Option<(Timestamp, String)>,
}

/// Roles of API tokens: analysts read, admins also change state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Analyst,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// One (window, protocol, port) cell as stored for queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowRow {
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    /// Protocol number (6 tcp, 17 udp).
    pub proto: u8,
    pub port: u16,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
    /// `[{"ip":…,"events":…}]`, as the API returns it.
    pub top_sources_json: String,
}

/// A stored warning: indexed columns plus its JSON (`docs/json-schema.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    /// Assigned by the store.
    pub id: i64,
    pub kind: String,
    pub proto: u8,
    pub port: u16,
    pub window_start: Timestamp,
    /// 0 info … 4 critical.
    pub severity_rank: u8,
    pub json: String,
}

/// What `top_ports` ranks by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopBy {
    Events,
    Sources,
    Sensors,
}

/// Totals of one port over a time range (exact distinct counts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortTotals {
    pub proto: u8,
    pub port: u16,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
}

/// What one source did on one port over a time range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePort {
    pub proto: u8,
    pub port: u16,
    pub events: u64,
    pub sensors: u64,
    pub targets: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// What committing a batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Stored, durably, with this many events.
    Accepted { events: usize },
    /// This sensor already sent this batch id: nothing was stored again.
    Duplicate,
}

/// One sensor batch (or the part of it for one partition) in an aggregator's commit.
#[derive(Clone, Copy, Debug)]
pub struct BatchPart<'a> {
    pub sensor: &'a str,
    pub batch_id: &'a str,
    pub events: &'a [Event],
}

/// A partial window aggregate as stored: the bytes of
/// `scanwatch_aggregate::encode_window` for the events of one commit that fall in
/// the window starting at `window_start`, the latest of them at `max_time`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialRow {
    pub commit: u64,
    /// When the aggregator made the commit (its wall clock, milliseconds): only to
    /// let the detector read the partials committed since its last read, never a
    /// reported time.
    pub committed: Timestamp,
    pub window_start: Timestamp,
    pub max_time: Timestamp,
    pub state: Vec<u8>,
}

/// What a scale-out aggregator stores at once: the raw events of several batch
/// parts, their batch ids, and the partial window aggregates made from them.
#[derive(Clone, Debug)]
pub struct AggregateCommit<'a> {
    /// A random id (the same in every row of the commit).
    pub commit: u64,
    /// Places the commit: every row of one shard key lands on the same shard, so a
    /// commit is one shard's (the aggregator passes its partition).
    pub shard_key: u64,
    pub received: Timestamp,
    pub batches: Vec<BatchPart<'a>>,
    pub partials: Vec<PartialRow>,
}

/// A random 64-bit id (commit ids).
pub fn random_id() -> Result<u64, StoreError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(u64::from_le_bytes(b))
}

/// A new random token (`swt_` and 64 hex digits). Shown once; only its hash is kept.
pub fn new_token() -> Result<String, StoreError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(format!("swt_{}", hex(&b)))
}

/// SHA-256 of a token, hex. Tokens are 256 random bits, so a fast hash is enough
/// (a slow password hash protects guessable secrets, which these are not).
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Sensor names: 1-64 of `[A-Za-z0-9._-]`.
pub fn valid_sensor_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Sensors: their tokens (only hashes are kept), revocation and heartbeats.
pub trait SensorStore: Send {
    /// Registers a sensor and returns its token (the only time it is shown).
    fn add_sensor(&mut self, name: &str, now: Timestamp) -> Result<String, StoreError>;

    /// Revokes a sensor: its token is refused from now on. Its data stays.
    fn revoke_sensor(&mut self, name: &str) -> Result<(), StoreError>;

    /// All sensors, by name.
    fn sensors(&self) -> Result<Vec<SensorRecord>, StoreError>;

    /// Records a sensor's heartbeat (its counters as a JSON object).
    fn record_heartbeat(
        &mut self,
        sensor: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// The name of the live (not revoked) sensor this token belongs to.
    fn authenticate_sensor(&self, token: &str) -> Result<Option<String>, StoreError>;
}

/// The deferred counting of a store, apart from the store (`EventStore::counter`).
pub trait Counting: Send {
    /// Counts the waiting events into the aggregates if enough wait.
    fn count_due(&mut self) -> Result<(), StoreError>;

    /// Counts every waiting event into the aggregates, however few wait.
    fn count_all(&mut self) -> Result<(), StoreError>;
}

/// Raw events: batches committed exactly once, the scale-out partials, the
/// queries over events, and retention.
pub trait EventStore: Send {
    /// Stores a batch atomically and durably (when this returns `Accepted`, the batch
    /// survives a crash of the process that very moment). A batch id the sensor has
    /// used before is a `Duplicate` and changes nothing.
    fn commit_batch(
        &mut self,
        sensor: &str,
        batch_id: &str,
        events: &[Event],
        received: Timestamp,
    ) -> Result<BatchOutcome, StoreError>;

    /// From now on, leaves the bulk work a commit may do after storing its batch
    /// (the embedded store counting waiting blocks into its aggregates) to
    /// [`count_due`], which the caller runs after it has answered for the batch:
    /// the server acknowledges a batch without waiting for a counting, and parses
    /// the next one meanwhile. Without it, `commit_batch` does that work itself.
    /// Stores with no such work ignore it.
    ///
    /// [`count_due`]: EventStore::count_due
    fn defer_counting(&mut self) {}

    /// Does the work [`defer_counting`] left, if enough waits; nothing otherwise.
    ///
    /// [`defer_counting`]: EventStore::defer_counting
    fn count_due(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// How many committed events wait to be counted into the aggregates queries
    /// read (the embedded store's blocks after its watermark: every query reads
    /// them raw on top of the aggregates), as of now; 0 for a store without such
    /// work. The server refuses batches for a while when too many wait
    /// (`max_uncounted_events`), so its queries stay bounded while a flood is
    /// counted.
    fn uncounted(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// A handle that does the work [`count_due`] does on a connection of its own,
    /// so that a thread can count while batches commit through this store (the
    /// embedded store's aggregates are in a file of their own); `None` for a store
    /// without such work.
    ///
    /// [`count_due`]: EventStore::count_due
    fn counter(&self) -> Result<Option<Box<dyn Counting>>, StoreError> {
        Ok(None)
    }

    /// Which of these (sensor, batch id) pairs are stored, looked up where a commit
    /// with `shard_key` puts them.
    fn stored_batches(&self, shard_key: u64, ids: &[(&str, &str)])
        -> Result<Vec<bool>, StoreError>;

    /// Stores an aggregator's commit all or nothing: when this returns, the events,
    /// the batch ids and the partial aggregates are durable and visible together;
    /// when it fails, none of them is counted (a ClickHouse commit that failed half
    /// way leaves rows that every read ignores, see docs/scale.md). A batch id
    /// already stored fails the whole commit with [`StoreError::BatchStored`].
    fn commit_aggregate(&mut self, c: &AggregateCommit<'_>) -> Result<(), StoreError>;

    /// The committed partial aggregates of the windows starting in `[from, to)`
    /// whose commit was made at or after `committed_since` (`Timestamp(i64::MIN)`:
    /// all), oldest window first.
    fn partials_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        committed_since: Timestamp,
    ) -> Result<Vec<PartialRow>, StoreError>;

    /// The busiest ports over `[from, to)` by unsolicited traffic, at most `limit`.
    fn top_ports(
        &self,
        from: Timestamp,
        to: Timestamp,
        by: TopBy,
        limit: usize,
    ) -> Result<Vec<PortTotals>, StoreError>;

    /// What one source address did over `[from, to)`, per port, busiest first.
    fn source_activity(
        &self,
        src: std::net::IpAddr,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SourcePort>, StoreError>;

    /// Retention: deletes raw events whose event time is before `events_before` (and
    /// batch ids received before it; ClickHouse keeps a batch id until its latest
    /// event is due too, since it is the commit point of its events), partial
    /// aggregates of windows before it, and windows and warnings that start before
    /// `windows_before`.
    /// Returns (events, windows) deleted.
    fn prune(
        &mut self,
        events_before: Timestamp,
        windows_before: Timestamp,
    ) -> Result<(u64, u64), StoreError>;

    /// Raw events with event time in `[from, to)`, in time order, with their sensor.
    fn events_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, Event)>, StoreError>;
}

/// Where the centre keeps a checkpoint of its pipeline's state, and which stored
/// events came after it: a restart takes up the checkpoint and replays only those
/// (`docs/server.md`, "Restart and replay").
pub trait CheckpointStore: Send {
    /// A position in the order batches were stored: every batch stored later is
    /// after it. `None` when this store cannot tell (then a restart replays every
    /// stored event and no checkpoint is taken).
    fn event_mark(&self) -> Result<Option<u64>, StoreError>;

    /// The events of the batches stored after `mark` (from [`event_mark`]) with
    /// their sensor's name, in time order (the order they were stored in among
    /// equal times).
    ///
    /// [`event_mark`]: CheckpointStore::event_mark
    fn events_after(&self, mark: u64) -> Result<Vec<(String, Event)>, StoreError>;

    /// Replaces the checkpoint, in one durable write.
    fn put_checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), StoreError>;

    /// The checkpoint, if one was taken.
    fn checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;
}

/// A checkpoint of the centre's state as the store keeps it: opaque bytes (the
/// centre encodes and checks them) and the event mark they cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Every event of the batches stored up to this mark is in `state`; none after.
    pub mark: u64,
    /// When it was taken (the centre's clock).
    pub taken: Timestamp,
    pub state: Vec<u8>,
}

/// Closed windows: one row per (window, protocol, port).
pub trait WindowStore: Send {
    /// Stores closed windows; a window stored again (a replay) replaces the old row.
    fn put_windows(&mut self, rows: &[WindowRow]) -> Result<(), StoreError>;

    /// Windows of one port in `[from, to)`, oldest first.
    fn port_history(
        &self,
        proto: u8,
        port: u16,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<WindowRow>, StoreError>;

    /// Start and end of the newest stored window (event time), if any.
    fn latest_window(&self) -> Result<Option<(Timestamp, Timestamp)>, StoreError>;

    /// Every window cell starting in `[from, to)`, by window start, then protocol
    /// and port (for overviews across ports).
    fn windows_between(&self, from: Timestamp, to: Timestamp)
        -> Result<Vec<WindowRow>, StoreError>;
}

/// Warnings: each warning's JSON (`scanwatch_alert::Warning`) under a stable id.
pub trait WarningStore: Send {
    /// Stores a warning once: the same (kind, protocol, port, window) again is ignored
    /// (a replay raises it again). Returns its id.
    fn put_alert(&mut self, alert: &AlertRow) -> Result<i64, StoreError>;

    /// Stores a warning as it stands now: a new one is added, a stored one of the
    /// same (kind, protocol, port, window) keeps its id and takes the new severity
    /// and JSON (a revised window, `docs/time.md`). Returns its id and whether
    /// anything changed.
    fn upsert_alert(&mut self, alert: &AlertRow) -> Result<(i64, bool), StoreError>;

    /// Warnings with window start in `[from, to)` and at least `min_severity`, most
    /// severe first, then newest first.
    fn alerts(
        &self,
        from: Timestamp,
        to: Timestamp,
        min_severity: u8,
    ) -> Result<Vec<AlertRow>, StoreError>;

    fn alert(&self, id: i64) -> Result<Option<AlertRow>, StoreError>;
}

/// The API's tokens and the dashboard's users and sessions.
pub trait AuthStore: Send {
    /// Creates an API token (printed once; only the hash is kept).
    fn add_api_token(
        &mut self,
        name: &str,
        role: Role,
        now: Timestamp,
    ) -> Result<String, StoreError>;

    /// The (name, role) of a live API token.
    fn authenticate_api(&self, token: &str) -> Result<Option<(String, Role)>, StoreError>;

    /// Every API token (name, role, created, revoked), by name.
    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError>;

    /// Refuses API token `name` from now on (`NoSuchToken` if there is none).
    fn revoke_api_token(&mut self, name: &str) -> Result<(), StoreError>;

    /// Creates a dashboard user with an already hashed password (PHC string);
    /// `UserExists` if the name is taken, unless `replace` (a password reset).
    fn put_user(&mut self, user: &UserRecord, replace: bool) -> Result<(), StoreError>;

    /// Removes a dashboard user and ends their sessions; false when there was no
    /// such user. The name may be added again later.
    fn remove_user(&mut self, name: &str, now: Timestamp) -> Result<bool, StoreError>;

    /// One dashboard user by name.
    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;

    /// All dashboard users, by name.
    fn users(&self) -> Result<Vec<UserRecord>, StoreError>;

    /// Stores a login session (the id is kept only as a hash by the caller).
    fn put_session(&mut self, s: &SessionRecord) -> Result<(), StoreError>;

    /// A session by the hash of its id, if it has not expired at `now`.
    fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>, StoreError>;

    /// Ends a session (logout); ends expired ones too.
    fn delete_session(&mut self, id_hash: &str, now: Timestamp) -> Result<(), StoreError>;
}

/// Threat-context documents by [`ContextKind`].
pub trait ContextStore: Send {
    /// Inserts or replaces threat-context documents of one kind in one transaction:
    /// re-importing the same documents changes nothing (counted as unchanged).
    fn put_context_items(
        &mut self,
        kind: ContextKind,
        items: &[ContextItem],
        now: Timestamp,
    ) -> Result<ImportCounts, StoreError>;

    /// Removes every document of `kind` imported from `origin`; returns how many.
    fn delete_context_origin(
        &mut self,
        kind: ContextKind,
        origin: &str,
    ) -> Result<usize, StoreError>;

    /// Every document of one kind, ordered by key.
    fn context_items(&self, kind: ContextKind) -> Result<Vec<ContextItem>, StoreError>;
}

/// What each notification sink has sent, and its dead letters.
pub trait SinkStore: Send {
    /// What a notification sink remembers about one key (e.g. one surge): an
    /// opaque JSON document, so warnings are sent once per sink and later windows as
    /// updates, also across restarts.
    fn sink_state(&self, sink: &str, key: &str) -> Result<Option<String>, StoreError>;

    fn put_sink_state(
        &mut self,
        sink: &str,
        key: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Records a notification a sink gave up on after its retries.
    fn put_dead_letter(&mut self, d: &DeadLetter) -> Result<(), StoreError>;

    /// Dead letters, oldest first.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;
}

/// What incidents read and write (`scanwatch_centre::incidents`): the warnings,
/// the analysts' state of each incident (context documents) and the newest window
/// (the "now" of their phase). Every store is one.
pub trait IncidentStore: WarningStore + ContextStore + WindowStore {}

impl<T: WarningStore + ContextStore + WindowStore + ?Sized> IncidentStore for T {}

/// What the scale-out aggregator writes (`scanwatch_bus::aggregate_handler`): the
/// batches' ids, raw events and partial aggregates in one commit, and the IDS facts
/// they carry. Every store is one.
pub trait AggregatorStore: EventStore + ContextStore {}

impl<T: EventStore + ContextStore + ?Sized> AggregatorStore for T {}

/// What the centre's runtime uses (`scanwatch_centre`): sensors (their list and
/// progress), events, its checkpoint, windows, warnings and the threat context;
/// not the dashboard's users and sessions, the API tokens, nor the sinks' state.
/// The HTTP API shares the centre's connection and uses every role. Every store is
/// one.
pub trait CentreStore: SensorStore + EventStore + CheckpointStore + IncidentStore {}

impl<T: SensorStore + EventStore + CheckpointStore + IncidentStore + ?Sized> CentreStore for T {}

/// Everything scanwatch keeps: every role above. Implementations:
/// [`sqlite::SqliteStore`] (the embedded default) and
/// [`clickhouse::ClickHouseStore`] (scale-out). A component that needs one role
/// takes that trait (`&dyn WarningStore`, `&dyn IncidentStore`, …); the centre and
/// the HTTP API hold the whole store.
pub trait Store:
    SensorStore
    + EventStore
    + CheckpointStore
    + WindowStore
    + WarningStore
    + AuthStore
    + ContextStore
    + SinkStore
    + IncidentStore
    + AggregatorStore
    + CentreStore
{
}

impl<T> Store for T where
    T: SensorStore
        + EventStore
        + CheckpointStore
        + WindowStore
        + WarningStore
        + AuthStore
        + ContextStore
        + SinkStore
{
}

/// A dashboard user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    /// Argon2id PHC string (`$argon2id$v=19$...`), never the password.
    pub password_hash: String,
    pub created: Timestamp,
}

/// A login session of a dashboard user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session id the cookie carries.
    pub id_hash: String,
    pub user: String,
    /// The session's CSRF token, required on every form that changes state.
    pub csrf: String,
    pub created: Timestamp,
    pub expires: Timestamp,
}

/// A notification that could not be delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub sink: String,
    pub key: String,
    pub attempts: u32,
    pub error: String,
    /// What would have been sent.
    pub payload: String,
    pub at: Timestamp,
}

/// One imported threat-context document (an advisory, an asset, a benign network):
/// the store keeps it as JSON and does not look inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextItem {
    pub key: String,
    /// Where it came from (file name, feed), for `delete_context_origin`.
    pub origin: String,
    pub json: String,
}

/// What an import changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// The store's traits, to call their methods on a concrete store
/// (`use scanwatch_store::prelude::*;`).
pub mod prelude {
    pub use crate::{
        AggregatorStore, AuthStore, CentreStore, CheckpointStore, ContextStore, EventStore,
        IncidentStore, SensorStore, SinkStore, Store, WarningStore, WindowStore,
    };
}
