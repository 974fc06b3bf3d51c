//! The search box: a port or an address.

// The page helpers and the imports shared by every page (`pages/mod.rs`).
use super::*;

/// `GET /search?q=`: a port (`445`, `tcp/445`, `udp/53`, `53/udp`) or an IP address.
pub(super) async fn search(
    _user: WebUser,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = params(q)?;
    let text = q.get("q").map(|s| s.trim()).unwrap_or("");
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(
            Redirect::to(&format!("/sources/{}", url_part(&ip.to_string()))).into_response(),
        );
    }
    let lower = text.to_ascii_lowercase();
    let (proto, port) = match lower.split_once('/') {
        Some((a, b)) if a == "tcp" || a == "udp" => (a.to_string(), b.to_string()),
        Some((a, b)) if b == "tcp" || b == "udp" => (b.to_string(), a.to_string()),
        Some(_) => (String::new(), String::new()),
        None => ("tcp".to_string(), lower.clone()),
    };
    match port.parse::<u16>() {
        Ok(p) if !proto.is_empty() => {
            Ok(Redirect::to(&format!("/ports/{proto}/{p}")).into_response())
        }
        _ => Err(PageError::BadRequest(format!(
            "{text:?} is neither a port (445, tcp/445, udp/53) nor an IP address"
        ))),
    }
}
