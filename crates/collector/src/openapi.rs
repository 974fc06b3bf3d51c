//! The API contract: an OpenAPI 3.1 document generated from the handlers' own
//! `#[utoipa::path]` attributes and served at `GET /api/v1/openapi.json`, so the
//! description and the code cannot drift apart (checked by `tests/openapi.rs`).
//!
//! Most read endpoints answer stored JSON (`serde_json::Value`); the structs here
//! describe those answers for the document only. They mirror the types in
//! `scanwatch_alert::json` (field names are the contract of `docs/json-schema.md`)
//! and are never built at run time.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// The body of every refusal: 4xx and 5xx answers carry one message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What was wrong, lowercase, for people (`"internal error"` for 5xx).
    pub error: String,
}

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusOk {
    #[schema(example = "ok")]
    pub status: String,
}

/// An IPv4 or IPv6 address (a string in either notation).
pub struct IpAddress;

impl PartialSchema for IpAddress {
    fn schema() -> RefOr<Schema> {
        let ip = |f| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(f)))
        };
        AnyOfBuilder::new()
            .item(ip(KnownFormat::Ipv4))
            .item(ip(KnownFormat::Ipv6))
            .description(Some("IPv4 or IPv6 address"))
            .examples([serde_json::json!("192.0.2.1")])
            .into()
    }
}

impl ToSchema for IpAddress {}

/// One event: one line of the JSON Lines body of `POST /api/v1/events`
/// (`scanwatch_event::WireEvent`, docs/formats.md). The body is any number of these,
/// one a line.
#[derive(Debug, Serialize, ToSchema)]
pub struct WireEventSchema {
    /// Format version: 1.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1, nullable = false)]
    pub v: Option<u32>,
    /// RFC 3339 time.
    #[schema(format = DateTime, example = "2026-11-26T10:40:00Z")]
    pub time: String,
    /// Ignored on the wire: the token decides the sensor.
    #[serde(default)]
    pub sensor: Option<String>,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, another protocol's name or number.
    #[schema(example = "tcp", pattern = "^(tcp|udp|icmp|icmpv6|[0-9]{1,3})$")]
    pub proto: String,
    #[schema(value_type = IpAddress)]
    pub src: String,
    #[serde(default)]
    pub src_port: Option<u16>,
    #[schema(value_type = IpAddress)]
    pub dst: String,
    /// Required for tcp and udp.
    #[serde(default)]
    pub dst_port: Option<u16>,
    /// TCP flags as letters (`S`, `SA`, `FA`).
    #[serde(default)]
    #[schema(pattern = "^[FSRPAUEC]{0,8}$")]
    pub flags: Option<String>,
    #[serde(default)]
    pub icmp_type: Option<u8>,
    /// `in` or `out`.
    #[serde(default)]
    #[schema(pattern = "^(in|out)$")]
    pub direction: Option<String>,
    /// `accept`, `drop` or `reject`.
    #[serde(default)]
    #[schema(pattern = "^(accept|drop|reject)$")]
    pub action: Option<String>,
    /// How many events this line stands for (default 1).
    #[serde(default)]
    #[schema(minimum = 1, nullable = false)]
    pub count: Option<u32>,
    /// For events read from IDS alerts: `{"rule", "signature", "cves": [...]}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub ids: Option<serde_json::Value>,
}

/// One source address and its event count.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceCount {
    #[schema(value_type = IpAddress)]
    pub ip: String,
    pub events: u64,
}

/// A warning's trimmed counts (docs/security.md).
#[derive(Debug, Serialize, ToSchema)]
pub struct TrimmedSchema {
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    /// The sensors left out.
    pub left_out: Vec<String>,
}

/// The normal level a warning is measured against (medians over past windows).
#[derive(Debug, Serialize, ToSchema)]
pub struct BaselineSchema {
    pub events: f64,
    pub sources: f64,
    pub sensors: f64,
    /// Windows the baseline was computed over.
    pub windows: u64,
}

/// Evidence of a trend warning.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendSchema {
    pub recent_sources: f64,
    pub before_sources: f64,
    pub windows: u64,
}

/// What the port is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceSchema {
    pub name: String,
    pub notes: String,
    /// Where the notes come from.
    pub source: String,
}

/// One candidate explanation of a warning (an advisory or a public exploit).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdvisorySchema {
    /// CVE id, or `EDB-N` for an exploit without one.
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub published: Option<String>,
    #[serde(default)]
    pub days_before_surge: Option<i64>,
    /// CISA KEV facts when listed, else `null`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub kev: Option<serde_json::Value>,
    /// Public exploits, `EDB-N: title`.
    #[serde(default)]
    pub exploits: Vec<String>,
    /// How many of them were public by the surge's last day (or are undated):
    /// only these score and make an explanation `likely`.
    #[serde(default)]
    pub exploits_at_surge: u64,
    /// `explicit`, `service` or `text`.
    pub match_strength: String,
    #[serde(default)]
    pub match_reason: String,
    #[serde(default)]
    pub reasons: Vec<String>,
    pub score: f64,
    #[serde(default)]
    pub cvss: Option<f64>,
    /// IDS alerts naming it on the port during the surge, else `null`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub ids: Option<serde_json::Value>,
}

/// One block rule, or a CISA KEV required action.
#[derive(Debug, Serialize, ToSchema)]
pub struct MitigationSchema {
    /// `nftables`, `iptables`, `pf`, `windows` or `kev-required-action`.
    pub platform: String,
    pub rule: String,
}

/// A port range the block rules cover, with why.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockSchema {
    /// `tcp` or `udp`.
    pub proto: String,
    pub first: u16,
    pub last: u16,
    pub why: String,
}

/// One of the user's exposed assets.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExposedSchema {
    pub host: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub reasons: Vec<String>,
    /// 1 = most exposed.
    pub priority: u64,
    pub score: u64,
}

/// The earlier surge a warning's surge follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct FollowOnSchema {
    pub protocol: String,
    pub port: u16,
    /// Start of that surge's first warning window.
    pub episode_start: String,
    /// The advisory leading both surges.
    pub advisory: String,
}

/// One stored warning: the `"type":"alert"` object of `analyze --json`
/// (`docs/json-schema.md`) with the store's `id`. Further fields may be added.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertSchema {
    /// The warning's id in the store.
    pub id: i64,
    /// Always `alert`.
    #[serde(rename = "type")]
    #[schema(example = "alert")]
    pub kind: String,
    /// `surge` (one window far above baseline), `trend` (a sustained rise) or
    /// `sweep` (sources of one network probing many ports; the object then has a
    /// `sweep` member with the campaign, docs/detection.md).
    pub alert_kind: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    pub port: u16,
    pub window_start: String,
    pub window_end: String,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    pub score: f64,
    /// The numbers in one sentence.
    pub headline: String,
    /// The full narrative.
    pub summary: String,
    pub top_sources: Vec<SourceCount>,
    #[serde(default)]
    pub service: Option<ServiceSchema>,
    #[serde(default)]
    pub active_sensors: Option<u64>,
    #[serde(default)]
    pub baseline: Option<BaselineSchema>,
    #[serde(default)]
    pub z_sources: Option<f64>,
    #[serde(default)]
    pub z_events: Option<f64>,
    #[serde(default)]
    pub times_normal: Option<f64>,
    #[serde(default)]
    pub top_sensor_share: Option<f64>,
    /// The counts the warning was scored on: without the busiest sensors.
    #[serde(default)]
    pub trimmed: Option<TrimmedSchema>,
    /// The heaviest sources too few sensors saw: shown, never blocked.
    #[serde(default)]
    pub uncorroborated_sources: Option<Vec<SourceCount>>,
    #[serde(default)]
    pub episode_start: Option<String>,
    /// True for a later window of an ongoing surge.
    #[serde(default)]
    pub update: Option<bool>,
    /// Present and true when raised by re-evaluating a window with late events.
    #[serde(default)]
    pub late: Option<bool>,
    /// Present when the window's counts were revised by late events: how often
    /// (docs/time.md).
    #[serde(default)]
    pub revision: Option<u32>,
    /// For a warning first raised by late events: how far (seconds of event time)
    /// the centre had already closed windows past its window's end.
    #[serde(default)]
    pub late_by_s: Option<i64>,
    /// Present and true when a revision means the warning no longer holds (kept,
    /// marked; docs/time.md).
    #[serde(default)]
    pub withdrawn: Option<bool>,
    /// Set for trend warnings, `null` for surges.
    #[serde(default)]
    pub trend: Option<TrendSchema>,
    /// `suspected`, `likely` or `confirmed`.
    #[serde(default)]
    pub confidence: Option<String>,
    /// True only when IDS alerts confirm exploitation.
    #[serde(default)]
    pub verified: Option<bool>,
    /// The confidence and why, in one sentence.
    #[serde(default)]
    pub assessment: Option<String>,
    /// `routine`, `high` or `urgent` (`urgent`: an exploited flaw with no vendor
    /// fix when the surge came; docs/context.md).
    #[serde(default)]
    pub priority: Option<String>,
    /// The priority and why, in one sentence.
    #[serde(default)]
    pub priority_reason: Option<String>,
    /// The earlier surge on another port this one follows (the same leading
    /// advisory), when there is one.
    #[serde(default)]
    pub follows: Option<FollowOnSchema>,
    /// Candidate explanations, best first.
    #[serde(default)]
    pub advisories: Option<Vec<AdvisorySchema>>,
    #[serde(default)]
    pub mitigations: Option<Vec<MitigationSchema>>,
    #[serde(default)]
    pub block: Option<Vec<BlockSchema>>,
    #[serde(default)]
    pub ids_alerts_on_port: Option<u64>,
    #[serde(default)]
    pub exposed_assets: Option<Vec<ExposedSchema>>,
    #[serde(default)]
    pub exposed_total: Option<u64>,
}

/// One closed window of one port: the `"type":"window"` object.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowSchema {
    /// Always `window`.
    #[serde(rename = "type")]
    #[schema(example = "window")]
    pub kind: String,
    pub protocol: String,
    pub port: u16,
    pub window_start: String,
    pub window_end: String,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
    pub top_sources: Vec<SourceCount>,
}

/// One row of the top ports: exact distinct counts over the range.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopPortSchema {
    pub protocol: String,
    pub port: u16,
    /// The service name, `-` when unknown.
    pub service: String,
    pub events: u64,
    pub sources: u64,
    pub sensors: u64,
    pub targets: u64,
}

/// What one source did on one port.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourcePortSchema {
    pub protocol: String,
    pub port: u16,
    pub events: u64,
    pub sensors: u64,
    pub targets: u64,
    pub first_seen: String,
    pub last_seen: String,
}

/// What one source did, per port.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceSchema {
    #[schema(value_type = IpAddress)]
    pub ip: String,
    pub events: u64,
    pub ports: Vec<SourcePortSchema>,
}

/// Adds the two bearer-token schemes.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, what) in [
            (
                "api_token",
                "API token (`scanwatch admin token add`), role analyst or admin",
            ),
            (
                "sensor_token",
                "sensor token (`scanwatch admin sensor add`)",
            ),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(what))
                        .build(),
                ),
            );
        }
    }
}

/// The OpenAPI document of the centre's HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "scanwatch",
        description = "The centre's HTTP API: sensor ingest, the read API for analysts and scripts, feeds and health (docs/server.md)."
    ),
    paths(
        crate::ingest,
        crate::heartbeat,
        crate::api::alerts,
        crate::api::alert,
        crate::export::alert_stix,
        crate::export::alert_misp,
        crate::incidents_api::list,
        crate::incidents_api::show,
        crate::incidents_api::set_state,
        crate::api::sensors,
        crate::api::topports,
        crate::api::source,
        crate::api::port_history,
        crate::feeds::blocklist_handler,
        crate::feeds::alerts_atom,
        crate::healthz,
        crate::metrics,
        openapi_json,
    ),
    components(schemas(
        ErrorBody,
        crate::incidents::Incident,
        crate::incidents::IncidentState,
        crate::incidents::StateChange,
        crate::incidents::Phase,
        crate::incidents::Disposition,
        IpAddress,
        SeverityParam,
        TopByParam,
        ProtoParam,
        BlocklistFormat,
        ContentEncoding
    )),
    modifiers(&Security),
    tags(
        (name = "ingest", description = "What sensors send (sensor token)"),
        (name = "read", description = "Warnings, ports, sources and sensors (API token)"),
        (name = "feeds", description = "Atom, blocklists and exports of warnings (API token)"),
        (name = "ops", description = "Health, metrics and this document (no token)"),
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "ops",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object, content_type = "application/json"))
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The refusals every read endpoint may answer.
#[derive(utoipa::IntoResponses)]
pub enum ReadErrors {
    /// A bad query or path parameter (unknown parameters are refused too).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No, unknown or revoked API token (sensor tokens are refused here).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token's role may not use this endpoint.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Internal error; details only in the server's log.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// The severities, least severe first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeverityParam {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// What `topports` ranks by.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TopByParam {
    Events,
    Sources,
    Sensors,
}

/// The protocols with ports.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtoParam {
    Tcp,
    Udp,
}

/// The encodings of an ingest body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentEncoding {
    Gzip,
    Zstd,
    Identity,
}

/// The blocklist's formats.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlocklistFormat {
    /// One address a line after a comment with the expiry.
    Txt,
    /// An nftables file with two timeout sets and a drop chain.
    Nft,
}
