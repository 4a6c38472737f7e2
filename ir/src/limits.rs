//! Resource limits: how much memory one tensor, one model and one input file may claim, checked
//! with overflow-free arithmetic *before* anything is allocated. Every crate asks this one module,
//! so a model, a description or a data file from someone else cannot make etch allocate (or read)
//! until the machine runs out of memory. The CLI raises every limit at once with `--max-bytes`.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes one tensor may take by default (an activation, a filled weight, a padded input): 1 GiB.
pub const DEFAULT_TENSOR_BYTES: u64 = 1 << 30;
/// Bytes a whole model may take by default (all filled weights together, simulator state): 2 GiB.
pub const DEFAULT_MODEL_BYTES: u64 = 2 << 30;
/// Bytes etch reads from a model file by default: 2 GiB.
pub const DEFAULT_MODEL_FILE_BYTES: u64 = 2 << 30;
/// Bytes etch reads from any other input file by default (RON, CSV, npy, SCALE-Sim files): 256 MiB.
pub const DEFAULT_DATA_FILE_BYTES: u64 = 256 << 20;
/// How deeply lists, subgraphs and other nested input may nest.
pub const MAX_NESTING: usize = 64;

/// The limits in force. All are in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes one tensor may take.
    pub tensor_bytes: u64,
    /// Most bytes a model's tensors may take together.
    pub model_bytes: u64,
    /// Most bytes read from a model file.
    pub model_file_bytes: u64,
    /// Most bytes read from any other input file.
    pub data_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tensor_bytes: DEFAULT_TENSOR_BYTES,
            model_bytes: DEFAULT_MODEL_BYTES,
            model_file_bytes: DEFAULT_MODEL_FILE_BYTES,
            data_file_bytes: DEFAULT_DATA_FILE_BYTES,
        }
    }
}

/// 0: the defaults; otherwise every limit is this many bytes.
static MAX_BYTES: AtomicU64 = AtomicU64::new(0);

/// Sets every limit of this process to `bytes` (`etch --max-bytes`); `None` restores the defaults.
pub fn set_max_bytes(bytes: Option<u64>) {
    MAX_BYTES.store(bytes.unwrap_or(0), Ordering::Relaxed);
}

impl Limits {
    /// The limits of this process: the defaults, or what `set_max_bytes` set.
    pub fn current() -> Limits {
        match MAX_BYTES.load(Ordering::Relaxed) {
            0 => Limits::default(),
            b => Limits {
                tensor_bytes: b,
                model_bytes: b,
                model_file_bytes: b,
                data_file_bytes: b,
            },
        }
    }

    /// Checks that `count` items of `item_bytes` each fit one tensor's limit; returns the bytes.
    /// `count` is `None` when computing it already overflowed.
    pub fn tensor(
        &self,
        what: &str,
        count: Option<u64>,
        item_bytes: u64,
    ) -> Result<u64, LimitError> {
        check(what, count, item_bytes, self.tensor_bytes, "one tensor")
    }

    /// Checks that `count` items of `item_bytes` each fit the whole model's limit.
    pub fn model(
        &self,
        what: &str,
        count: Option<u64>,
        item_bytes: u64,
    ) -> Result<u64, LimitError> {
        check(what, count, item_bytes, self.model_bytes, "one model")
    }
}

fn check(
    what: &str,
    count: Option<u64>,
    item_bytes: u64,
    limit: u64,
    scope: &'static str,
) -> Result<u64, LimitError> {
    let bytes = count.and_then(|c| c.checked_mul(item_bytes));
    match bytes {
        Some(b) if b <= limit => Ok(b),
        _ => Err(LimitError::TooLarge {
            what: what.to_string(),
            bytes,
            limit,
            scope,
        }),
    }
}

/// The product of some extents, or `None` when it overflows 64 bits (or an extent is negative).
pub fn product<I: IntoIterator<Item = i64>>(extents: I) -> Option<u64> {
    extents.into_iter().try_fold(1u64, |acc, d| {
        let d = u64::try_from(d).ok()?;
        acc.checked_mul(d)
    })
}

/// Checks, before an executor or simulator allocates anything, that every value of the main
/// graph whose shape is known fits one tensor's limit, and all of them together the model's limit
/// (a generous bound: an executor frees values, so it never holds all at once, but it cannot
/// need more). Elements count as 8 bytes (how executors hold integer values); symbolic dims as 1.
pub fn check_values(
    model: &crate::Model,
    info: &crate::infer::GraphInfo,
) -> Result<(), LimitError> {
    let limits = Limits::current();
    let g = &model.graph;
    let mut total: Option<u64> = Some(0);
    // the graph's inputs (weights given as inputs included) are values the executor holds too
    for input in &g.inputs {
        let Some(shape) = info.ty(&input.name).and_then(|t| t.shape.as_ref()) else {
            continue;
        };
        let count = product(shape.iter().map(|d| d.known().unwrap_or(1)));
        let bytes = limits.tensor(&format!("graph input `{}`", input.name), count, 8)?;
        total = total.and_then(|t| t.checked_add(bytes));
    }
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        for out in n.outputs.iter().filter(|o| !o.is_empty()) {
            let Some(shape) = info.ty(out).and_then(|t| t.shape.as_ref()) else {
                continue;
            };
            let count = product(shape.iter().map(|d| d.known().unwrap_or(1)));
            let what = format!(
                "output `{out}` of node `{}` ({})",
                n.display_name(),
                n.op_type
            );
            let bytes = limits.tensor(&what, count, 8)?;
            total = total.and_then(|t| t.checked_add(bytes));
        }
    }
    limits
        .model("the values of the model's nodes together", total, 1)
        .map(|_| ())
}

/// The product of unsigned extents, or `None` when it overflows 64 bits.
pub fn product_u64<I: IntoIterator<Item = u64>>(extents: I) -> Option<u64> {
    extents
        .into_iter()
        .try_fold(1u64, |acc, d| acc.checked_mul(d))
}

/// Something that would take more memory than a limit allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// `bytes` is `None` when the size does not even fit 64 bits.
    #[error("{what} would take {}, more than the {} etch allows for {scope}; check the shapes, or raise the limit with `--max-bytes`", show_bytes(*.bytes), show_bytes(Some(*.limit)))]
    TooLarge {
        what: String,
        bytes: Option<u64>,
        limit: u64,
        scope: &'static str,
    },
    /// Input nested deeper than etch follows.
    #[error("{what} nests more than {MAX_NESTING} levels deep")]
    TooDeep { what: String },
}

fn show_bytes(b: Option<u64>) -> String {
    match b {
        None => "more than 2^64 bytes".to_string(),
        Some(b) if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        Some(b) => format!("{b} bytes"),
    }
}

/// An input file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}` is not a regular file (a device, a pipe or a folder); give a file")]
    NotRegular { path: String },
    #[error("`{path}` is {}, more than the {} etch reads from such a file; raise the limit with `--max-bytes`", show_bytes(Some(*.size)), show_bytes(Some(*.limit)))]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("`{path}` is not UTF-8 text")]
    NotText { path: String },
}

/// Which limit a file read is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A model (ONNX text or protobuf).
    Model,
    /// Anything else: descriptions, CSV, npy, SCALE-Sim files, manifests.
    Data,
}

/// Reads an input file: refuses anything but a regular file, and more bytes than the limit for
/// its kind. The one way etch reads a file it is given.
pub fn read_file(path: impl AsRef<Path>, kind: FileKind) -> Result<Vec<u8>, FileError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io = |source| FileError::Io {
        path: name.clone(),
        source,
    };
    let limits = Limits::current();
    let limit = match kind {
        FileKind::Model => limits.model_file_bytes,
        FileKind::Data => limits.data_file_bytes,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular { path: name });
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            path: name,
            size: meta.len(),
            limit,
        });
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    // the file may grow while it is read: never take more than the limit
    file.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(io)?;
    if out.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: name,
            size: out.len() as u64,
            limit,
        });
    }
    Ok(out)
}

/// Reads an input file as UTF-8 text, under the same rules as `read_file`.
pub fn read_text(path: impl AsRef<Path>, kind: FileKind) -> Result<String, FileError> {
    let bytes = read_file(path.as_ref(), kind)?;
    String::from_utf8(bytes).map_err(|_| FileError::NotText {
        path: path.as_ref().display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_do_not_wrap() {
        assert_eq!(product([2, 3, 4]), Some(24));
        assert_eq!(product([1 << 40, 1 << 40]), None);
        assert_eq!(product([-1, 3]), None);
        assert_eq!(product_u64([u64::MAX, 2]), None);
    }

    #[test]
    fn device_files_are_refused() {
        if Path::new("/dev/zero").exists() {
            let e = read_file("/dev/zero", FileKind::Model).unwrap_err();
            assert!(matches!(e, FileError::NotRegular { .. }), "{e}");
        }
        let e = read_file("/", FileKind::Data).unwrap_err();
        assert!(
            matches!(e, FileError::NotRegular { .. } | FileError::Io { .. }),
            "{e}"
        );
    }

    #[test]
    fn limits_refuse_before_allocating() {
        let l = Limits::default();
        assert!(l.tensor("x", Some(1 << 40), 4).is_err());
        assert!(l.tensor("x", None, 4).is_err());
        assert_eq!(l.tensor("x", Some(10), 4), Ok(40));
        let msg = l.tensor("x", Some(1 << 40), 4).unwrap_err().to_string();
        assert!(msg.contains("--max-bytes"), "{msg}");
    }
}
