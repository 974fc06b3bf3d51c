//! The scenarios: the demo network and the golden-test cases.

use scanwatch_event::{Protocol, Timestamp};

use crate::{NoisyBurst, PortLoad, Scenario, Surge};

const TCP: Protocol = Protocol::Tcp;
const UDP: Protocol = Protocol::Udp;

fn load(proto: Protocol, port: u16, per_day: f64, per_source: f64) -> PortLoad {
    PortLoad {
        proto,
        port,
        sources_per_day: per_day,
        events_per_source: per_source,
        diurnal: 0.4,
        sensors_per_source: 2.0,
    }
}

/// Demo start: 2026-11-16T00:00:00Z.
fn demo_start() -> Timestamp {
    Timestamp(1_794_787_200_000)
}

/// The demo network: 40 sensors over 10 days. Background on ~30 ports with a
/// day/night swing, five research scanners, two noisy single sensors, the seed surge
/// on TCP/1025 on day 8 (2026-11-23) and an exploit wave on TCP/445 two days later.
pub fn demo() -> Scenario {
    let mut background = vec![
        load(TCP, 23, 6000.0, 3.0),
        load(TCP, 22, 3000.0, 2.5),
        load(TCP, 80, 2500.0, 2.0),
        load(TCP, 443, 1200.0, 1.5),
        load(TCP, 445, 400.0, 2.0),
        load(TCP, 3389, 900.0, 2.0),
        load(TCP, 8080, 800.0, 1.5),
        load(TCP, 2323, 600.0, 2.0),
        load(TCP, 1433, 300.0, 2.0),
        load(TCP, 5900, 250.0, 1.5),
        load(TCP, 21, 200.0, 1.5),
        load(TCP, 25, 150.0, 1.5),
        load(TCP, 6379, 120.0, 1.5),
        load(TCP, 5555, 150.0, 1.5),
        load(TCP, 7547, 200.0, 1.5),
        load(TCP, 135, 150.0, 1.5),
        load(TCP, 139, 80.0, 1.5),
        load(TCP, 3306, 200.0, 1.5),
        load(TCP, 8443, 150.0, 1.5),
        load(TCP, 37215, 300.0, 1.5),
        load(TCP, 81, 200.0, 1.5),
        load(TCP, 8000, 120.0, 1.5),
        load(TCP, 9200, 90.0, 1.5),
        load(TCP, 27017, 60.0, 1.5),
        load(UDP, 53, 300.0, 1.5),
        load(UDP, 123, 150.0, 1.5),
        load(UDP, 161, 250.0, 1.5),
        load(UDP, 1900, 120.0, 1.5),
        load(UDP, 5060, 400.0, 2.0),
        load(UDP, 11211, 50.0, 1.5),
    ];
    // TCP/1025 normally: ~30 sources and fewer than 100 events a day.
    background.push(PortLoad {
        proto: TCP,
        port: 1025,
        sources_per_day: 30.0,
        events_per_source: 1.4,
        diurnal: 0.3,
        sensors_per_source: 1.5,
    });
    Scenario {
        name: "demo",
        start: demo_start(),
        hours: 240,
        sensors: 40,
        seed: 1025,
        background,
        surges: vec![
            // The seed case: one week after disclosure, ~1,500 sources and 8,000+
            // events in a day, seen by most sensors.
            Surge {
                proto: TCP,
                port: 1025,
                start_hour: 7 * 24 + 2,
                ramp_hours: 2,
                hold_hours: 14,
                decay_hours: 6,
                peak_sources_per_hour: 82.0,
                events_per_source: 2.0,
                coverage: 0.85,
                sensors_per_source: 3.0,
            },
            // Days later, exploitation spreads on TCP/445.
            Surge {
                proto: TCP,
                port: 445,
                start_hour: 9 * 24 + 8,
                ramp_hours: 3,
                hold_hours: 10,
                decay_hours: 4,
                peak_sources_per_hour: 300.0,
                events_per_source: 2.5,
                coverage: 1.0,
                sensors_per_source: 3.0,
            },
        ],
        noisy: vec![
            // One sensor flooded on MikroTik's API port by a few sources.
            NoisyBurst {
                sensor: 6,
                proto: TCP,
                port: 8291,
                hour: 5 * 24 + 3,
                sources: 40,
                events: 25_000,
            },
            // One sensor behind a misconfigured NAT: NetBIOS from many addresses.
            NoisyBurst {
                sensor: 11,
                proto: UDP,
                port: 137,
                hour: 8 * 24 + 20,
                sources: 200,
                events: 5_000,
            },
        ],
        sweeps: vec![],
        sensor_life: vec![],
        weekly: 0.0,
        research_scanners: 5,
        random_port_probes_per_hour: 3000,
        research_ports: vec![
            (TCP, 21),
            (TCP, 22),
            (TCP, 23),
            (TCP, 25),
            (TCP, 80),
            (TCP, 443),
            (TCP, 445),
            (TCP, 1433),
            (TCP, 3306),
            (TCP, 3389),
            (TCP, 5432),
            (TCP, 5900),
            (TCP, 6379),
            (TCP, 8080),
            (TCP, 8443),
            (UDP, 53),
            (UDP, 123),
            (UDP, 161),
            (UDP, 1900),
            (UDP, 5060),
        ],
    }
}

fn small_background() -> Vec<PortLoad> {
    vec![
        load(TCP, 22, 120.0, 1.5),
        load(TCP, 23, 200.0, 1.5),
        load(TCP, 80, 80.0, 1.5),
        load(UDP, 5060, 40.0, 1.5),
    ]
}

fn small(name: &'static str, seed: u64) -> Scenario {
    Scenario {
        name,
        start: demo_start(),
        hours: 4 * 24,
        sensors: 8,
        seed,
        background: small_background(),
        surges: vec![],
        noisy: vec![],
        research_scanners: 1,
        random_port_probes_per_hour: 0,
        research_ports: vec![(TCP, 22), (TCP, 443)],
        sweeps: vec![],
        sensor_life: vec![],
        weekly: 0.0,
    }
}

/// TCP/1025 before the seed case: about 30 sources a day.
fn quiet_1025() -> PortLoad {
    PortLoad {
        proto: TCP,
        port: 1025,
        sources_per_day: 30.0,
        events_per_source: 1.4,
        diurnal: 0.3,
        sensors_per_source: 1.5,
    }
}

/// The golden-test cases (see `testdata/`): each a small network over four days.
pub fn golden_cases() -> Vec<Scenario> {
    let mut seed = small("seed-surge", 1);
    seed.background.push(quiet_1025());
    seed.surges.push(Surge {
        proto: TCP,
        port: 1025,
        start_hour: 3 * 24 + 10,
        ramp_hours: 1,
        hold_hours: 8,
        decay_hours: 3,
        peak_sources_per_hour: 80.0,
        events_per_source: 2.0,
        coverage: 1.0,
        sensors_per_source: 2.5,
    });

    let mut noisy = small("noisy-sensor", 2);
    noisy.noisy.push(NoisyBurst {
        sensor: 3,
        proto: TCP,
        port: 8291,
        hour: 3 * 24 + 5,
        sources: 60,
        events: 20_000,
    });
    noisy.noisy.push(NoisyBurst {
        sensor: 5,
        proto: TCP,
        port: 22,
        hour: 3 * 24 + 12,
        sources: 300,
        events: 9_000,
    });

    let mut silent = small("silent-port-wakes", 3);
    silent.surges.push(Surge {
        proto: UDP,
        port: 47808,
        start_hour: 3 * 24,
        ramp_hours: 0,
        hold_hours: 2,
        decay_hours: 0,
        peak_sources_per_hour: 150.0,
        events_per_source: 1.5,
        coverage: 1.0,
        sensors_per_source: 3.0,
    });

    let mut diurnal = small("diurnal-background", 4);
    for l in &mut diurnal.background {
        l.diurnal = 0.8;
        l.sources_per_day *= 3.0;
    }

    let mut ramp = small("slow-ramp", 5);
    ramp.surges.push(Surge {
        proto: TCP,
        port: 6379,
        start_hour: 12,
        ramp_hours: 72,
        hold_hours: 12,
        decay_hours: 0,
        peak_sources_per_hour: 60.0,
        events_per_source: 1.5,
        coverage: 1.0,
        sensors_per_source: 2.0,
    });

    let mut tiny = small("tiny-numbers", 6);
    tiny.background.push(load(TCP, 8088, 72.0, 1.5));
    tiny.surges.push(Surge {
        proto: TCP,
        port: 8088,
        start_hour: 3 * 24 + 6,
        ramp_hours: 0,
        hold_hours: 3,
        decay_hours: 0,
        peak_sources_per_hour: 9.0,
        events_per_source: 1.5,
        coverage: 1.0,
        sensors_per_source: 2.0,
    });

    // An unlisted scanner: half of a /26 probing 2,000 TCP ports once each,
    // every probe to a random sensor, in one hour.
    let sweep_of = |hour| crate::SweepCampaign {
        net: [203, 0, 113],
        sources: 32,
        proto: TCP,
        first_port: 1,
        ports: 2000,
        hour,
    };
    let mut sweep = small("research-sweep", 7);
    sweep.sweeps.push(sweep_of(3 * 24 + 10));

    // The seed case's surge starting in the very hour of the same sweep (which
    // probes TCP/1025 too).
    let mut during = small("surge-during-sweep", 8);
    during.background.push(quiet_1025());
    during.surges.push(Surge {
        proto: TCP,
        port: 1025,
        start_hour: 3 * 24 + 10,
        ramp_hours: 0,
        hold_hours: 6,
        decay_hours: 2,
        peak_sources_per_hour: 80.0,
        events_per_source: 2.0,
        coverage: 1.0,
        sensors_per_source: 2.5,
    });
    during.sweeps.push(sweep_of(3 * 24 + 10));

    vec![
        seed,
        noisy,
        silent,
        diurnal,
        ramp,
        tiny,
        sweep,
        during,
        sensor_churn(),
    ]
}

/// Three weeks of a growing network with a weekly cycle: 30 sensors, ten more
/// joining on day 9 in busier blocks (four times an old sensor's traffic each),
/// five old ones leaving on day 15; weekends at half a weekday's traffic. Nothing
/// in it is an attack.
fn sensor_churn() -> Scenario {
    let mut sensor_life = Vec::new();
    for i in 0..40u32 {
        sensor_life.push(match i {
            0..=4 => crate::SensorLife {
                join_hour: 0,
                leave_hour: 15 * 24 + 9,
                weight: 1.0,
            },
            5..=29 => crate::SensorLife {
                join_hour: 0,
                leave_hour: u32::MAX,
                weight: 1.0,
            },
            _ => crate::SensorLife {
                join_hour: 9 * 24 + 8,
                leave_hour: u32::MAX,
                weight: 4.0,
            },
        });
    }
    let l = |proto, port, per_day| PortLoad {
        proto,
        port,
        sources_per_day: per_day,
        events_per_source: 1.2,
        diurnal: 0.3,
        sensors_per_source: 1.2,
    };
    Scenario {
        name: "sensor-churn",
        start: demo_start(),
        hours: 21 * 24,
        sensors: 40,
        seed: 9,
        background: vec![
            l(TCP, 22, 700.0),
            l(TCP, 23, 1000.0),
            l(TCP, 80, 300.0),
            l(TCP, 443, 240.0),
            l(TCP, 445, 300.0),
            l(TCP, 3389, 200.0),
            l(TCP, 8080, 150.0),
            l(UDP, 5060, 120.0),
            l(TCP, 1433, 100.0),
            l(TCP, 3306, 100.0),
        ],
        surges: vec![],
        noisy: vec![],
        research_scanners: 1,
        random_port_probes_per_hour: 0,
        research_ports: vec![(TCP, 22), (TCP, 443)],
        sweeps: vec![],
        sensor_life,
        weekly: 0.5,
    }
}
