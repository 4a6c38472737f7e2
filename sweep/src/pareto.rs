//! The Pareto front of a results file: the points no other point beats on every objective named
//! (lower latency, energy, area, DRAM traffic, cycles; higher accuracy), among those that ran.

use rusqlite::Connection;
use serde_json::Value;

use crate::store::columns;
use crate::SweepError;

/// An objective: its name and the column it reads (every one is minimized but `accuracy`).
pub const OBJECTIVES: [(&str, &str); 6] = [
    ("latency", "latency_s"),
    ("energy", "energy_pj"),
    ("area", "area_mm2"),
    ("dram", "dram_bytes"),
    ("cycles", "total_cycles"),
    ("accuracy", "top1"),
];

/// The front: the objectives, the columns, and the non-dominated rows (every column, in the
/// table's order, as JSON), in the file's point order.
#[derive(Debug, Clone, PartialEq)]
pub struct Front {
    pub objectives: Vec<String>,
    pub columns: Vec<String>,
    pub points: Vec<Value>,
    /// Points that ran, of which these are the front.
    pub candidates: usize,
    /// Every candidate's objective values (as stored: accuracy not negated), and which
    /// candidates are on the front (for plots).
    pub values: Vec<Vec<f64>>,
    pub on_front: Vec<usize>,
}

/// Whether `a` dominates `b`: no worse on every objective, better on one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
}

/// The non-dominated points of `path` over `objectives` (names from `OBJECTIVES`).
pub fn front(path: &str, objectives: &[String]) -> Result<Front, SweepError> {
    let db = |message: String| SweepError::Db {
        path: path.to_string(),
        message,
    };
    if !std::path::Path::new(path).is_file() {
        return Err(db("no such results file".into()));
    }
    let mut cols_of = Vec::new();
    for o in objectives {
        match OBJECTIVES.iter().find(|(n, _)| n == o) {
            Some((_, c)) => cols_of.push(*c),
            None => {
                return Err(db(format!(
                    "unknown objective `{}`; choose from {}",
                    o.escape_debug(),
                    OBJECTIVES.map(|o| o.0).join(", ")
                )))
            }
        }
    }
    if cols_of.is_empty() {
        return Err(db("name at least one objective".into()));
    }
    let conn = Connection::open(path).map_err(|e| db(e.to_string()))?;
    let cols = columns(&conn, "main").map_err(|e| db(e.to_string()))?;
    if cols.is_empty() {
        return Err(db(
            "it has no `points` table (not an etch sweep result)".into()
        ));
    }
    let mut st = conn
        .prepare("SELECT * FROM points WHERE status = 'ok' ORDER BY idx")
        .map_err(|e| db(e.to_string()))?;
    let n = cols.len();
    let rows: Vec<Vec<rusqlite::types::Value>> = st
        .query_map([], |r| (0..n).map(|i| r.get(i)).collect())
        .map_err(|e| db(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| db(e.to_string()))?;
    let at: Vec<usize> = cols_of
        .iter()
        .map(|c| cols.iter().position(|x| x == c).expect("a figures column"))
        .collect();
    // accuracy is maximized: scored by its negation; a point without a figure is worst
    let sign: Vec<f64> = cols_of
        .iter()
        .map(|c| if *c == "top1" { -1.0 } else { 1.0 })
        .collect();
    let score = |r: &[rusqlite::types::Value]| -> Vec<f64> {
        at.iter()
            .zip(&sign)
            .map(|(&i, s)| match &r[i] {
                rusqlite::types::Value::Integer(v) => s * *v as f64,
                rusqlite::types::Value::Real(v) => s * *v,
                _ => f64::INFINITY,
            })
            .collect()
    };
    let scores: Vec<Vec<f64>> = rows.iter().map(|r| score(r)).collect();
    // in lexicographic order of the scores a point's dominators come before it, and whoever
    // dominates it, some point of the front does: one pass against the front so far
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        scores[a]
            .iter()
            .zip(&scores[b])
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut on_front: Vec<usize> = Vec::new();
    for i in order {
        if !on_front.iter().any(|&f| dominates(&scores[f], &scores[i])) {
            on_front.push(i);
        }
    }
    on_front.sort_unstable();
    let points = on_front
        .iter()
        .map(|&i| crate::row_json(&cols, &rows[i]))
        .collect();
    Ok(Front {
        objectives: objectives.to_vec(),
        columns: cols,
        points,
        candidates: rows.len(),
        values: scores
            .iter()
            .map(|s| s.iter().zip(&sign).map(|(v, g)| v * g).collect())
            .collect(),
        on_front,
    })
}
