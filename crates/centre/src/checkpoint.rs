//! The checkpoint of a centre's state (`docs/server.md`, "Restart and replay"): the pipeline
//! (open windows, the detector's memory), each sensor's time and the surges'
//! lineage, with the store's event mark it covers. A restart takes it up and
//! replays only the events stored after the mark, instead of every stored event.
//!
//! Encoded as `SWCP`, a format byte, the settings digest (8 bytes, little endian),
//! the xxh3 of the rest (8 bytes), then the state in CBOR (`ciborium`), deflated.
//! A checkpoint that does not decode, fails its checksum or was made under other
//! settings is not used: the restart replays everything, as without one.

use std::io::Read;

use scanwatch_alert::lineage::Lineage;
use scanwatch_pipeline::PipelineState;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::time::SensorTime;

const MAGIC: &[u8; 4] = b"SWCP";
const FORMAT: u8 = 1;
const HEADER: usize = 4 + 1 + 8 + 8;
/// The most a checkpoint inflates to: far above any real one (the state of 30
/// days of the demo network is a few MiB), low enough that a damaged one cannot
/// take the memory.
pub const MAX_STATE_BYTES: u64 = 1 << 30;

/// What the centre keeps in a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CentreState {
    pub pipeline: PipelineState,
    /// Each sensor's time as the centre saw it.
    pub sensors: Vec<(String, SensorTime)>,
    /// The latest event time fed (what the replay closes windows on).
    pub max_seen: Option<i64>,
    pub lineage: Lineage,
}

/// Why a checkpoint is not used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("not a checkpoint (no SWCP header)")]
    NotACheckpoint,
    #[error("checkpoint format {0} is not the one this build writes ({FORMAT})")]
    Format(u8),
    #[error("checkpoint made under other settings (digest {found:016x}, now {now:016x})")]
    Settings { found: u64, now: u64 },
    #[error("checkpoint checksum does not match: damaged")]
    Checksum,
    #[error("checkpoint does not decode: {0}")]
    Decode(String),
}

/// The digest of what a checkpoint's state depends on: the pipeline's settings
/// ([`scanwatch_pipeline::Pipeline::settings_digest`]) and this build's version
/// (its state types may differ in another).
pub fn digest(pipeline_settings: u64) -> u64 {
    let text = format!("{pipeline_settings:016x}|{}", env!("CARGO_PKG_VERSION"));
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// Encodes `state` made under settings `digest`.
pub fn encode(state: &CentreState, digest: u64) -> Result<Vec<u8>, CheckpointError> {
    let mut cbor = Vec::new();
    ciborium::into_writer(state, &mut cbor).map_err(|e| CheckpointError::Decode(e.to_string()))?;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, &cbor).map_err(|e| CheckpointError::Decode(e.to_string()))?;
    let body = z
        .finish()
        .map_err(|e| CheckpointError::Decode(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.extend_from_slice(&digest.to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a checkpoint made under settings `digest`; anything else is refused
/// with the reason.
pub fn decode(bytes: &[u8], digest: u64) -> Result<CentreState, CheckpointError> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err(CheckpointError::NotACheckpoint);
    }
    if bytes[4] != FORMAT {
        return Err(CheckpointError::Format(bytes[4]));
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let found = word(5);
    if found != digest {
        return Err(CheckpointError::Settings { found, now: digest });
    }
    let body = &bytes[HEADER..];
    if word(13) != xxhash_rust::xxh3::xxh3_64(body) {
        return Err(CheckpointError::Checksum);
    }
    decode_body(body)
}

/// Decodes only the body of a checkpoint, its header and checksum not checked:
/// what the fuzz target drives (a checksum would stop it at the door).
pub fn decode_body(body: &[u8]) -> Result<CentreState, CheckpointError> {
    let mut cbor = Vec::new();
    flate2::read::DeflateDecoder::new(body)
        .take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut cbor)
        .map_err(|e| CheckpointError::Decode(e.to_string()))?;
    if cbor.len() as u64 > MAX_STATE_BYTES {
        return Err(CheckpointError::Decode(format!(
            "inflates beyond {MAX_STATE_BYTES} bytes"
        )));
    }
    ciborium::from_reader(cbor.as_slice()).map_err(|e| CheckpointError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scanwatch_pipeline::{Pipeline, PipelineConfig};

    fn state() -> CentreState {
        let p = Pipeline::new_centre(PipelineConfig::new(30_000, 600_000));
        CentreState {
            pipeline: p.state(),
            sensors: vec![("fw-1".into(), SensorTime::default())],
            max_seen: Some(42),
            lineage: Lineage::default(),
        }
    }

    #[test]
    fn a_checkpoint_reads_back_and_anything_else_is_refused_with_why() {
        let bytes = encode(&state(), 7).unwrap();
        let back = decode(&bytes, 7).unwrap();
        assert_eq!(back.max_seen, Some(42));
        assert_eq!(back.sensors[0].0, "fw-1");
        assert_eq!(
            decode(&bytes, 8).unwrap_err(),
            CheckpointError::Settings { found: 7, now: 8 }
        );
        let mut damaged = bytes.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert_eq!(decode(&damaged, 7).unwrap_err(), CheckpointError::Checksum);
        let mut other = bytes.clone();
        other[4] = 9;
        assert_eq!(decode(&other, 7).unwrap_err(), CheckpointError::Format(9));
        assert_eq!(
            decode(b"SWC", 7).unwrap_err(),
            CheckpointError::NotACheckpoint
        );
        assert!(matches!(
            decode_body(b"\x00\x01garbage"),
            Err(CheckpointError::Decode(_))
        ));
    }
}
