//! The API contract: an OpenAPI 3.1 document generated from the handlers' own
//! `#[utoipa::path]` attributes and served at `GET /api/v1/openapi.json`, so the
//! description and the code cannot drift apart (checked by `tests/openapi.rs`).
//!
//! Every answer's schema is derived from the type that answer is built from: the
//! warning from `scanwatch_alert::Warning` and the wire event from
//! `scanwatch_event::WireEvent` (both behind feature `schema`), the others from the
//! handlers' own types. Only what has no Rust type of its own is described here:
//! the error body and the enums of query parameters.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

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

/// An IPv4 or IPv6 address (defined beside the wire event, which uses it).
pub use scanwatch_event::schema::IpAddress;

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
        scanwatch_detect::Severity,
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
    /// The stored aggregates are being counted again from the stored events (a
    /// read met one that does not read back); try again after `Retry-After`.
    #[response(status = 503)]
    Busy(ErrorBody),
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
