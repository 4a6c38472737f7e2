//! The results file: one SQLite table, `points`, one row per point. The varied fields are columns
//! named by their dotted paths (quoted: names from a spec never become SQL), the figures columns of
//! their own; a point is identified by its key, so a run resumes by skipping the keys present and
//! shards merge by inserting the keys missing.

use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde_json::Value;

use crate::SweepError;

/// The figures of a point, in column order after the varied fields.
pub const FIGURES: [&str; 13] = [
    "accelerator",
    "total_cycles",
    "latency_s",
    "energy_pj",
    "dram_bytes",
    "utilization",
    "area_mm2",
    "luts",
    "dsps",
    "block_memories",
    "top1",
    "status",
    "error",
];

/// A SQL identifier, quoted (a `"` inside doubled).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A value as SQLite stores it.
pub fn sql_value(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Null => S::Null,
        Value::Bool(b) => S::Integer(*b as i64),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => S::Integer(i),
            (None, Some(f)) => S::Real(f),
            _ => S::Null,
        },
        Value::String(s) => S::Text(s.clone()),
        other => S::Text(other.to_string()),
    }
}

/// An open results file with the table for a spec's varied fields.
pub struct Store {
    pub conn: Connection,
    pub fields: Vec<String>,
}

fn db(path: &str, e: rusqlite::Error) -> SweepError {
    SweepError::Db {
        path: path.to_string(),
        message: e.to_string(),
    }
}

impl Store {
    /// Opens (or creates) the file, with the table for `fields`; an existing table must have
    /// the same columns (the same spec's varied fields).
    pub fn open(path: &str, fields: &[String]) -> Result<Store, SweepError> {
        let conn = Connection::open(path).map_err(|e| db(path, e))?;
        let mut cols = vec!["key TEXT PRIMARY KEY".to_string(), "idx INTEGER".into()];
        cols.push("model TEXT".into());
        cols.push("passes TEXT".into());
        cols.extend(fields.iter().map(|f| ident(f)));
        cols.extend(FIGURES.iter().map(|f| ident(f)));
        conn.execute(
            &format!("CREATE TABLE IF NOT EXISTS points ({})", cols.join(", ")),
            [],
        )
        .map_err(|e| db(path, e))?;
        let have = columns(&conn, "main").map_err(|e| db(path, e))?;
        let want = Store::column_names(fields);
        if have != want {
            return Err(SweepError::Db {
                path: path.to_string(),
                message: format!(
                    "its `points` table has the columns {have:?}, but this spec needs {want:?}; write to another file"
                ),
            });
        }
        Ok(Store {
            conn,
            fields: fields.to_vec(),
        })
    }

    /// The table's column names, in order.
    pub fn column_names(fields: &[String]) -> Vec<String> {
        let mut v = vec![
            "key".to_string(),
            "idx".into(),
            "model".into(),
            "passes".into(),
        ];
        v.extend(fields.iter().cloned());
        v.extend(FIGURES.iter().map(|s| s.to_string()));
        v
    }

    /// Whether a point is already in the file.
    pub fn has(&self, key: &str) -> Result<bool, rusqlite::Error> {
        self.conn
            .query_row("SELECT 1 FROM points WHERE key = ?1", [key], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
    }

    /// Inserts rows (each in column order) in one transaction.
    pub fn insert(&mut self, rows: &[Vec<rusqlite::types::Value>]) -> Result<(), rusqlite::Error> {
        let n = Store::column_names(&self.fields).len();
        let marks = vec!["?"; n].join(", ");
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare(&format!("INSERT OR IGNORE INTO points VALUES ({marks})"))?;
            for r in rows {
                st.execute(params_from_iter(r.iter()))?;
            }
        }
        tx.commit()
    }
}

/// The columns of `schema`'s `points` table.
pub fn columns(conn: &Connection, schema: &str) -> Result<Vec<String>, rusqlite::Error> {
    let mut st = conn.prepare(&format!("PRAGMA {}.table_info(points)", ident(schema)))?;
    let names = st.query_map([], |r| r.get::<_, String>(1))?;
    names.collect()
}

/// Joins result files into `out`: every row of each input whose key `out` lacks. The inputs must
/// come from the same spec (the same columns).
pub fn merge(out: &str, inputs: &[String]) -> Result<u64, SweepError> {
    let mut added = 0u64;
    let conn = Connection::open(out).map_err(|e| db(out, e))?;
    for (i, input) in inputs.iter().enumerate() {
        if !std::path::Path::new(input).is_file() {
            return Err(SweepError::Db {
                path: input.clone(),
                message: "no such results file".into(),
            });
        }
        let alias = format!("in{i}");
        conn.execute("ATTACH DATABASE ?1 AS ?2", [input.as_str(), alias.as_str()])
            .map_err(|e| db(input, e))?;
        let theirs = columns(&conn, &alias).map_err(|e| db(input, e))?;
        if theirs.is_empty() {
            return Err(SweepError::Db {
                path: input.clone(),
                message: "it has no `points` table (not an etch sweep result)".into(),
            });
        }
        let mine = columns(&conn, "main").map_err(|e| db(out, e))?;
        if mine.is_empty() {
            conn.execute(
                &format!(
                    "CREATE TABLE main.points AS SELECT * FROM {}.points WHERE 0",
                    ident(&alias)
                ),
                [],
            )
            .map_err(|e| db(out, e))?;
            conn.execute("CREATE UNIQUE INDEX main.points_key ON points(key)", [])
                .map_err(|e| db(out, e))?;
        } else if mine != theirs {
            return Err(SweepError::Db {
                path: input.clone(),
                message: format!(
                    "its columns {theirs:?} differ from {out}'s {mine:?}: the files come from different specs"
                ),
            });
        }
        added += conn
            .execute(
                &format!(
                    "INSERT OR IGNORE INTO main.points SELECT * FROM {}.points",
                    ident(&alias)
                ),
                [],
            )
            .map_err(|e| db(input, e))? as u64;
        conn.execute("DETACH DATABASE ?1", [alias.as_str()])
            .map_err(|e| db(input, e))?;
    }
    Ok(added)
}
