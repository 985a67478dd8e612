//! The persisted state of every run: one SQLite database per Ferry home.
//!
//! Nodes are stored in a compact row each (integer phase and kind, outputs as
//! JSON only when there are any), so a 100,000-node run stays a few tens of
//! MB. Writes come in batches, one transaction each: the controller flushes
//! what changed every few tens of milliseconds instead of once per event.

use crate::status::{ArtifactRecord, Direction, GcState, Node, NodeKind};
use ferry_workflow::model::GcStrategy;
use ferry_workflow::values::{Location, Outputs, Phase};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused.
    #[error("state database {path}: {source}")]
    Sql {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// No such workflow.
    #[error("no workflow named {0:?}")]
    NotFound(String),
    /// A stored record is not readable.
    #[error("state database {path}: corrupt record: {detail}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

type Result<T> = std::result::Result<T, StoreError>;

/// A workflow run's summary row.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRecord {
    /// Row id.
    pub id: i64,
    /// The workflow's name (unique).
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Its phase.
    pub phase: Phase,
    /// Why it failed.
    pub message: String,
    /// Unix milliseconds.
    pub created: i64,
    /// Unix milliseconds.
    pub finished: Option<i64>,
    /// The run's directory (logs, pods, sockets).
    pub dir: PathBuf,
    /// Where its artifact GC stands.
    pub gc: GcState,
}

/// The state database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// How long opening waits for other processes that hold the database.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

const SCHEMA: &str = "
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS workflows (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uid TEXT NOT NULL,
    phase INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL,
    finished INTEGER,
    dir TEXT NOT NULL,
    gc TEXT NOT NULL DEFAULT 'none',
    plan BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    wf INTEGER NOT NULL,
    id INTEGER NOT NULL,
    name TEXT NOT NULL,
    parent INTEGER,
    kind INTEGER NOT NULL,
    template TEXT NOT NULL,
    phase INTEGER NOT NULL,
    started INTEGER,
    finished INTEGER,
    message TEXT,
    outputs BLOB,
    PRIMARY KEY (wf, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS artifacts (
    wf INTEGER NOT NULL,
    node INTEGER NOT NULL,
    name TEXT NOT NULL,
    direction INTEGER NOT NULL,
    driver TEXT NOT NULL,
    configuration TEXT NOT NULL,
    key TEXT NOT NULL,
    gc INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    PRIMARY KEY (wf, node, direction, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS locks (
    key TEXT NOT NULL,
    holder TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started INTEGER NOT NULL,
    boot TEXT NOT NULL,
    since INTEGER NOT NULL,
    PRIMARY KEY (key, holder)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS memos (
    cache TEXT NOT NULL,
    key TEXT NOT NULL,
    outputs TEXT NOT NULL,
    saved INTEGER NOT NULL,
    PRIMARY KEY (cache, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decisions (
    wf INTEGER NOT NULL,
    at INTEGER NOT NULL,
    approve INTEGER NOT NULL,
    message TEXT NOT NULL,
    supplied TEXT NOT NULL
);
";

/// A person's answer to a run's suspended nodes (`ferry resume --approve`
/// or `--fail`): it resumes every node suspended before it was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Approved (the nodes succeed), else failed.
    pub approve: bool,
    /// Why, for a failure.
    pub message: String,
    /// Output parameters supplied (`--set NAME=VALUE`).
    pub supplied: std::collections::BTreeMap<String, String>,
}

/// The `ferry` process holding a lock, told apart from a later process
/// that reuses its number by its start time and the boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockOwner {
    /// The process number.
    pub pid: i64,
    /// When it started (clock ticks since boot).
    pub started: i64,
    /// The boot it runs in.
    pub boot: String,
}

/// Switches the database to WAL. SQLite answers "database is locked" at once,
/// without its busy handler, when another connection opens the same new
/// database meanwhile: two `ferry run`s started together on a fresh home
/// failed that way (one in three, measured). So the switch is retried.
fn use_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other.map(drop),
        }
    }
}

fn gc_code(g: GcStrategy) -> i64 {
    match g {
        GcStrategy::Unset | GcStrategy::Never => 0,
        GcStrategy::OnWorkflowCompletion => 1,
        GcStrategy::OnWorkflowDeletion => 2,
    }
}

fn gc_from(c: i64) -> GcStrategy {
    match c {
        1 => GcStrategy::OnWorkflowCompletion,
        2 => GcStrategy::OnWorkflowDeletion,
        _ => GcStrategy::Never,
    }
}

impl Store {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let sql = |source| StoreError::Sql { path: path.to_path_buf(), source };
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        use_wal(&conn).map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        Ok(Store { conn, path: path.to_path_buf() })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + use<> {
        let path = self.path.clone();
        move |source| StoreError::Sql { path: path.clone(), source }
    }

    /// Records a new run with its plan (the resolved workflow, as JSON).
    pub fn create_workflow(&self, name: &str, uid: &str, dir: &Path, plan: &[u8], now: i64) -> Result<WorkflowRecord> {
        self.conn
            .execute(
                "INSERT INTO workflows (name, uid, phase, created, dir, plan) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, uid, phase_code(Phase::Running), now, dir.to_string_lossy(), plan],
            )
            .map_err(self.sql())?;
        self.workflow(name)
    }

    /// Whether a workflow of this name exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        let found: Option<i64> = self
            .conn
            .query_row("SELECT id FROM workflows WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(self.sql())?;
        Ok(found.is_some())
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WorkflowRecord> {
        Ok(WorkflowRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            uid: r.get(2)?,
            phase: phase_of(r.get(3)?),
            message: r.get(4)?,
            created: r.get(5)?,
            finished: r.get(6)?,
            dir: PathBuf::from(r.get::<_, String>(7)?),
            gc: {
                let text: String = r.get(8)?;
                GcState::parse(&text).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        8,
                        rusqlite::types::Type::Text,
                        format!("unknown GC state {text:?}").into(),
                    )
                })?
            },
        })
    }

    /// One workflow's summary.
    pub fn workflow(&self, name: &str) -> Result<WorkflowRecord> {
        self.conn
            .query_row(
                "SELECT id, name, uid, phase, message, created, finished, dir, gc FROM workflows WHERE name = ?1",
                [name],
                Self::row,
            )
            .optional()
            .map_err(self.sql())?
            .ok_or_else(|| StoreError::NotFound(name.to_string()))
    }

    /// Every workflow, newest first.
    pub fn workflows(&self) -> Result<Vec<WorkflowRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, uid, phase, message, created, finished, dir, gc FROM workflows ORDER BY created DESC, id DESC")
            .map_err(self.sql())?;
        let rows = stmt.query_map([], Self::row).map_err(self.sql())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.sql())
    }

    /// The plan a run was started with.
    pub fn plan(&self, wf: i64) -> Result<Vec<u8>> {
        self.conn.query_row("SELECT plan FROM workflows WHERE id = ?1", [wf], |r| r.get(0)).map_err(self.sql())
    }

    /// Sets a workflow's phase and message.
    pub fn set_phase(&self, wf: i64, phase: Phase, message: &str, finished: Option<i64>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE workflows SET phase = ?2, message = ?3, finished = ?4 WHERE id = ?1",
                params![wf, phase_code(phase), message, finished],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Sets a workflow's GC state.
    pub fn set_gc(&self, wf: i64, gc: GcState) -> Result<()> {
        let text = gc.to_string();
        self.conn.execute("UPDATE workflows SET gc = ?2 WHERE id = ?1", params![wf, text]).map_err(self.sql())?;
        Ok(())
    }

    /// Writes nodes and artifact records in one transaction.
    pub fn save(&mut self, wf: i64, nodes: &[Node], artifacts: &[ArtifactRecord]) -> Result<()> {
        let sql = self.sql();
        let tx = self.conn.transaction().map_err(&sql)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO nodes (wf, id, name, parent, kind, template, phase, started, finished, message, outputs)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(&sql)?;
            for n in nodes {
                let outputs = if n.outputs.is_empty() { None } else { serde_json::to_vec(&n.outputs).ok() };
                let message = if n.message.is_empty() { None } else { Some(n.message.as_str()) };
                put.execute(params![
                    wf,
                    n.id,
                    n.name,
                    n.parent,
                    n.kind.code(),
                    n.template,
                    phase_code(n.phase),
                    n.started,
                    n.finished,
                    message,
                    outputs
                ])
                .map_err(&sql)?;
            }
            let mut art = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO artifacts (wf, node, name, direction, driver, configuration, key, gc, deleted, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(&sql)?;
            for a in artifacts {
                art.execute(params![
                    wf,
                    a.node,
                    a.name,
                    (a.direction == Direction::Output) as i64,
                    a.location.driver,
                    a.location.configuration,
                    a.location.key,
                    gc_code(a.gc),
                    a.deleted as i64,
                    a.error
                ])
                .map_err(&sql)?;
            }
        }
        tx.commit().map_err(&sql)
    }

    /// Every node of a run, by id.
    pub fn nodes(&self, wf: i64) -> Result<Vec<Node>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, name, parent, kind, template, phase, started, finished, message, outputs
                 FROM nodes WHERE wf = ?1 ORDER BY id",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([wf], |r| {
                let outputs: Option<Vec<u8>> = r.get(9)?;
                Ok((
                    Node {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        parent: r.get(2)?,
                        kind: NodeKind::from_code(r.get(3)?),
                        template: r.get(4)?,
                        phase: phase_of(r.get(5)?),
                        started: r.get(6)?,
                        finished: r.get(7)?,
                        message: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                        outputs: Outputs::default(),
                    },
                    outputs,
                ))
            })
            .map_err(self.sql())?;
        let mut nodes = Vec::new();
        for row in rows {
            let (mut node, outputs) = row.map_err(self.sql())?;
            if let Some(bytes) = outputs {
                node.outputs = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("outputs of node {}: {e}", node.name),
                })?;
            }
            nodes.push(node);
        }
        Ok(nodes)
    }

    /// Every artifact record of a run.
    pub fn artifacts(&self, wf: i64) -> Result<Vec<ArtifactRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT node, name, direction, driver, configuration, key, gc, deleted, error
                 FROM artifacts WHERE wf = ?1 ORDER BY node, direction, name",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([wf], |r| {
                Ok(ArtifactRecord {
                    node: r.get(0)?,
                    name: r.get(1)?,
                    direction: if r.get::<_, i64>(2)? == 1 { Direction::Output } else { Direction::Input },
                    location: Location { driver: r.get(3)?, configuration: r.get(4)?, key: r.get(5)?, timeout: 0 },
                    gc: gc_from(r.get(6)?),
                    deleted: r.get::<_, i64>(7)? != 0,
                    error: r.get(8)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.sql())
    }

    /// Folds the write-ahead log into the database and truncates it, so the
    /// database on disk is its real size after a run.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(self.sql())
    }

    /// Takes `key` for `holder` if fewer than `limit` live owners hold it
    /// (or `holder` already does). Holders whose process is gone (`alive`
    /// says no: a `ferry` killed while it held the lock) are removed first.
    /// Returns whether it is held, and how many hold it now.
    pub fn try_lock(
        &mut self,
        key: &str,
        holder: &str,
        limit: u32,
        owner: &LockOwner,
        alive: impl Fn(&LockOwner) -> bool,
        now: i64,
    ) -> Result<(bool, usize)> {
        let sql = self.sql();
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(&sql)?;
        let holders: Vec<(String, LockOwner)> = {
            let mut q = tx.prepare("SELECT holder, pid, started, boot FROM locks WHERE key = ?1").map_err(&sql)?;
            let rows = q
                .query_map([key], |r| {
                    Ok((r.get(0)?, LockOwner { pid: r.get(1)?, started: r.get(2)?, boot: r.get(3)? }))
                })
                .map_err(&sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&sql)?
        };
        let mut live = 0;
        let mut mine = false;
        for (h, o) in &holders {
            if alive(o) {
                live += 1;
                mine |= h == holder;
            } else {
                tx.execute("DELETE FROM locks WHERE key = ?1 AND holder = ?2", params![key, h]).map_err(&sql)?;
            }
        }
        let taken = mine || live < limit as usize;
        if taken && !mine {
            tx.execute(
                "INSERT INTO locks (key, holder, pid, started, boot, since) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![key, holder, owner.pid, owner.started, owner.boot, now],
            )
            .map_err(&sql)?;
            live += 1;
        }
        tx.commit().map_err(&sql)?;
        Ok((taken, live))
    }

    /// Records a decision on run `wf`'s suspended nodes.
    pub fn decide(&self, wf: i64, decision: &Decision, now: i64) -> Result<()> {
        let supplied = serde_json::to_string(&decision.supplied).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO decisions (wf, at, approve, message, supplied) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![wf, now, decision.approve, decision.message, supplied],
            )
            .map(drop)
            .map_err(self.sql())
    }

    /// The first decision on run `wf` given at or after `since`.
    pub fn decision(&self, wf: i64, since: i64) -> Result<Option<Decision>> {
        let row = self
            .conn
            .query_row(
                "SELECT approve, message, supplied FROM decisions WHERE wf = ?1 AND at >= ?2 ORDER BY at LIMIT 1",
                params![wf, since],
                |r| Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
            )
            .optional()
            .map_err(self.sql())?;
        Ok(row.map(|(approve, message, supplied)| Decision {
            approve,
            message,
            supplied: serde_json::from_str(&supplied).unwrap_or_default(),
        }))
    }

    /// The outputs `cache` holds for `key`, saved at or after `since` (Unix ms).
    pub fn memo(&self, cache: &str, key: &str, since: i64) -> Result<Option<Outputs>> {
        let row = self
            .conn
            .query_row(
                "SELECT outputs FROM memos WHERE cache = ?1 AND key = ?2 AND saved >= ?3",
                params![cache, key, since],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(self.sql())?;
        Ok(row.and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Saves `outputs` in `cache` under `key`, replacing what was there.
    pub fn save_memo(&self, cache: &str, key: &str, outputs: &Outputs, now: i64) -> Result<()> {
        let text = serde_json::to_string(outputs).unwrap_or_default();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO memos (cache, key, outputs, saved) VALUES (?1, ?2, ?3, ?4)",
                params![cache, key, text, now],
            )
            .map(drop)
            .map_err(self.sql())
    }

    /// Gives `key` up for `holder`.
    pub fn unlock(&self, key: &str, holder: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM locks WHERE key = ?1 AND holder = ?2", params![key, holder])
            .map(drop)
            .map_err(self.sql())
    }

    /// Removes a run's records.
    pub fn delete_workflow(&mut self, wf: i64) -> Result<()> {
        let sql = self.sql();
        let tx = self.conn.transaction().map_err(&sql)?;
        for table in [
            "DELETE FROM nodes WHERE wf = ?1",
            "DELETE FROM artifacts WHERE wf = ?1",
            "DELETE FROM decisions WHERE wf = ?1",
            "DELETE FROM workflows WHERE id = ?1",
        ] {
            tx.execute(table, [wf]).map_err(&sql)?;
        }
        tx.commit().map_err(&sql)
    }
}
/// The integer a phase is stored as: its place in [`Phase`], which must
/// therefore never change.
fn phase_code(p: Phase) -> i64 {
    p as i64
}

fn phase_of(code: i64) -> Phase {
    match code {
        0 => Phase::Pending,
        1 => Phase::Running,
        2 => Phase::Succeeded,
        3 => Phase::Failed,
        4 => Phase::Error,
        5 => Phase::Skipped,
        _ => Phase::Omitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs started together on a fresh home all open its database.
    #[test]
    fn connections_opening_one_new_database_at_once_all_succeed() {
        for _ in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ferry.db");
            let barrier = std::sync::Barrier::new(4);
            std::thread::scope(|s| {
                let opens: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            Store::open(&path).map(drop)
                        })
                    })
                    .collect();
                for open in opens {
                    open.join().unwrap().unwrap_or_else(|e| panic!("opening a new database beside others: {e}"));
                }
            });
            let mode: String =
                Connection::open(&path).unwrap().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
            assert_eq!(mode, "wal");
        }
    }
}
