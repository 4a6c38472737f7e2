//! The grammar of the ONNX text syntax (onnx 1.23's `parse_model`), on top of `lex`.

use nom::Err as NomErr;

use super::lex::*;
use crate::graph::*;
use crate::tensor::*;

/// What every parser needs besides its input: where the source starts, to turn positions into spans.
pub struct Cx<'s> {
    pub src: &'s [u8],
    /// Byte offsets at which each line starts.
    pub line_starts: Vec<usize>,
}

impl<'s> Cx<'s> {
    /// Indexes the line starts of `src` once, so spans get line and column cheaply.
    pub fn new(src: &'s [u8]) -> Cx<'s> {
        let mut line_starts = vec![0];
        line_starts.extend(memchr::memchr_iter(b'\n', src).map(|n| n + 1));
        Cx { src, line_starts }
    }

    /// The byte offset of a position given as the remaining input.
    pub fn offset(&self, rest: In<'_>) -> usize {
        self.src.len() - rest.len()
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset);
        (line, offset - self.line_starts[line - 1] + 1)
    }

    /// The span from `start` (remaining input at the start) to `end` (remaining input after).
    pub fn span(&self, start: In<'_>, end: In<'_>) -> Span {
        let start = ws(start);
        let offset = self.offset(start);
        let len = start.len().saturating_sub(end.len());
        let (line, column) = self.line_col(offset);
        Span {
            offset,
            len,
            line,
            column,
        }
    }
}

type R<'a, T> = PResult<'a, T>;

/// How deeply types and subgraphs may nest (the limit keeps hostile input from overflowing the
/// stack): the one nesting limit of `crate::limits`.
pub use crate::limits::MAX_NESTING;

thread_local! {
    static NESTING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one level of nesting while alive; fails past `MAX_NESTING`.
struct Nested;

impl Nested {
    fn enter(at: In<'_>) -> Result<Nested, NomErr<PErr>> {
        let depth = NESTING.with(|n| {
            n.set(n.get() + 1);
            n.get()
        });
        let guard = Nested;
        if depth > MAX_NESTING {
            return fail(ws(at), format!("types and subgraphs nest more than {MAX_NESTING} levels deep here; etch stops there"));
        }
        Ok(guard)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        NESTING.with(|n| n.set(n.get() - 1));
    }
}

/// model = [model_header] graph {function}
pub fn model<'a>(cx: &Cx, i: In<'a>) -> R<'a, Model> {
    let mut m = Model::default();
    let mut i = i;
    if peek(i) == Some(b'<') {
        i = model_header(i, &mut m)?.0;
    }
    if !at_qid(i) {
        let at = ws(i);
        return fail(at, format!("expected the graph's name (for example `main_graph (float[1,3] x) => (float[1,3] y) {{ … }}`), found {}", found(at)));
    }
    let (rest, g) = graph(cx, i)?;
    m.graph = g;
    i = rest;
    while !at_end(i) {
        let (rest, f) = function(cx, i)?;
        m.functions.push(f);
        i = rest;
    }
    Ok((ws(i), m))
}

/// A comma-separated list between `open` and `close`, each item read by `item`; an empty list is allowed.
fn list<'a, T>(
    i: In<'a>,
    open: u8,
    close: u8,
    what: &str,
    mut item: impl FnMut(In<'a>) -> R<'a, T>,
) -> R<'a, Vec<T>> {
    let (mut i, ()) = expect(open, &format!("to open {what}"))(i)?;
    let mut items = Vec::new();
    if let Some(rest) = eat(close, i) {
        return Ok((rest, items));
    }
    loop {
        let (rest, v) = item(i)?;
        items.push(v);
        i = ws(rest);
        match i.first() {
            Some(b',') if peek(&i[1..]) == Some(close) => {
                return fail(
                    i,
                    format!("trailing `,` in {what}: remove it, or add the missing item after it"),
                );
            }
            Some(b',') => i = &i[1..],
            Some(&c) if c == close => return Ok((&i[1..], items)),
            _ => {
                return fail(
                    i,
                    format!(
                        "expected `,` or `{}` in {what}, found {}",
                        close as char,
                        found(i)
                    ),
                );
            }
        }
    }
}

const MODEL_KEYS: &str =
    "ir_version, opset_import, producer_name, producer_version, domain, model_version, doc_string, metadata_props";

fn model_header<'a>(i: In<'a>, m: &mut Model) -> R<'a, ()> {
    let (i, _) = list(i, b'<', b'>', "the model header", |i| {
        let at = ws(i);
        let (i, key) = id_for(i, &format!("a model header key ({MODEL_KEYS})"))?;
        let (i, ()) = expect(b':', &format!("after `{key}`"))(i)?;
        match key {
            "ir_version" => {
                let (i, v) = int64(i, "the IR version")?;
                m.ir_version = v;
                Ok((i, ()))
            }
            "model_version" => {
                let (i, v) = int64(i, "the model version")?;
                m.model_version = Some(v);
                Ok((i, ()))
            }
            "opset_import" => {
                let (i, v) = opset_list(i)?;
                m.opset_import = v;
                Ok((i, ()))
            }
            "producer_name" | "producer_version" | "domain" | "doc_string" => {
                let (i, v) = string_for(i, &format!("`{key}`"))?;
                let slot = match key {
                    "producer_name" => &mut m.producer_name,
                    "producer_version" => &mut m.producer_version,
                    "domain" => &mut m.domain,
                    _ => &mut m.doc_string,
                };
                *slot = Some(v);
                Ok((i, ()))
            }
            "metadata_props" => {
                let (i, v) = str_pairs(i, "metadata_props")?;
                m.metadata_props = v;
                Ok((i, ()))
            }
            _ => fail_len(
                at,
                key.len(),
                format!("unknown model header key `{key}`; the keys are {MODEL_KEYS}"),
            ),
        }
    })?;
    Ok((i, ()))
}

fn string_for<'a>(i: In<'a>, what: &str) -> R<'a, String> {
    match string(i) {
        Err(NomErr::Error(_)) => {
            let at = ws(i);
            fail(
                at,
                format!("expected a quoted string for {what}, found {}", found(at)),
            )
        }
        r => r,
    }
}

fn opset_list(i: In<'_>) -> R<'_, Vec<(String, i64)>> {
    list(i, b'[', b']', "the opset list", |i| {
        let (i, dom) = string_for(
            i,
            "the opset domain (`\"\"` for the default domain, as in `[\"\" : 17]`)",
        )?;
        let (i, ()) = expect(b':', "between an opset domain and its version")(i)?;
        let (i, v) = int64(i, "the opset version")?;
        Ok((i, (dom, v)))
    })
}

fn str_pairs<'a>(i: In<'a>, what: &str) -> R<'a, Vec<(String, String)>> {
    list(i, b'[', b']', what, |i| {
        let (i, k) = string_for(i, &format!("a key in {what}"))?;
        let (i, ()) = expect(b':', "between a key and its value")(i)?;
        let (i, v) = string_for(i, &format!("a value in {what}"))?;
        Ok((i, (k, v)))
    })
}

/// graph = QID [graph_inputs] '=>' graph_outputs [graph_decls] node_block
pub fn graph<'a>(cx: &Cx, i: In<'a>) -> R<'a, Graph> {
    let _depth = Nested::enter(i)?;
    let mut g = Graph::default();
    let (mut i, name) = qid_for(i, "the graph's name")?;
    g.name = name;
    if peek(i) == Some(b'(') {
        let (rest, inputs) = list(i, b'(', b')', "the graph inputs", |i| decl(cx, i, b')'))?;
        for (vi, data) in inputs {
            if let Some(t) = data {
                g.initializers.push(initializer(&vi, t)?);
            }
            g.inputs.push(vi);
        }
        i = rest;
    }
    let at = ws(i);
    if !at.starts_with(b"=>") {
        if at.first() == Some(&b'=') && peek(&at[1..]) == Some(b'>') {
            let len = at.len() - ws(&at[1..]).len() + 1;
            return fail_len(
                at,
                len,
                "`=>` must be written without a space between `=` and `>`",
            );
        }
        return fail(
            at,
            format!(
                "expected `=>` between the graph's inputs and outputs, found {}",
                found(at)
            ),
        );
    }
    i = &at[2..];
    let (rest, outputs) = list(i, b'(', b')', "the graph outputs", |i| value_info(cx, i))?;
    g.outputs = outputs;
    i = rest;
    if peek(i) == Some(b'<') {
        let (rest, decls) = list(i, b'<', b'>', "the initializer and value_info list", |i| {
            decl(cx, i, b'>')
        })?;
        for (vi, data) in decls {
            match data {
                Some(t) => g.initializers.push(initializer(&vi, t)?),
                None => g.value_info.push(vi),
            }
        }
        i = rest;
    }
    let (i, nodes) = node_block(cx, i)?;
    for n in nodes {
        g.nodes.add_node(n);
    }
    g.rebuild_edges();
    Ok((i, g))
}

/// Turns a declaration with `= data` into an initializer, checking its type can carry values.
fn initializer(vi: &ValueInfo, data: TensorBody) -> Result<Initializer, NomErr<PErr>> {
    let Some(Type::Tensor(tt)) = &vi.ty else {
        return span_fail(
            vi.span,
            format!(
                "initializer `{}` needs a tensor type, such as `float[2,3] {} = {{…}}`",
                vi.name, vi.name
            ),
        );
    };
    let tensor = make_tensor(tt, data, vi.span)?;
    Ok(Initializer {
        name: vi.name.clone(),
        tensor,
        span: vi.span,
    })
}

/// An error located by a span that was recorded earlier (after the parser has moved on).
fn span_fail<T>(span: Span, message: String) -> Result<T, NomErr<PErr>> {
    Err(NomErr::Failure(PErr {
        remaining: 0,
        offset: Some(span.offset),
        len: span.len.max(1),
        message,
    }))
}

/// Values of a tensor as read, before the type says where they go.
pub enum TensorBody {
    Values(Vec<Literal>, Option<Data>),
    External(Vec<(String, String)>),
    Empty,
}

/// One literal of a tensor's value list, for the types that are not read straight into a vector,
/// with where it is (as the input remaining at it, and its length) for errors about its value.
pub enum Literal {
    Num(Vec<u8>, NumKind, usize),
    Str(String, usize, usize),
}

/// An error at a literal recorded earlier, given as the input remaining at it.
fn literal_fail<T>(remaining: usize, len: usize, message: String) -> Result<T, NomErr<PErr>> {
    Err(NomErr::Failure(PErr {
        remaining,
        offset: None,
        len: len.max(1),
        message,
    }))
}

/// Builds a tensor from its declared type and the values read for it.
fn make_tensor(tt: &TensorType, body: TensorBody, span: Span) -> Result<Tensor, NomErr<PErr>> {
    let mut dims = Vec::new();
    for d in tt.shape.iter().flatten() {
        match d {
            Dim::Known(v) if *v >= 0 => dims.push(*v),
            Dim::Known(v) => {
                return span_fail(
                    span,
                    format!("a tensor dimension must not be negative, but this one is {v}"),
                )
            }
            _ => {
                return span_fail(
                    span,
                    format!("a tensor with values needs numeric dimensions, but `{d}` is symbolic"),
                )
            }
        }
    }
    if tt.shape.is_none() {
        return span_fail(
            span,
            "a tensor with values needs a shape: write `float[2]`, or `float` for a scalar".into(),
        );
    }
    let mut t = Tensor {
        elem: tt.elem,
        dims,
        data: None,
        external: None,
    };
    let numel = t
        .dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let Some(numel) = numel else {
        return span_fail(
            span,
            "this tensor's dimensions multiply to more than 2^64 elements".into(),
        );
    };
    match body {
        TensorBody::Empty => {}
        TensorBody::External(kv) => t.external = Some(kv),
        TensorBody::Values(lits, data) => {
            let data = match data {
                Some(d) => d,
                None => literals_to_data(tt.elem, lits)?,
            };
            if data.len() as u64 != numel {
                return span_fail(
                    span,
                    format!(
                        "this {} tensor has {} values, but its shape [{}] holds {numel}",
                        tt.elem,
                        data.len(),
                        join_dims(&t.dims)
                    ),
                );
            }
            t.data = Some(data);
        }
    }
    Ok(t)
}

fn join_dims(d: &[i64]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn literals_to_data(elem: ElemType, lits: Vec<Literal>) -> Result<Data, NomErr<PErr>> {
    let storage = elem.storage();
    let mut data = Data::empty(storage);
    let (lo, hi) = elem.int_range();
    for lit in lits {
        match (lit, &mut data) {
            (Literal::Str(s, ..), Data::Str(v)) => v.push(s),
            (Literal::Str(_, at, len), _) => {
                return literal_fail(at, len, format!("{elem} tensors take numbers, not strings"))
            }
            (Literal::Num(tok, _, at), Data::Str(_)) => {
                return literal_fail(
                    at,
                    tok.len(),
                    "string tensors take quoted strings, not numbers".into(),
                );
            }
            (Literal::Num(tok, ..), Data::F32(v)) => v.push(to_f32(&tok)),
            (Literal::Num(tok, ..), Data::F64(v)) => v.push(to_f64(&tok)),
            (Literal::Num(tok, NumKind::Float, at), _) => {
                let tok_s = String::from_utf8_lossy(&tok);
                let message = match elem {
                    ElemType::F16 | ElemType::BF16 => format!(
                        "{elem} values are written as their 16-bit patterns (integers, e.g. `{}` for 1.0), not as `{tok_s}`",
                        if elem == ElemType::F16 { 15360 } else { 16256 }
                    ),
                    _ => format!("{elem} tensors take integers, not `{tok_s}`"),
                };
                return literal_fail(at, tok.len(), message);
            }
            (Literal::Num(tok, NumKind::Int, at), d) => {
                let v = to_int(&tok).filter(|v| *v >= lo && *v <= hi);
                let Some(v) = v else {
                    return literal_fail(
                        at,
                        tok.len(),
                        format!(
                            "value `{}` is out of range for {elem} ({lo}..={hi})",
                            String::from_utf8_lossy(&tok)
                        ),
                    );
                };
                match d {
                    Data::I64(x) => x.push(v as i64),
                    Data::U64(x) => x.push(v as u64),
                    Data::I32(x) => x.push(v as i32),
                    Data::I16(x) => x.push(v as i16),
                    Data::U16(x) => x.push(v as u16),
                    Data::I8(x) => x.push(v as i8),
                    Data::U8(x) => x.push(v as u8),
                    _ => {}
                }
            }
        }
    }
    Ok(data)
}

/// tensor_data = '{' literals '}' | '[' str_pairs ']' | nothing. Float types are read straight into
/// a vector (the hot path: real models put all their weights here).
fn tensor_body<'a>(i: In<'a>, elem: Option<ElemType>) -> R<'a, TensorBody> {
    match peek(i) {
        Some(b'{') => {
            let i = &ws(i)[1..];
            match elem.map(ElemType::storage) {
                Some(Storage::F32) => {
                    let (i, v) = float_values(i, to_f32)?;
                    Ok((i, TensorBody::Values(Vec::new(), Some(Data::F32(v)))))
                }
                Some(Storage::F64) => {
                    let (i, v) = float_values(i, to_f64)?;
                    Ok((i, TensorBody::Values(Vec::new(), Some(Data::F64(v)))))
                }
                _ => {
                    let (i, lits) = literal_values(i)?;
                    Ok((i, TensorBody::Values(lits, None)))
                }
            }
        }
        Some(b'[') => {
            let (i, kv) = str_pairs(i, "the external data description")?;
            Ok((i, TensorBody::External(kv)))
        }
        _ => Ok((i, TensorBody::Empty)),
    }
}

fn float_values<T>(mut i: In<'_>, convert: fn(&[u8]) -> T) -> R<'_, Vec<T>> {
    let mut v = Vec::new();
    if let Some(rest) = eat(b'}', i) {
        return Ok((rest, v));
    }
    loop {
        let (rest, (tok, _)) = match number(i) {
            Err(NomErr::Error(_)) => {
                let at = ws(i);
                return fail(
                    at,
                    format!(
                        "expected a number in the tensor's values, found {}",
                        found(at)
                    ),
                );
            }
            r => r?,
        };
        v.push(convert(tok));
        i = rest;
        // fast path: values are usually packed as `1,2,3` with no whitespace
        match i.first() {
            Some(b',') => i = &i[1..],
            Some(b'}') => return Ok((&i[1..], v)),
            _ => {
                let at = ws(i);
                match at.first() {
                    Some(b',') => i = &at[1..],
                    Some(b'}') => return Ok((&at[1..], v)),
                    _ => {
                        return fail(
                            at,
                            format!(
                                "expected `,` or `}}` in the tensor's values, found {}",
                                found(at)
                            ),
                        )
                    }
                }
            }
        }
    }
}

fn literal_values(i: In<'_>) -> R<'_, Vec<Literal>> {
    let mut lits = Vec::new();
    let mut i = i;
    if let Some(rest) = eat(b'}', i) {
        return Ok((rest, lits));
    }
    loop {
        let at = ws(i);
        if at.first() == Some(&b'"') {
            let (rest, s) = string(at)?;
            lits.push(Literal::Str(s, at.len(), at.len() - rest.len()));
            i = rest;
        } else {
            let (rest, (tok, kind)) = match number(at) {
                Err(NomErr::Error(_)) => {
                    return fail(
                        at,
                        format!(
                            "expected a value in the tensor's values, found {}",
                            found(at)
                        ),
                    )
                }
                r => r?,
            };
            lits.push(Literal::Num(tok.to_vec(), kind, at.len()));
            i = rest;
        }
        let at = ws(i);
        match at.first() {
            Some(b',') => i = &at[1..],
            Some(b'}') => return Ok((&at[1..], lits)),
            _ => {
                return fail(
                    at,
                    format!(
                        "expected `,` or `}}` in the tensor's values, found {}",
                        found(at)
                    ),
                )
            }
        }
    }
}

/// A declaration: `[type] name [= data]`, in a list that `close` ends.
fn decl<'a>(cx: &Cx, i: In<'a>, close: u8) -> R<'a, (ValueInfo, Option<TensorBody>)> {
    let (i, vi) = value_info(cx, i)?;
    // In `( )` a `=>` here means a missing `)`; in `< >` it is `=` (no data) and the closing `>`.
    if close == b')' && ws(i).starts_with(b"=>") {
        return fail_len(
            ws(i),
            2,
            "expected `)` to close the graph's inputs before `=>`, found `=>`",
        );
    }
    if let Some(rest) = eat(b'=', i) {
        let elem = vi.ty.as_ref().and_then(Type::as_tensor).map(|t| t.elem);
        let (rest, body) = tensor_body(rest, elem)?;
        return Ok((rest, (vi, Some(body))));
    }
    Ok((i, (vi, None)))
}

/// value_info = [type] QID
fn value_info<'a>(cx: &Cx, i: In<'a>) -> R<'a, ValueInfo> {
    let start = i;
    let (i, ty) = if at_type(i) {
        let (i, t) = ty(i)?;
        (i, Some(t))
    } else {
        (i, None)
    };
    let (i, name) = qid_for(
        i,
        if ty.is_some() {
            "a value name after its type"
        } else {
            "a value name or a type"
        },
    )?;
    if ty.is_none() && peek(i) == Some(b'[') && !ws(start).starts_with(b"\"") {
        return fail_len(ws(start), name.len(), format!("`{name}` is not a type; element types are float, double, float16, int64, int32, int8, uint8, bool, string, …"));
    }
    Ok((
        i,
        ValueInfo {
            name,
            ty,
            span: cx.span(start, i),
        },
    ))
}

const TYPE_WORDS: [&str; 5] = ["seq", "map", "optional", "sparse_tensor", "opaque"];

/// Whether the next token is a type keyword (Q7: such a name is always read as a type).
fn at_type(i: In<'_>) -> bool {
    match id(i) {
        Ok((_, w)) => ElemType::from_keyword(w).is_some() || TYPE_WORDS.contains(&w),
        Err(_) => false,
    }
}

/// type = tensor_type | seq(type) | map(prim, type) | optional(type) | sparse_tensor(tensor_type) | opaque(...)
pub fn ty(i: In<'_>) -> R<'_, Type> {
    let _depth = Nested::enter(i)?;
    let at = ws(i);
    let (i, word) = id_for(i, "a type")?;
    let inner = |i| -> R<'_, Type> {
        let (i, ()) = expect(b'(', &format!("after `{word}`"))(i)?;
        let (i, t) = ty(i)?;
        let (i, ()) = expect(b')', &format!("to close `{word}(`"))(i)?;
        Ok((i, t))
    };
    match word {
        "seq" => inner(i).map(|(i, t)| (i, Type::Seq(Box::new(t)))),
        "optional" => inner(i).map(|(i, t)| (i, Type::Optional(Box::new(t)))),
        "sparse_tensor" => match inner(i)? {
            (i, Type::Tensor(t)) => Ok((i, Type::SparseTensor(t))),
            _ => fail(at, "sparse_tensor( ) takes a tensor type"),
        },
        "map" => {
            let (i, ()) = expect(b'(', "after `map`")(i)?;
            let kat = ws(i);
            let (i, k) = id_for(i, "the map's key type")?;
            let Some(k) = ElemType::from_keyword(k) else {
                return fail_len(kat, k.len(), format!("`{k}` is not an element type"));
            };
            let (i, ()) = expect(b',', "after the map's key type")(i)?;
            let (i, v) = ty(i)?;
            let (i, ()) = expect(b')', "to close `map(`")(i)?;
            Ok((i, Type::Map(k, Box::new(v))))
        }
        "opaque" => {
            let (mut i, ()) = expect(b'(', "after `opaque`")(i)?;
            let mut parts = Vec::new();
            if let Some(rest) = eat(b')', i) {
                return Ok((
                    rest,
                    Type::Opaque {
                        domain: String::new(),
                        name: String::new(),
                    },
                ));
            }
            loop {
                let (rest, w) = id_for(i, "an opaque type's name")?;
                parts.push(w.to_string());
                i = rest;
                if let Some(rest) = eat(b'.', i) {
                    parts.push(".".into());
                    i = rest;
                } else if let Some(rest) = eat(b',', i) {
                    parts.push(",".into());
                    i = rest;
                } else {
                    break;
                }
            }
            let (i, ()) = expect(b')', "to close `opaque(`")(i)?;
            let joined = parts.concat();
            let (domain, name) = match joined.split_once(',') {
                Some((d, n)) => (d.to_string(), n.to_string()),
                None => (String::new(), joined),
            };
            Ok((i, Type::Opaque { domain, name }))
        }
        w => {
            let Some(elem) = ElemType::from_keyword(w) else {
                return fail_len(at, w.len(), format!("`{w}` is not a type; element types are float, int64, uint8, … and the others are seq(…), map(…), optional(…)"));
            };
            let (i, shape) = shape(i)?;
            Ok((i, Type::Tensor(TensorType { elem, shape })))
        }
    }
}

/// `[d, d, …]` after an element type: none = scalar, `[]` = unknown rank.
fn shape(i: In<'_>) -> R<'_, Option<Vec<Dim>>> {
    if peek(i) != Some(b'[') {
        return Ok((i, Some(Vec::new())));
    }
    let (i, dims) = list(i, b'[', b']', "the shape", |i| {
        let at = ws(i);
        match at.first() {
            Some(b'?') => Ok((&at[1..], Dim::Unknown)),
            Some(b'"') => string(at).map(|(i, s)| (i, Dim::Param(s))),
            Some(b) if b.is_ascii_digit() || *b == b'-' => {
                let (i, v) = int64(at, "a dimension")?;
                if v < 0 {
                    return fail_len(
                        at,
                        at.len() - i.len(),
                        format!(
                            "dimension {v} is negative; a dimension is a size ≥ 0, a name, or `?`"
                        ),
                    );
                }
                Ok((i, Dim::Known(v)))
            }
            _ => match id(at) {
                Ok((i, w)) => Ok((i, Dim::Param(w.to_string()))),
                Err(_) => fail(
                    at,
                    format!(
                        "expected a dimension (a number, a name or `?`), found {}",
                        found(at)
                    ),
                ),
            },
        }
    })?;
    // `float[]` is ONNX's unknown rank.
    Ok((i, if dims.is_empty() { None } else { Some(dims) }))
}

/// node_block = '{' {node} '}'
fn node_block<'a>(cx: &Cx, i: In<'a>) -> R<'a, Vec<Node>> {
    let open = ws(i);
    let (mut i, ()) = expect(b'{', "to open the node list")(open)?;
    let mut nodes = Vec::new();
    loop {
        let at = ws(i);
        match at.first() {
            Some(b'}') => return Ok((&at[1..], nodes)),
            None => {
                return fail_len(
                    open,
                    1,
                    "this node list is never closed: add a `}` after its last node",
                )
            }
            Some(b';') => return fail_len(at, 1, "nodes are not separated by `;`: remove it"),
            _ => {
                let (rest, n) = node(cx, at)?;
                nodes.push(n);
                i = rest;
            }
        }
    }
}

/// A comma-separated list of names where an item may be empty (an omitted optional value).
/// As in onnx, an item is a name, a quoted name (`""` included), or nothing before a `,`; nothing
/// before the end of the list is no item. So `()` is empty, `(,x)` and `("", x)` have two items,
/// `(x,)` has one, and `(,)` and `("")` have one empty item.
fn id_list<'a>(i: In<'a>, what: &str) -> R<'a, Vec<String>> {
    let mut items = Vec::new();
    let mut i = i;
    loop {
        if at_qid(i) {
            let (rest, n) = qid(i)?;
            items.push(n);
            i = rest;
        } else if peek(i) == Some(b',') {
            items.push(String::new());
        } else {
            break;
        }
        match eat(b',', i) {
            Some(rest) => i = rest,
            None => break,
        }
    }
    let _ = what;
    Ok((i, items))
}

/// node = ['[' name ']'] outputs '=' op [':' overload] (attrs '(' inputs ')' | '(' inputs ')' [attrs])
fn node<'a>(cx: &Cx, i: In<'a>) -> R<'a, Node> {
    let start = ws(i);
    let mut i = start;
    let mut label = None;
    if let Some(rest) = eat(b'[', i) {
        let (rest, name) = if at_qid(rest) {
            let (r, n) = qid(rest)?;
            (r, Some(n))
        } else {
            (rest, None)
        };
        let (rest, ()) = expect(b']', "to close the node's label")(rest)?;
        label = name;
        i = rest;
    }
    let out_at = ws(i);
    let (i, outputs) = id_list(i, "the node's outputs")?;
    let at = ws(i);
    if at.first() != Some(&b'=') {
        if let Some(e) = unquoted_name(at) {
            return e;
        }
        let what = if outputs.is_empty() && label.is_none() {
            "a node (`outputs = Op (inputs)`) or `}` to close the node list"
        } else {
            "`=` after the node's outputs"
        };
        return fail(
            if outputs.is_empty() { out_at } else { at },
            format!("expected {what}, found {}", found(at)),
        );
    }
    let i = &at[1..];
    let op_at = ws(i);
    let (mut i, first) = id_for(i, "an op name after `=`")?;
    let mut parts = vec![first];
    while let Some(rest) = eat(b'.', i) {
        let (rest, w) = id_for(rest, "an op name after `.`")?;
        parts.push(w);
        i = rest;
    }
    let op_type = parts.pop().unwrap_or_default().to_string();
    let domain = parts.join(".");
    let mut overload = None;
    if let Some(rest) = eat(b':', i) {
        let (rest, w) = id_for(rest, "an overload name after `:`")?;
        overload = Some(w.to_string());
        i = rest;
    }
    let mut attrs = Vec::new();
    let mut attr_spans = Vec::new();
    if peek(i) == Some(b'<') {
        let (rest, a) = attr_list(cx, i)?;
        (attr_spans, attrs) = a.into_iter().unzip();
        i = rest;
    }
    let (rest, ()) = expect(b'(', &format!("to open the inputs of `{op_type}`"))(i)?;
    let (rest, inputs) = id_list(rest, "the node's inputs")?;
    if peek(rest) != Some(b')') {
        if let Some(e) = unquoted_name(rest) {
            return e;
        }
    }
    let (mut i, ()) = expect(b')', &format!("to close the inputs of `{op_type}`"))(rest)?;
    if peek(i) == Some(b'<') {
        if !attrs.is_empty() {
            return fail(
                ws(i),
                "a node's attributes go either before or after its inputs, not both",
            );
        }
        let (rest, a) = attr_list(cx, i)?;
        (attr_spans, attrs) = a.into_iter().unzip();
        i = rest;
    }
    let span = cx.span(start, i);
    let op = match crate::op::Op::from_parts(&domain, &op_type, &attrs) {
        Ok(op) => op,
        Err(e) => {
            // point at the attribute at fault, or at the op when one is missing
            let at = attrs
                .iter()
                .position(|a| a.name == e.attr)
                .map_or_else(|| cx.span(op_at, i), |k| attr_spans[k]);
            return span_fail(at, e.to_string());
        }
    };
    Ok((
        i,
        Node {
            name: label,
            domain,
            op_type,
            overload,
            inputs,
            outputs,
            attrs,
            op,
            span,
        },
    ))
}

/// attr_list = '<' attr {',' attr} '>': at least one attribute. Each comes with its span, so an
/// error about one attribute can point at it.
fn attr_list<'a>(cx: &Cx, i: In<'a>) -> R<'a, Vec<(Span, Attribute)>> {
    let at = ws(i);
    if at.first() == Some(&b'<') && peek(&at[1..]) == Some(b'>') {
        let len = at.len() - ws(&at[1..]).len() + 1;
        return fail_len(at, len, "an attribute list `<>` must not be empty: remove it, or add an attribute such as `<axis: int = 1>`");
    }
    list(i, b'<', b'>', "the attribute list", |i| {
        let (rest, a) = attribute(cx, i)?;
        Ok((rest, (cx.span(i, rest), a)))
    })
}

/// attr = ID [':' attr_type] '=' value
fn attribute<'a>(cx: &Cx, i: In<'a>) -> R<'a, Attribute> {
    let (i, name) = id_for(i, "an attribute name")?;
    attribute_named(cx, i, name.to_string())
}

/// One element of an attribute value before typing.
enum Single {
    Num(Vec<u8>, NumKind),
    Str(String),
    Ref(String),
    Tensor(Tensor, Option<String>),
    Type(Type),
    Graph(Graph),
}

impl Single {
    fn kind(&self) -> &'static str {
        match self {
            Single::Num(_, NumKind::Int) => "int",
            Single::Num(_, NumKind::Float) => "float",
            Single::Str(_) => "string",
            Single::Ref(_) => "reference",
            Single::Tensor(..) => "tensor",
            Single::Type(_) => "type_proto",
            Single::Graph(_) => "graph",
        }
    }
}

fn single<'a>(cx: &Cx, i: In<'a>) -> R<'a, Single> {
    let at = ws(i);
    match at.first() {
        Some(b'"') => string(at).map(|(i, s)| (i, Single::Str(s))),
        Some(b'@') => qid_for(&at[1..], "a function attribute name after `@`")
            .map(|(i, s)| (i, Single::Ref(s))),
        _ if at_number(at) => number(at).map(|(i, (t, k))| (i, Single::Num(t.to_vec(), k))),
        _ if at_type(at) => {
            let (i, t) = ty(at)?;
            // a type followed by `{`, `=`, `[` or a bare name is a tensor; otherwise a type_proto
            let mut j = i;
            let mut tname = None;
            if at_qid(j) && !at_type(j) {
                let (rest, n) = qid(j)?;
                tname = Some(n);
                j = rest;
            }
            let had_eq = eat(b'=', j);
            if let Some(rest) = had_eq {
                j = rest;
            }
            if tname.is_some() || had_eq.is_some() || matches!(peek(j), Some(b'{')) {
                let Type::Tensor(tt) = &t else {
                    return fail(at, "only a tensor type can be followed by values");
                };
                let (rest, body) = tensor_body(j, Some(tt.elem))?;
                let tensor = make_tensor(tt, body, cx.span(at, rest))?;
                Ok((rest, Single::Tensor(tensor, tname)))
            } else {
                Ok((i, Single::Type(t)))
            }
        }
        _ if at_qid(at) => {
            // a graph is `name (inputs) => …` or `name => …`; any other bare word is a missing quote
            let (rest, w) = qid(at)?;
            let next = ws(rest);
            if at.first() != Some(&b'"') && next.first() != Some(&b'(') && !next.starts_with(b"=>")
            {
                return fail_len(at, w.len(), format!("expected an attribute value, found the bare word `{w}`: a string value is quoted, as in `\"{w}\"`"));
            }
            graph(cx, at).map(|(i, g)| (i, Single::Graph(g)))
        }
        _ => fail(
            at,
            format!("expected an attribute value, found {}", found(at)),
        ),
    }
}

fn attr_value<'a>(cx: &Cx, i: In<'a>, name: &str, annot: Option<AttrType>) -> R<'a, AttrValue> {
    let at = ws(i);
    let mismatch = |found_kind: &str, want: AttrType| -> Result<AttrValue, NomErr<PErr>> {
        fail(
            at,
            format!(
                "attribute `{name}` is declared `{}` but its value is {}",
                want.keyword(),
                with_article(found_kind)
            ),
        )
    };
    if at.first() == Some(&b'[') {
        // each element with where it starts, so an element of the wrong kind can be pointed at
        let (rest, items) = list(
            at,
            b'[',
            b']',
            &format!("the list of attribute `{name}`"),
            |i| {
                let (rest, s) = single(cx, i)?;
                Ok((rest, (ws(i), s)))
            },
        )?;
        let elem_kind = match annot {
            Some(AttrType::Ints) => "int",
            Some(AttrType::Floats) => "float",
            Some(AttrType::Strings) => "string",
            Some(
                t @ (AttrType::Tensors
                | AttrType::Graphs
                | AttrType::SparseTensors
                | AttrType::TypeProtos),
            ) => {
                // onnx's parser drops the elements of these lists; so does etch, and says nothing
                return Ok((rest, AttrValue::EmptyList(t)));
            }
            Some(t) => return mismatch("list", t).map(|v| (rest, v)),
            None => match items.first() {
                None => {
                    return fail(
                        at,
                        format!("an empty list needs a type: write `{name}: ints = []`"),
                    )
                }
                Some((_, s)) => s.kind(),
            },
        };
        // why the list has the element type it has, for the error about an element that differs
        let why = |k: &str| match annot {
            Some(t) => format!("attribute `{name}` is declared `{}`", t.keyword()),
            None => format!("attribute `{name}` is a list of {k}s (from its first element)"),
        };
        let bad = |p: In<'_>, k: &str, s: &Single| -> Result<AttrValue, NomErr<PErr>> {
            fail(
                p,
                format!(
                    "{}, but this element is {}; write all elements as {k}s",
                    why(k),
                    with_article(s.kind())
                ),
            )
        };
        let v = match elem_kind {
            "int" => {
                let mut v = Vec::new();
                for (p, s) in items {
                    match s {
                        Single::Num(t, NumKind::Int) => v.push(int_of(p, &t)?),
                        s => return bad(p, "int", &s).map(|v| (rest, v)),
                    }
                }
                AttrValue::Ints(v)
            }
            "float" => {
                let mut v = Vec::new();
                for (p, s) in items {
                    match s {
                        Single::Num(t, _) => v.push(to_f32(&t)),
                        s => return bad(p, "float", &s).map(|v| (rest, v)),
                    }
                }
                AttrValue::Floats(v)
            }
            "string" => {
                let mut v = Vec::new();
                for (p, s) in items {
                    match s {
                        Single::Str(t) => v.push(t),
                        s => return bad(p, "string", &s).map(|v| (rest, v)),
                    }
                }
                AttrValue::Strings(v)
            }
            k => return fail(at, format!("attribute `{name}`: a list of {k} values needs its type, e.g. `{name}: {k}s = [...]`")),
        };
        return Ok((rest, v));
    }
    let (rest, s) = single(cx, at)?;
    let v = match (s, annot) {
        (Single::Ref(r), Some(t)) => AttrValue::Ref(t, r),
        (Single::Ref(_), None) => {
            return fail(
                at,
                format!("a reference needs the attribute's type: write `{name}: float = @…`"),
            )
        }
        (Single::Num(t, NumKind::Int), None | Some(AttrType::Int)) => {
            AttrValue::Int(int_of(at, &t)?)
        }
        (Single::Num(t, _), None | Some(AttrType::Float)) => AttrValue::Float(to_f32(&t)),
        (Single::Str(s), None | Some(AttrType::String)) => AttrValue::String(s),
        (Single::Tensor(t, n), None | Some(AttrType::Tensor)) => AttrValue::Tensor(t, n),
        (Single::Type(t), None | Some(AttrType::TypeProto)) => AttrValue::TypeProto(t),
        (Single::Graph(g), None | Some(AttrType::Graph)) => AttrValue::Graph(Box::new(g)),
        (s, Some(t)) => return mismatch(s.kind(), t).map(|v| (rest, v)),
    };
    Ok((rest, v))
}

/// "an int", "a float": a value kind with its article, for messages.
fn with_article(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

fn int_of(at: In<'_>, tok: &[u8]) -> Result<i64, NomErr<PErr>> {
    match to_int(tok).filter(|v| *v >= i64::MIN as i128 && *v <= i64::MAX as i128) {
        Some(v) => Ok(v as i64),
        None => fail(
            at,
            format!(
                "integer `{}` does not fit in 64 bits",
                String::from_utf8_lossy(tok)
            ),
        ),
    }
}

const AFTER_GRAPH: &str =
    "only function definitions (`name (inputs) => (outputs) { … }`) may follow it";

/// function = [fn_header] QID [fn_attrs] fn_io '=>' fn_io ['<' value_infos '>'] node_block
fn function<'a>(cx: &Cx, i: In<'a>) -> R<'a, Function> {
    let start = ws(i);
    let mut f = Function {
        domain: None,
        name: String::new(),
        overload: None,
        opset_import: Vec::new(),
        doc_string: None,
        attrs: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        value_info: Vec::new(),
        nodes: Vec::new(),
        span: Span::default(),
    };
    let mut i = start;
    if peek(i) == Some(b'<') {
        let (rest, _) = list(i, b'<', b'>', "the function header", |i| {
            let at = ws(i);
            let (i, key) = id_for(
                i,
                "a function header key (domain, opset_import, doc_string, overload)",
            )?;
            let (i, ()) = expect(b':', &format!("after `{key}`"))(i)?;
            match key {
                "domain" => string_for(i, "`domain`").map(|(i, s)| { f.domain = Some(s); (i, ()) }),
                "doc_string" => string_for(i, "`doc_string`").map(|(i, s)| { f.doc_string = Some(s); (i, ()) }),
                "overload" => string_for(i, "`overload`").map(|(i, s)| { f.overload = Some(s); (i, ()) }),
                "opset_import" => opset_list(i).map(|(i, v)| { f.opset_import = v; (i, ()) }),
                _ => fail_len(at, key.len(), format!("unknown function header key `{key}`; the keys are domain, opset_import, doc_string, overload")),
            }
        })?;
        i = rest;
    }
    if !at_qid(i) {
        let at = ws(i);
        return fail(
            at,
            format!(
                "unexpected {} after the end of the graph: {AFTER_GRAPH}",
                found(at)
            ),
        );
    }
    let (rest, name) = qid(i)?;
    if start.first() != Some(&b'<') && !matches!(peek(rest), Some(b'(' | b'<')) {
        return fail_len(
            start,
            start.len() - rest.len(),
            format!("unexpected `{name}` after the end of the graph: {AFTER_GRAPH}"),
        );
    }
    f.name = name;
    i = rest;
    if peek(i) == Some(b'<') {
        let (rest, attrs) = list(i, b'<', b'>', "the function's attributes", |i| {
            let (i, name) = qid_for(i, "a function attribute name")?;
            if matches!(peek(i), Some(b':' | b'=')) {
                let (i, a) = attribute_named(cx, i, name.clone())?;
                Ok((i, (name, Some(a))))
            } else {
                Ok((i, (name, None)))
            }
        })?;
        f.attrs = attrs;
        i = rest;
    }
    let fn_io = |i| {
        list(i, b'(', b')', "the function's inputs or outputs", |i| {
            let (i, t) = if at_type(i) {
                let (i, t) = ty(i)?;
                (i, Some(t))
            } else {
                (i, None)
            };
            let (i, n) = qid_for(i, "a name")?;
            Ok((i, (t, n)))
        })
    };
    let (rest, ins) = fn_io(i)?;
    f.inputs = ins;
    let at = ws(rest);
    if !at.starts_with(b"=>") {
        return fail(
            at,
            format!(
                "expected `=>` between the function's inputs and outputs, found {}",
                found(at)
            ),
        );
    }
    let (rest, outs) = fn_io(&at[2..])?;
    f.outputs = outs;
    i = rest;
    if peek(i) == Some(b'<') {
        let (rest, vis) = list(i, b'<', b'>', "the function's value_info", |i| {
            value_info(cx, i)
        })?;
        f.value_info = vis;
        i = rest;
    }
    let (i, nodes) = node_block(cx, i)?;
    f.nodes = nodes;
    f.span = cx.span(start, i);
    Ok((i, f))
}

/// The rest of an attribute after its name: `[: type] = value`.
fn attribute_named<'a>(cx: &Cx, i: In<'a>, name: String) -> R<'a, Attribute> {
    let mut i = i;
    let mut annot = None;
    if let Some(rest) = eat(b':', i) {
        let at = ws(rest);
        let (rest, w) = id_for(
            rest,
            "an attribute type (int, float, string, tensor, graph, ints, floats, …)",
        )?;
        let Some(t) = AttrType::from_keyword(w) else {
            return fail_len(at, w.len(), format!("`{w}` is not an attribute type; use int, float, string, tensor, graph, type_proto, ints, floats, strings, tensors, graphs or type_protos"));
        };
        annot = Some(t);
        i = rest;
    }
    let (i, ()) = expect(b'=', &format!("after attribute `{name}`"))(i)?;
    let (i, value) = attr_value(cx, i, &name, annot)?;
    Ok((i, Attribute { name, value }))
}
