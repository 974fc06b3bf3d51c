//! OpenAPI schemas of the wire format's parts that have no Rust type of their own
//! (feature `schema`; the collector serves the document).

use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

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
