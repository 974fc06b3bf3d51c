//! The [`Store`] trait over ClickHouse: every method as SQL over the tables of
//! `schema.rs`.

use super::*;

impl SensorStore for ClickHouseStore {
    fn add_sensor(&mut self, name: &str, now: Timestamp) -> Result<String, StoreError> {
        if !valid_sensor_name(name) {
            return Err(StoreError::InvalidName(name.to_string()));
        }
        if self.sensor_exists(name)? {
            return Err(StoreError::SensorExists(name.to_string()));
        }
        let token = new_token()?;
        let v = self.next_version();
        self.insert_json(
            &self.ctl("sensors"),
            &[json!({
                "name": name, "token_hash": hash_token(&token), "created_ms": now.0,
                "revoked": 0, "version": v,
            })],
        )?;
        Ok(token)
    }

    fn revoke_sensor(&mut self, name: &str) -> Result<(), StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT tupleElement(r, 1) AS token_hash, tupleElement(r, 2) AS created_ms
             FROM (SELECT argMax(tuple(token_hash, created_ms), version) AS r FROM {}
                   WHERE name = {} GROUP BY name)",
            self.ctl("sensors"),
            quote(name)
        ))?;
        let Some(r) = r.first() else {
            return Err(StoreError::NoSuchSensor(name.to_string()));
        };
        let (h, c) = (r.str("token_hash")?, r.int::<i64>("created_ms")?);
        let v = self.next_version();
        self.insert_json(
            &self.ctl("sensors"),
            &[json!({
                "name": name, "token_hash": h, "created_ms": c, "revoked": 1, "version": v,
            })],
        )
    }

    fn sensors(&self) -> Result<Vec<SensorRecord>, StoreError> {
        let base = self.ctl_rows(&format!(
            "SELECT name, argMax(created_ms, version) AS created_ms, max(revoked) AS revoked \
             FROM {} GROUP BY name",
            self.ctl("sensors")
        ))?;
        let stats = self.ctl_rows(&format!(
            "SELECT sensor, sumMerge(batches) AS batches, sumMerge(events) AS events, \
                    maxMerge(last_seen) AS last_seen FROM {} GROUP BY sensor",
            self.ctl("sensor_stats")
        ))?;
        let beats = self.ctl_rows(&format!(
            "SELECT sensor, tupleElement(r, 1) AS at_ms, tupleElement(r, 2) AS json
             FROM (SELECT sensor, argMax(tuple(at_ms, json), version) AS r FROM {} GROUP BY sensor)",
            self.ctl("sensor_heartbeats")
        ))?;
        let mut st: HashMap<String, (u64, u64, i64)> = HashMap::new();
        for r in &stats {
            st.insert(
                r.str("sensor")?,
                (r.int("batches")?, r.int("events")?, r.int("last_seen")?),
            );
        }
        let mut hb: HashMap<String, (Timestamp, String)> = HashMap::new();
        for r in &beats {
            hb.insert(
                r.str("sensor")?,
                (Timestamp(r.int("at_ms")?), r.str("json")?),
            );
        }
        let mut out = Vec::with_capacity(base.len());
        for r in &base {
            let name = r.str("name")?;
            let s = st.get(&name);
            out.push(SensorRecord {
                created: Timestamp(r.int("created_ms")?),
                revoked: r.int::<u8>("revoked")? != 0,
                last_seen: s.map(|s| Timestamp(s.2)),
                batches: s.map_or(0, |s| s.0),
                events: s.map_or(0, |s| s.1),
                heartbeat: hb.get(&name).cloned(),
                name,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn record_heartbeat(
        &mut self,
        sensor: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !self.sensor_exists(sensor)? {
            return Err(StoreError::NoSuchSensor(sensor.to_string()));
        }
        let v = self.next_version();
        self.insert_json(
            &self.ctl("sensor_heartbeats"),
            &[json!({"sensor": sensor, "at_ms": now.0, "json": json, "version": v})],
        )
    }

    fn authenticate_sensor(&self, token: &str) -> Result<Option<String>, StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT name FROM {} GROUP BY name \
             HAVING argMax(token_hash, version) = {} AND max(revoked) = 0 ORDER BY name LIMIT 1",
            self.ctl("sensors"),
            quote(&hash_token(token))
        ))?;
        r.first().map(|r| r.str("name")).transpose()
    }
}

/// ClickHouse keeps no order of the batches it stored (its parts merge and its
/// shards are apart): it cannot say which events came after a checkpoint, so a
/// centre over it replays every stored event at start, as before checkpoints.
impl CheckpointStore for ClickHouseStore {
    fn event_mark(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    fn events_after(&self, _mark: u64) -> Result<Vec<(String, Event)>, StoreError> {
        Err(StoreError::Unsupported("order of stored batches"))
    }

    fn put_checkpoint(&mut self, _c: &StoredCheckpoint) -> Result<(), StoreError> {
        Err(StoreError::Unsupported("checkpoint"))
    }

    fn checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        Ok(None)
    }
}

impl EventStore for ClickHouseStore {
    fn commit_batch(
        &mut self,
        sensor: &str,
        batch_id: &str,
        events: &[Event],
        received: Timestamp,
    ) -> Result<BatchOutcome, StoreError> {
        crate::check_counts(events)?;
        if !self.sensor_exists(sensor)? {
            return Err(StoreError::NoSuchSensor(sensor.to_string()));
        }
        let shard = self.shard_of(&[sensor.as_bytes(), batch_id.as_bytes()]);
        let seen = self.rows(
            shard,
            &format!(
                "SELECT count() AS n FROM {} WHERE sensor = {} AND batch_id = {}",
                self.local("batches"),
                quote(sensor),
                quote(batch_id)
            ),
        )?;
        if let Some(r) = seen.first() {
            if r.int::<u64>("n")? > 0 {
                return Ok(BatchOutcome::Duplicate);
            }
        }
        let seq = self.next_version();
        if !events.is_empty() {
            let mut rb = Rb::default();
            put_events(&mut rb, sensor, batch_id, seq, events);
            self.insert_rowbinary(shard, &self.local("events"), EVENT_COLUMNS, rb)?;
        }
        let total: u64 = events.iter().map(|e| u64::from(e.count)).sum();
        // The batch id row is the commit point: every read counts only events whose
        // `batch_seq` has one, so events of a commit that failed before it are never
        // counted, and the resend stores them again under a new seq.
        let mut rb = Rb::default();
        rb.datetime(received.0);
        rb.i64(received.0);
        rb.str(sensor);
        rb.str(batch_id);
        rb.u64(total);
        rb.u64(seq);
        rb.datetime(keep_until(received, events));
        self.insert_rowbinary(shard, &self.local("batches"), BATCH_COLUMNS, rb)?;
        self.add_sensor_stats(&[(sensor, 1, total)], received)?;
        Ok(BatchOutcome::Accepted {
            events: events.len(),
        })
    }

    fn stored_batches(
        &self,
        shard_key: u64,
        ids: &[(&str, &str)],
    ) -> Result<Vec<bool>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let shard = self.shard_of_key(shard_key);
        let list: Vec<String> = ids
            .iter()
            .map(|(s, b)| format!("({}, {})", quote(s), quote(b)))
            .collect();
        let rows = self.rows(
            shard,
            &format!(
                "SELECT DISTINCT sensor, batch_id FROM {} WHERE (sensor, batch_id) IN ({})",
                self.local("batches"),
                list.join(", ")
            ),
        )?;
        let mut found = std::collections::HashSet::new();
        for r in &rows {
            found.insert((r.str("sensor")?, r.str("batch_id")?));
        }
        Ok(ids
            .iter()
            .map(|(s, b)| found.contains(&(s.to_string(), b.to_string())))
            .collect())
    }

    fn commit_aggregate(&mut self, c: &AggregateCommit<'_>) -> Result<(), StoreError> {
        for b in &c.batches {
            crate::check_counts(b.events)?;
        }
        let shard = self.shard_of_key(c.shard_key);
        let ids: Vec<(&str, &str)> = c.batches.iter().map(|b| (b.sensor, b.batch_id)).collect();
        if let Some(i) = self
            .stored_batches(c.shard_key, &ids)?
            .iter()
            .position(|x| *x)
        {
            return Err(StoreError::BatchStored {
                sensor: ids[i].0.to_string(),
                batch: ids[i].1.to_string(),
            });
        }
        // Three inserts into one shard; the last (the batch ids, one block, so
        // atomic) is the commit point: reads count events and partials only under a
        // seq that has batch rows.
        let mut rb = Rb::default();
        for b in &c.batches {
            put_events(&mut rb, b.sensor, b.batch_id, c.commit, b.events);
        }
        if !rb.0.is_empty() {
            self.insert_rowbinary(shard, &self.local("events"), EVENT_COLUMNS, rb)?;
        }
        if !c.partials.is_empty() {
            let mut rb = Rb::default();
            for p in &c.partials {
                rb.datetime(p.window_start.0);
                rb.i64(p.window_start.0);
                rb.i64(p.max_time.0);
                rb.u64(c.commit);
                rb.i64(p.committed.0);
                rb.bytes(&p.state);
            }
            self.insert_rowbinary(
                shard,
                &self.local("partials"),
                "window_start, window_start_ms, max_time_ms, seq, committed_ms, state",
                rb,
            )?;
        }
        let mut rb = Rb::default();
        let mut per_sensor: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let keep = keep_until(c.received, c.batches.iter().flat_map(|b| b.events));
        for b in &c.batches {
            let total: u64 = b.events.iter().map(|e| u64::from(e.count)).sum();
            rb.datetime(c.received.0);
            rb.i64(c.received.0);
            rb.str(b.sensor);
            rb.str(b.batch_id);
            rb.u64(total);
            rb.u64(c.commit);
            rb.datetime(keep);
            let e = per_sensor.entry(b.sensor).or_default();
            e.0 += 1;
            e.1 += total;
        }
        if !c.batches.is_empty() {
            self.insert_rowbinary(shard, &self.local("batches"), BATCH_COLUMNS, rb)?;
        }
        // After the commit point: a failure here loses these counters for this
        // commit (the resend finds its batches stored), never counts them twice.
        let stats: Vec<(&str, u64, u64)> = per_sensor
            .into_iter()
            .map(|(s, (b, e))| (s, b, e))
            .collect();
        self.add_sensor_stats(&stats, c.received)
    }

    fn partials_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        committed_since: Timestamp,
    ) -> Result<Vec<PartialRow>, StoreError> {
        let rows = self.dist_rows(&format!(
            "SELECT seq, committed_ms, window_start_ms, max_time_ms, hex(state) AS state FROM {} \
             WHERE {} AND committed_ms >= {} AND {} ORDER BY window_start_ms, seq",
            self.dist("partials"),
            time_range("window_start", "window_start_ms", from, to),
            lit(committed_since.0),
            self.committed("seq"),
        ))?;
        rows.iter()
            .map(|r| {
                Ok(PartialRow {
                    commit: r.int("seq")?,
                    committed: Timestamp(r.int("committed_ms")?),
                    window_start: Timestamp(r.int("window_start_ms")?),
                    max_time: Timestamp(r.int("max_time_ms")?),
                    state: unhex(&r.str("state")?)?,
                })
            })
            .collect()
    }

    fn top_ports(
        &self,
        from: Timestamp,
        to: Timestamp,
        by: TopBy,
        limit: usize,
    ) -> Result<Vec<PortTotals>, StoreError> {
        if to.0.saturating_sub(from.0) < cells::TOP_PORTS_RAW_BELOW_MS {
            self.top_ports_from_events(from, to, by, limit)
        } else {
            self.top_ports_from_cells(from, to, by, limit)
        }
    }

    fn source_activity(
        &self,
        src: IpAddr,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SourcePort>, StoreError> {
        if to.0.saturating_sub(from.0) <= cells::RAW_RANGE_MS {
            self.source_activity_from_events(src, from, to)
        } else {
            self.source_activity_from_cells(src, from, to)
        }
    }

    fn prune(
        &mut self,
        events_before: Timestamp,
        windows_before: Timestamp,
    ) -> Result<(u64, u64), StoreError> {
        // Cells are made of the events, so they go with them, first: a prune cut
        // short leaves no cell of an event that is gone.
        self.drop_days("port_hours", "hour", events_before, "1")?;
        self.drop_days("source_hours", "hour", events_before, "1")?;
        let events = self.drop_days("events", "time", events_before, "1")?;
        self.drop_days("batches", "keep", events_before, "1")?;
        // Partials count only under their batch ids, so they go with them.
        self.drop_days("partials", "window_start", events_before, "1")?;
        let windows = self.drop_days(
            "windows",
            "window_start",
            windows_before,
            "DISTINCT proto, port, window_start_ms",
        )?;
        let old = self.alert_rows(&format!("window_start_ms < {}", lit(windows_before.0)), "")?;
        let mut rows = Vec::with_capacity(old.len());
        for a in &old {
            let v = self.next_version();
            rows.push(json!({
                "kind": a.kind, "proto": a.proto, "port": a.port,
                "window_start_ms": a.window_start.0, "id": a.id, "severity": a.severity_rank,
                "json": "", "deleted": 1, "version": v,
            }));
        }
        self.insert_json(&self.ctl("alerts"), &rows)?;
        // IDS alerts go with the events they came with (tombstones, as deletes are).
        let old_ids = self.ctl_rows(&format!(
            "SELECT key, tupleElement(r, 1) AS origin
             FROM (SELECT key, argMax(tuple(origin, imported_ms, deleted), version) AS r
                   FROM {} WHERE kind = {} GROUP BY key)
             WHERE tupleElement(r, 3) = 0 AND tupleElement(r, 2) < {}",
            self.ctl("context_items"),
            quote(crate::ContextKind::Ids.name()),
            lit(events_before.0)
        ))?;
        let mut rows = Vec::with_capacity(old_ids.len());
        for r in &old_ids {
            let v = self.next_version();
            rows.push(json!({
                "kind": crate::ContextKind::Ids.name(), "key": r.str("key")?, "origin": r.str("origin")?,
                "json": "", "imported_ms": 0, "deleted": 1, "version": v,
            }));
        }
        self.insert_json(&self.ctl("context_items"), &rows)?;
        Ok((events, windows))
    }

    fn events_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, Event)>, StoreError> {
        let rows = self.dist_rows(&format!(
            "SELECT sensor, time_ms, proto, hex(src) AS src, hex(dst) AS dst, src_v4, dst_v4,
                    src_port, has_src_port, dst_port, has_dst_port, flags, flags_known,
                    icmp_type, has_icmp_type, toInt8(direction) AS direction,
                    toInt8(action) AS action, count
             FROM {} WHERE {} AND {} ORDER BY time_ms, batch_seq, idx",
            self.dist("events"),
            time_range("time", "time_ms", from, to),
            self.committed("batch_seq"),
        ))?;
        rows.iter()
            .map(|r| {
                let flag = |k: &str| -> Result<bool, StoreError> { Ok(r.int::<u8>(k)? != 0) };
                Ok((
                    r.str("sensor")?,
                    Event {
                        time: Timestamp(r.int("time_ms")?),
                        proto: Protocol::from_number(r.int("proto")?),
                        src: ip_from_hex(&r.str("src")?, flag("src_v4")?)?,
                        dst: ip_from_hex(&r.str("dst")?, flag("dst_v4")?)?,
                        src_port: flag("has_src_port")?
                            .then(|| r.int("src_port"))
                            .transpose()?,
                        dst_port: flag("has_dst_port")?
                            .then(|| r.int("dst_port"))
                            .transpose()?,
                        flags: TcpFlags(r.int("flags")?),
                        flags_known: flag("flags_known")?,
                        icmp_type: flag("has_icmp_type")?
                            .then(|| r.int("icmp_type"))
                            .transpose()?,
                        direction: match r.int::<i8>("direction")? {
                            1 => Direction::Inbound,
                            2 => Direction::Outbound,
                            _ => Direction::Unknown,
                        },
                        action: match r.int::<i8>("action")? {
                            1 => Action::Accept,
                            2 => Action::Drop,
                            3 => Action::Reject,
                            _ => Action::Unknown,
                        },
                        count: r.int("count")?,
                    },
                ))
            })
            .collect()
    }
}

impl WindowStore for ClickHouseStore {
    fn put_windows(&mut self, rows: &[WindowRow]) -> Result<(), StoreError> {
        let mut by_shard: BTreeMap<usize, Rb> = BTreeMap::new();
        for w in rows {
            let v = self.next_version();
            let shard = self.shard_of(&[&[w.proto], &w.port.to_be_bytes()]);
            let rb = by_shard.entry(shard).or_default();
            rb.datetime(w.window_start.0);
            rb.i64(w.window_start.0);
            rb.i64(w.window_end.0);
            rb.u8(w.proto);
            rb.u16(w.port);
            rb.u64(w.events);
            rb.u64(w.sources);
            rb.u64(w.sensors);
            rb.u64(w.targets);
            rb.str(&w.top_sources_json);
            rb.u64(v);
        }
        for (shard, rb) in by_shard {
            self.insert_rowbinary(shard, &self.local("windows"), WINDOW_COLUMNS, rb)?;
        }
        Ok(())
    }

    fn port_history(
        &self,
        proto: u8,
        port: u16,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<WindowRow>, StoreError> {
        self.window_rows(
            &format!(
                "proto = {proto} AND port = {port} AND {}",
                time_range("window_start", "window_start_ms", from, to)
            ),
            "window_start_ms",
        )
    }

    fn latest_window(&self) -> Result<Option<(Timestamp, Timestamp)>, StoreError> {
        let r = self.dist_rows(&format!(
            "SELECT window_start_ms FROM {} ORDER BY window_start_ms DESC LIMIT 1",
            self.dist("windows")
        ))?;
        let Some(start) = r
            .first()
            .map(|r| r.int::<i64>("window_start_ms"))
            .transpose()?
        else {
            return Ok(None);
        };
        let w = self.window_rows(
            &format!("window_start_ms = {}", lit(start)),
            "proto DESC, port DESC LIMIT 1",
        )?;
        Ok(w.first().map(|w| (w.window_start, w.window_end)))
    }

    fn windows_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<WindowRow>, StoreError> {
        self.window_rows(
            &time_range("window_start", "window_start_ms", from, to),
            "window_start_ms, proto, port",
        )
    }
}

impl WarningStore for ClickHouseStore {
    fn upsert_alert(&mut self, a: &AlertRow) -> Result<(i64, bool), StoreError> {
        let key = alert_key(a);
        let Some(old) = self.alert_rows(&key, "")?.into_iter().next() else {
            return Ok((self.put_alert(a)?, true));
        };
        if old.severity_rank == a.severity_rank && old.json == a.json {
            return Ok((old.id, false));
        }
        // A newer version of the same row (ReplacingMergeTree), under the same id.
        self.write_alert(a, old.id)?;
        Ok((old.id, true))
    }

    fn put_alert(&mut self, a: &AlertRow) -> Result<i64, StoreError> {
        let key = alert_key(a);
        if let Some(r) = self.alert_rows(&key, "")?.first() {
            return Ok(r.id);
        }
        let mut id = alert_id(&a.kind, a.proto, a.port, a.window_start);
        let mut free = false;
        for _ in 0..64 {
            let r = self.ctl_rows(&format!(
                "SELECT count() AS n FROM {} WHERE id = {id} AND NOT ({key})",
                self.ctl("alerts")
            ))?;
            if r.first()
                .map(|r| r.int::<u64>("n"))
                .transpose()?
                .unwrap_or(0)
                == 0
            {
                free = true;
                break;
            }
            id = if id >= (1 << 53) - 1 { 1 } else { id + 1 };
        }
        if !free {
            return Err(err("no free alert id after 64 tries"));
        }
        self.write_alert(a, id)?;
        Ok(id)
    }

    fn alerts(
        &self,
        from: Timestamp,
        to: Timestamp,
        min_severity: u8,
    ) -> Result<Vec<AlertRow>, StoreError> {
        self.alert_rows(
            &format!(
                "window_start_ms >= {} AND window_start_ms < {}",
                lit(from.0),
                lit(to.0)
            ),
            &format!(
                "AND severity >= {min_severity} ORDER BY severity DESC, window_start_ms DESC, v"
            ),
        )
    }

    fn alert(&self, id: i64) -> Result<Option<AlertRow>, StoreError> {
        Ok(self
            .alert_rows(&format!("id = {id}"), "ORDER BY v LIMIT 1")?
            .into_iter()
            .next())
    }
}

impl AuthStore for ClickHouseStore {
    fn add_api_token(
        &mut self,
        name: &str,
        role: Role,
        now: Timestamp,
    ) -> Result<String, StoreError> {
        if !valid_sensor_name(name) {
            return Err(StoreError::InvalidName(name.to_string()));
        }
        let r = self.ctl_rows(&format!(
            "SELECT count() AS n FROM {} WHERE name = {}",
            self.ctl("api_tokens"),
            quote(name)
        ))?;
        if r.first()
            .map(|r| r.int::<u64>("n"))
            .transpose()?
            .unwrap_or(0)
            > 0
        {
            return Err(StoreError::TokenExists(name.to_string()));
        }
        let token = new_token()?;
        let v = self.next_version();
        self.insert_json(
            &self.ctl("api_tokens"),
            &[json!({
                "name": name, "role": role.name(), "token_hash": hash_token(&token),
                "created_ms": now.0, "revoked": 0, "version": v,
            })],
        )?;
        Ok(token)
    }

    fn authenticate_api(&self, token: &str) -> Result<Option<(String, Role)>, StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT name, tupleElement(r, 1) AS role
             FROM (SELECT name, argMax(tuple(role, token_hash), version) AS r, max(revoked) AS rv
                   FROM {} GROUP BY name)
             WHERE tupleElement(r, 2) = {} AND rv = 0 ORDER BY name LIMIT 1",
            self.ctl("api_tokens"),
            quote(&hash_token(token))
        ))?;
        let Some(r) = r.first() else { return Ok(None) };
        let name = r.str("name")?;
        Ok(Role::parse(&r.str("role")?).map(|role| (name, role)))
    }

    fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let rows = self.ctl_rows(&format!(
            "SELECT name, tupleElement(r, 1) AS role, tupleElement(r, 2) AS created_ms, rv AS revoked
             FROM (SELECT name, argMax(tuple(role, created_ms), version) AS r, max(revoked) AS rv
                   FROM {} GROUP BY name)
             ORDER BY name",
            self.ctl("api_tokens")
        ))?;
        let mut out = Vec::new();
        for r in &rows {
            if let Some(role) = Role::parse(&r.str("role")?) {
                out.push(ApiTokenRecord {
                    name: r.str("name")?,
                    role,
                    created: Timestamp(r.int::<i64>("created_ms")?),
                    revoked: r.int::<u64>("revoked")? != 0,
                });
            }
        }
        Ok(out)
    }

    fn revoke_api_token(&mut self, name: &str) -> Result<(), StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT tupleElement(r, 1) AS role, tupleElement(r, 2) AS token_hash, tupleElement(r, 3) AS created_ms
             FROM (SELECT argMax(tuple(role, token_hash, created_ms), version) AS r FROM {}
                   WHERE name = {} GROUP BY name)",
            self.ctl("api_tokens"),
            quote(name)
        ))?;
        let Some(r) = r.first() else {
            return Err(StoreError::NoSuchToken(name.to_string()));
        };
        let (role, h, c) = (
            r.str("role")?,
            r.str("token_hash")?,
            r.int::<i64>("created_ms")?,
        );
        let v = self.next_version();
        self.insert_json(
            &self.ctl("api_tokens"),
            &[json!({
                "name": name, "role": role, "token_hash": h, "created_ms": c,
                "revoked": 1, "version": v,
            })],
        )
    }

    fn put_user(&mut self, u: &UserRecord, replace: bool) -> Result<(), StoreError> {
        if !valid_sensor_name(&u.name) {
            return Err(StoreError::InvalidName(u.name.clone()));
        }
        let old = self.user_rows(&format!("name = {}", quote(&u.name)))?;
        // A removed user's newest version has no role: the name is free again.
        let old: Vec<_> = old.into_iter().filter(|o| !o.1.is_empty()).collect();
        let created = match old.first() {
            Some(_) if !replace => return Err(StoreError::UserExists(u.name.clone())),
            // A password reset keeps the creation time, as SQLite's upsert does.
            Some(o) => o.3,
            None => u.created.0,
        };
        let v = self.next_version();
        self.insert_json(
            &self.ctl("users"),
            &[json!({
                "name": u.name, "role": u.role.name(), "password_hash": u.password_hash,
                "created_ms": created, "version": v,
            })],
        )?;
        if replace {
            // A new password ends the user's sessions.
            let live = self.session_rows(&format!("tupleElement(r, 1) = {}", quote(&u.name)))?;
            self.end_sessions(&live)?;
        }
        Ok(())
    }

    fn remove_user(&mut self, name: &str, _now: Timestamp) -> Result<bool, StoreError> {
        let live = self
            .user_rows(&format!("name = {}", quote(name)))?
            .into_iter()
            .any(|o| !o.1.is_empty());
        if !live {
            return Ok(false);
        }
        // The deletion marker is a newer version without a role (no schema change:
        // `user` and `users` leave out rows whose role does not parse).
        let v = self.next_version();
        self.insert_json(
            &self.ctl("users"),
            &[json!({
                "name": name, "role": "", "password_hash": "", "created_ms": 0, "version": v,
            })],
        )?;
        let sessions = self.session_rows(&format!("tupleElement(r, 1) = {}", quote(name)))?;
        self.end_sessions(&sessions)?;
        Ok(true)
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .user_rows(&format!("name = {}", quote(name)))?
            .into_iter()
            .find_map(|(name, role, password_hash, created)| {
                Role::parse(&role).map(|role| UserRecord {
                    name,
                    role,
                    password_hash,
                    created: Timestamp(created),
                })
            }))
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        Ok(self
            .user_rows("1 = 1")?
            .into_iter()
            .filter_map(|(name, role, password_hash, created)| {
                Role::parse(&role).map(|role| UserRecord {
                    name,
                    role,
                    password_hash,
                    created: Timestamp(created),
                })
            })
            .collect())
    }

    fn put_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        let v = self.next_version();
        self.insert_json(
            &self.ctl("sessions"),
            &[json!({
                "id_hash": s.id_hash, "user": s.user, "csrf": s.csrf,
                "created_ms": s.created.0, "expires_ms": s.expires.0, "deleted": 0, "version": v,
            })],
        )
    }

    fn session(&self, id_hash: &str, now: Timestamp) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .session_rows(&format!(
                "id_hash = {} AND tupleElement(r, 4) > {}",
                quote(id_hash),
                lit(now.0)
            ))?
            .into_iter()
            .next())
    }

    fn delete_session(&mut self, id_hash: &str, now: Timestamp) -> Result<(), StoreError> {
        let gone = self.session_rows(&format!(
            "id_hash = {} OR tupleElement(r, 4) <= {}",
            quote(id_hash),
            lit(now.0)
        ))?;
        self.end_sessions(&gone)
    }
}

impl ContextStore for ClickHouseStore {
    fn put_context_items(
        &mut self,
        kind: ContextKind,
        items: &[ContextItem],
        now: Timestamp,
    ) -> Result<ImportCounts, StoreError> {
        let kind = kind.name();
        let mut current: HashMap<String, String> = self
            .context_map(kind)?
            .into_iter()
            .map(|(k, (_, j))| (k, j))
            .collect();
        let mut counts = ImportCounts::default();
        let mut rows = Vec::with_capacity(items.len());
        for it in items {
            match current.get(&it.key) {
                Some(o) if *o == it.json => counts.unchanged += 1,
                Some(_) => counts.updated += 1,
                None => counts.added += 1,
            }
            current.insert(it.key.clone(), it.json.clone());
            let v = self.next_version();
            rows.push(json!({
                "kind": kind, "key": it.key, "origin": it.origin, "json": it.json,
                "imported_ms": now.0, "deleted": 0, "version": v,
            }));
        }
        self.insert_json(&self.ctl("context_items"), &rows)?;
        Ok(counts)
    }

    fn delete_context_origin(
        &mut self,
        kind: ContextKind,
        origin: &str,
    ) -> Result<usize, StoreError> {
        let kind = kind.name();
        let gone: Vec<String> = self
            .context_map(kind)?
            .into_iter()
            .filter(|(_, (o, _))| o == origin)
            .map(|(k, _)| k)
            .collect();
        let mut rows = Vec::with_capacity(gone.len());
        for k in &gone {
            let v = self.next_version();
            rows.push(json!({
                "kind": kind, "key": k, "origin": origin, "json": "", "imported_ms": 0,
                "deleted": 1, "version": v,
            }));
        }
        self.insert_json(&self.ctl("context_items"), &rows)?;
        Ok(gone.len())
    }

    fn context_items(&self, kind: ContextKind) -> Result<Vec<ContextItem>, StoreError> {
        let kind = kind.name();
        Ok(self
            .context_map(kind)?
            .into_iter()
            .map(|(key, (origin, json))| ContextItem { key, origin, json })
            .collect())
    }
}

impl SinkStore for ClickHouseStore {
    fn sink_state(&self, sink: &str, key: &str) -> Result<Option<String>, StoreError> {
        let r = self.ctl_rows(&format!(
            "SELECT argMax(json, version) AS json FROM {} WHERE sink = {} AND key = {} \
             GROUP BY sink, key",
            self.ctl("sink_state"),
            quote(sink),
            quote(key)
        ))?;
        r.first().map(|r| r.str("json")).transpose()
    }

    fn put_sink_state(
        &mut self,
        sink: &str,
        key: &str,
        json: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let v = self.next_version();
        self.insert_json(
            &self.ctl("sink_state"),
            &[json!({"sink": sink, "key": key, "json": json, "updated_ms": now.0, "version": v})],
        )
    }

    fn put_dead_letter(&mut self, d: &DeadLetter) -> Result<(), StoreError> {
        let v = self.next_version();
        self.insert_json(
            &self.ctl("dead_letters"),
            &[json!({
                "seq": v, "sink": d.sink, "key": d.key, "attempts": d.attempts,
                "error": d.error, "payload": d.payload, "at_ms": d.at.0,
            })],
        )
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = self.ctl_rows(&format!(
            "SELECT sink, key, attempts, error, payload, at_ms FROM {} ORDER BY seq",
            self.ctl("dead_letters")
        ))?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetter {
                    sink: r.str("sink")?,
                    key: r.str("key")?,
                    attempts: r.int("attempts")?,
                    error: r.str("error")?,
                    payload: r.str("payload")?,
                    at: Timestamp(r.int("at_ms")?),
                })
            })
            .collect()
    }
}

/// The filter that picks one warning: (kind, protocol, port, window).
fn alert_key(a: &AlertRow) -> String {
    format!(
        "kind = {} AND proto = {} AND port = {} AND window_start_ms = {}",
        quote(&a.kind),
        a.proto,
        a.port,
        lit(a.window_start.0)
    )
}
