//! Writes the inputs of the golden detector tests into `testdata/<case>/input/`:
//! `cargo run -p scanwatch-simulate --example make_testdata -- testdata`.
//! The seed case is written as per-sensor netfilter syslog files, the others as one
//! DShield file whose user-id column names the sensor. Expected outputs are made by
//! the golden test itself (`UPDATE_EXPECT=1 cargo test -p scanwatch --test golden`).
#![allow(clippy::unwrap_used)] // a test or bench may panic on a broken setup

use std::io::Write;
use std::path::PathBuf;

use scanwatch_simulate::{dshield_line, golden_cases, netfilter_line};

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "testdata".into()));
    for sc in golden_cases() {
        let dir = root.join(sc.name).join("input");
        std::fs::create_dir_all(&dir)?;
        let events = sc.all_events();
        let gz = |name: String| -> std::io::Result<_> {
            let f = std::fs::File::create(dir.join(name))?;
            Ok(flate2::write::GzEncoder::new(
                std::io::BufWriter::new(f),
                flate2::Compression::best(),
            ))
        };
        let args = if sc.name == "seed-surge" {
            let mut files = Vec::new();
            for i in 0..sc.sensors {
                files.push(gz(format!("{}.log.gz", sc.sensor_name(i)))?);
            }
            for (s, e) in &events {
                writeln!(
                    files[*s as usize],
                    "{}",
                    netfilter_line(&sc.sensor_name(*s), e)
                )?;
            }
            for f in files {
                f.finish()?.flush()?;
            }
            "--year 2026 --window 1h --history 2d"
        } else {
            let mut f = gz("dshield.log.gz".into())?;
            for (s, e) in &events {
                writeln!(f, "{}", dshield_line(&sc.sensor_name(*s), e))?;
            }
            f.finish()?.flush()?;
            if sc.name == "sensor-churn" {
                // Three weeks: analyze's own defaults (1 h windows, 7 d history).
                "--sensor-id host --window 1h --history 7d"
            } else {
                "--sensor-id host --window 1h --history 2d"
            }
        };
        std::fs::write(root.join(sc.name).join("args"), format!("{args}\n"))?;
        println!("{}: {} events", sc.name, events.len());
    }
    Ok(())
}
