//! Shape-only weights. Model-zoo texts ship without their weights: either as initializers with no
//! values or as trailing graph inputs (the `weights_stripped_to_inputs` metadata key says how many).
//! etch treats both as weights, counts them, and fills them with seeded random values on request
//! so such a model can still be run and studied.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::graph::{Initializer, Model};
use crate::tensor::{Data, ElemType, Tensor, Type};

/// The metadata key torch-derived shape-only texts carry.
pub const STRIPPED_KEY: &str = "weights_stripped_to_inputs";

/// The seed `etch` uses when none is given, so results repeat run to run.
pub const DEFAULT_SEED: u64 = 0;

/// A shape-only weight that cannot be used or filled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightError {
    #[error("metadata `{STRIPPED_KEY}` is \"{0}\", which is not a count of graph inputs")]
    BadCount(String),
    #[error("metadata `{STRIPPED_KEY}` says the last {count} graph inputs are weights, but the graph has only {inputs} inputs")]
    TooMany { count: usize, inputs: usize },
    #[error("weight `{name}` has no tensor type with known dimensions, so etch cannot make values for it")]
    NoShape { name: String },
    #[error("weight `{name}` is {elem}; etch only invents values for float weights — give its values in the model")]
    NotFloat { name: String, elem: ElemType },
    #[error("weight `{name}`: {source}")]
    TooLarge {
        name: String,
        source: crate::limits::LimitError,
    },
    #[error("{0}")]
    TotalTooLarge(crate::limits::LimitError),
}

impl WeightError {
    /// The weight the error is about, if it is about one (the others are about the metadata key).
    pub fn weight(&self) -> Option<&str> {
        match self {
            WeightError::NoShape { name }
            | WeightError::NotFloat { name, .. }
            | WeightError::TooLarge { name, .. } => Some(name),
            WeightError::BadCount(_)
            | WeightError::TooMany { .. }
            | WeightError::TotalTooLarge(_) => None,
        }
    }
}

/// A weight whose values the model does not give.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeOnly {
    pub name: String,
    pub elem: ElemType,
    pub dims: Vec<i64>,
    /// Whether it is a graph input (named by the metadata key) rather than a value-less initializer.
    pub is_input: bool,
}

impl ShapeOnly {
    /// Element count, saturating (a declared shape may be absurd).
    pub fn numel(&self) -> u64 {
        self.dims
            .iter()
            .fold(1u64, |a, &d| a.saturating_mul(d.max(0) as u64))
    }

    /// Element count, `None` when it overflows.
    pub fn checked_numel(&self) -> Option<u64> {
        crate::limits::product(self.dims.iter().map(|&d| d.max(0)))
    }
}

/// The graph inputs named as weights by the metadata key, plus initializers declared without values.
pub fn shape_only_weights(model: &Model) -> Result<Vec<ShapeOnly>, WeightError> {
    let g = &model.graph;
    let mut out = Vec::new();
    if let Some(v) = model.metadata(STRIPPED_KEY) {
        let count: usize = v
            .trim()
            .parse()
            .map_err(|_| WeightError::BadCount(v.to_string()))?;
        if count > g.inputs.len() {
            return Err(WeightError::TooMany {
                count,
                inputs: g.inputs.len(),
            });
        }
        for vi in &g.inputs[g.inputs.len() - count..] {
            if g.initializer(&vi.name).is_some() {
                continue;
            }
            let tt = match &vi.ty {
                Some(Type::Tensor(tt)) => tt,
                _ => {
                    return Err(WeightError::NoShape {
                        name: vi.name.clone(),
                    })
                }
            };
            let dims = tt.known_dims().ok_or_else(|| WeightError::NoShape {
                name: vi.name.clone(),
            })?;
            out.push(ShapeOnly {
                name: vi.name.clone(),
                elem: tt.elem,
                dims,
                is_input: true,
            });
        }
    }
    for init in &g.initializers {
        let t = &init.tensor;
        if t.data.is_none() && t.external.is_none() {
            out.push(ShapeOnly {
                name: init.name.clone(),
                elem: t.elem,
                dims: t.dims.clone(),
                is_input: false,
            });
        }
    }
    Ok(out)
}

/// Fills every shape-only weight with seeded uniform values in ±1/√fan_in (PyTorch's default
/// initialisation for conv and linear layers), turns weight inputs into initializers, and drops the
/// metadata key. Returns what it filled, for the user to be told.
pub fn fill_shape_only(model: &mut Model, seed: u64) -> Result<Vec<ShapeOnly>, WeightError> {
    let todo = shape_only_weights(model)?;
    let limits = crate::limits::Limits::current();
    let mut total: Option<u64> = Some(0);
    for w in &todo {
        if !matches!(w.elem, ElemType::F32 | ElemType::F64) {
            return Err(WeightError::NotFloat {
                name: w.name.clone(),
                elem: w.elem,
            });
        }
        let elem_bytes = if w.elem == ElemType::F64 { 8 } else { 4 };
        let bytes = limits
            .tensor("its values", w.checked_numel(), elem_bytes)
            .map_err(|source| WeightError::TooLarge {
                name: w.name.clone(),
                source,
            })?;
        total = total.and_then(|t| t.checked_add(bytes));
    }
    // all filled weights together, not only each one
    limits
        .model(
            &format!("the values of {} shape-only weights", todo.len()),
            total,
            1,
        )
        .map_err(WeightError::TotalTooLarge)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = &mut model.graph;
    for w in &todo {
        let fan_in: i64 = if w.dims.len() >= 2 {
            w.dims[1..].iter().product()
        } else {
            w.dims.first().copied().unwrap_or(1)
        };
        let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
        let n = w.numel() as usize;
        let data = match w.elem {
            ElemType::F64 => Data::F64((0..n).map(|_| rng.random_range(-bound..bound)).collect()),
            _ => {
                let b = bound as f32;
                Data::F32((0..n).map(|_| rng.random_range(-b..b)).collect())
            }
        };
        let tensor = Tensor {
            elem: w.elem,
            dims: w.dims.clone(),
            data: Some(data),
            external: None,
        };
        if w.is_input {
            let pos = g.inputs.iter().position(|vi| vi.name == w.name);
            let span = pos.map(|p| g.inputs.remove(p).span).unwrap_or_default();
            g.initializers.push(Initializer {
                name: w.name.clone(),
                tensor,
                span,
            });
        } else if let Some(init) = g.initializers.iter_mut().find(|i| i.name == w.name) {
            init.tensor = tensor;
        }
    }
    model.metadata_props.retain(|(k, _)| k != STRIPPED_KEY);
    Ok(todo)
}
