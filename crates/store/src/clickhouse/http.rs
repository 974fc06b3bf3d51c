//! The HTTP interface: one POST per statement, with the server's refusal text.

use super::*;

pub(super) fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for ch in b.chunks(3) {
        let n = (u32::from(ch[0]) << 16)
            | (u32::from(ch.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(ch.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= ch.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(super) fn err(m: impl Into<String>) -> StoreError {
    StoreError::ClickHouse(m.into())
}

/// Why a request failed: the server was not reached (another may be tried) or it
/// refused the request.
pub(super) enum Fail {
    Unreachable(String),
    Refused(String),
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> StoreError {
        match f {
            Fail::Unreachable(m) | Fail::Refused(m) => StoreError::ClickHouse(m),
        }
    }
}

pub(super) struct Http {
    pub(super) agent: ureq::Agent,
    pub(super) auth: Option<String>,
}

impl Http {
    /// POSTs `body`, with `query` (if any) in the URL. The answer's text on 200.
    pub(super) fn post(
        &self,
        base: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<String, Fail> {
        let mut req = self.agent.post(format!("{base}/"));
        if let Some(q) = query {
            req = req.query("query", q);
        }
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let mut resp = req
            .send(body)
            .map_err(|e| Fail::Unreachable(format!("cannot reach {base}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .map_err(|e| Fail::Unreachable(format!("cannot read the answer of {base}: {e}")))?;
        if status != 200 {
            let msg: String = text.trim().chars().take(600).collect();
            return Err(Fail::Refused(format!("{base} answered {status}: {msg}")));
        }
        Ok(text)
    }
}
