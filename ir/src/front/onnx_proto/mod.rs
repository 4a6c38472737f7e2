//! The binary ONNX front end: a `.onnx` protobuf file into the same IR the text front end builds,
//! so users can hand etch their exporter's file directly.

mod proto;

use prost::Message;

use crate::graph::{
    AttrType, AttrValue, Attribute, Function, Graph, Initializer, Model, Node, Span, ValueInfo,
};
use crate::op::elem_from_onnx_code;
use crate::tensor::{Data, Dim, ElemType, Storage, Tensor, TensorType, Type};

/// A `.onnx` file that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtoError {
    #[error(
        "this is not an ONNX protobuf file ({0}); etch reads .onnx files and ONNX text (.onnx.txt)"
    )]
    Decode(String),
    #[error("{what}: {message}")]
    Content { what: String, message: String },
}

fn content(what: impl Into<String>, message: impl Into<String>) -> ProtoError {
    ProtoError::Content {
        what: what.into(),
        message: message.into(),
    }
}

/// Decodes a binary ONNX model.
pub fn read_model(bytes: &[u8]) -> Result<Model, ProtoError> {
    let m = proto::ModelProto::decode(bytes).map_err(|e| ProtoError::Decode(e.to_string()))?;
    let graph = m
        .graph
        .ok_or_else(|| content("the model", "has no graph"))?;
    Ok(Model {
        ir_version: m.ir_version,
        opset_import: m
            .opset_import
            .into_iter()
            .map(|o| (o.domain, o.version))
            .collect(),
        producer_name: m.producer_name,
        producer_version: m.producer_version,
        domain: m.domain,
        model_version: m.model_version,
        doc_string: m.doc_string,
        metadata_props: m
            .metadata_props
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect(),
        graph: read_graph(graph)?,
        functions: m
            .functions
            .into_iter()
            .map(read_function)
            .collect::<Result<_, _>>()?,
    })
}

fn read_graph(g: proto::GraphProto) -> Result<Graph, ProtoError> {
    let mut out = Graph {
        name: g.name,
        ..Default::default()
    };
    out.inputs = g
        .input
        .into_iter()
        .map(read_value_info)
        .collect::<Result<_, _>>()?;
    out.outputs = g
        .output
        .into_iter()
        .map(read_value_info)
        .collect::<Result<_, _>>()?;
    out.value_info = g
        .value_info
        .into_iter()
        .map(read_value_info)
        .collect::<Result<_, _>>()?;
    for t in g.initializer {
        let name = t.name.clone();
        out.initializers.push(Initializer {
            name,
            tensor: read_tensor(t)?,
            span: Span::default(),
        });
    }
    for n in g.node {
        out.nodes.add_node(read_node(n)?);
    }
    out.rebuild_edges();
    Ok(out)
}

fn read_value_info(v: proto::ValueInfoProto) -> Result<ValueInfo, ProtoError> {
    let ty = v
        .r#type
        .map(|t| read_type(t, &v.name))
        .transpose()?
        .flatten();
    Ok(ValueInfo {
        name: v.name,
        ty,
        span: Span::default(),
    })
}

fn elem(code: i32, what: &str) -> Result<ElemType, ProtoError> {
    elem_from_onnx_code(code as i64).ok_or_else(|| {
        content(
            what,
            format!("element type code {code} is not an ONNX type"),
        )
    })
}

fn read_tensor_type(t: proto::type_proto::Tensor, what: &str) -> Result<TensorType, ProtoError> {
    let shape = t.shape.map(|s| {
        s.dim
            .into_iter()
            .map(|d| match d.value {
                Some(proto::dimension::Value::DimValue(v)) => Dim::Known(v),
                Some(proto::dimension::Value::DimParam(p)) => Dim::Param(p),
                None => Dim::Unknown,
            })
            .collect()
    });
    Ok(TensorType {
        elem: elem(t.elem_type, what)?,
        shape,
    })
}

/// A type, or `None` for an empty TypeProto (which the text form writes as no type).
fn read_type(t: proto::TypeProto, what: &str) -> Result<Option<Type>, ProtoError> {
    use proto::type_proto::Value as V;
    let inner = |b: Option<Box<proto::TypeProto>>| -> Result<Box<Type>, ProtoError> {
        let t = b.ok_or_else(|| content(what, "a container type has no element type"))?;
        read_type(*t, what)?
            .map(Box::new)
            .ok_or_else(|| content(what, "a container type has no element type"))
    };
    Ok(Some(match t.value {
        None => return Ok(None),
        Some(V::TensorType(tt)) => Type::Tensor(read_tensor_type(tt, what)?),
        Some(V::SparseTensorType(tt)) => Type::SparseTensor(read_tensor_type(tt, what)?),
        Some(V::SequenceType(s)) => Type::Seq(inner(s.elem_type)?),
        Some(V::OptionalType(s)) => Type::Optional(inner(s.elem_type)?),
        Some(V::MapType(m)) => Type::Map(elem(m.key_type, what)?, inner(m.value_type)?),
        Some(V::OpaqueType(o)) => Type::Opaque {
            domain: o.domain,
            name: o.name,
        },
    }))
}

/// Splits little-endian raw bytes into `width`-byte values.
fn raw<T>(
    bytes: &[u8],
    width: usize,
    what: &str,
    f: impl Fn(&[u8]) -> T,
) -> Result<Vec<T>, ProtoError> {
    if !bytes.len().is_multiple_of(width) {
        return Err(content(
            what,
            format!(
                "raw_data has {} bytes, not a multiple of {width}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes.chunks_exact(width).map(f).collect())
}

fn read_tensor(t: proto::TensorProto) -> Result<Tensor, ProtoError> {
    let what = format!("tensor `{}`", t.name);
    let elem = elem(t.data_type, &what)?;
    let mut out = Tensor {
        elem,
        dims: t.dims.clone(),
        data: None,
        external: None,
    };
    if !t.external_data.is_empty() {
        out.external = Some(
            t.external_data
                .into_iter()
                .map(|p| (p.key, p.value))
                .collect(),
        );
        return Ok(out);
    }
    if matches!(
        elem,
        ElemType::I4
            | ElemType::U4
            | ElemType::I2
            | ElemType::U2
            | ElemType::F4E2M1
            | ElemType::Complex64
            | ElemType::Complex128
    ) {
        if t.raw_data.is_empty()
            && t.int32_data.is_empty()
            && t.float_data.is_empty()
            && t.double_data.is_empty()
        {
            return Ok(out);
        }
        return Err(content(&what, format!("etch does not read {elem} values")));
    }
    let r = &t.raw_data;
    let has_raw = !r.is_empty();
    let ints = |v: &[i32]| v.to_vec();
    let data = match elem.storage() {
        Storage::F32 => Data::F32(if has_raw {
            raw(r, 4, &what, |b| {
                f32::from_le_bytes([b[0], b[1], b[2], b[3]])
            })?
        } else {
            t.float_data
        }),
        Storage::F64 => Data::F64(if has_raw {
            raw(r, 8, &what, |b| {
                f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
            })?
        } else {
            t.double_data
        }),
        Storage::I64 => Data::I64(if has_raw {
            raw(r, 8, &what, |b| {
                i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
            })?
        } else {
            t.int64_data
        }),
        Storage::U64 if elem == ElemType::U32 => Data::U64(if has_raw {
            raw(r, 4, &what, |b| {
                u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            })?
        } else {
            t.uint64_data
        }),
        Storage::U64 => Data::U64(if has_raw {
            raw(r, 8, &what, |b| {
                u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
            })?
        } else {
            t.uint64_data
        }),
        Storage::I32 => Data::I32(if has_raw {
            raw(r, 4, &what, |b| {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]])
            })?
        } else {
            ints(&t.int32_data)
        }),
        Storage::I16 => Data::I16(if has_raw {
            raw(r, 2, &what, |b| i16::from_le_bytes([b[0], b[1]]))?
        } else {
            t.int32_data.iter().map(|&v| v as i16).collect()
        }),
        Storage::U16 => Data::U16(if has_raw {
            raw(r, 2, &what, |b| u16::from_le_bytes([b[0], b[1]]))?
        } else {
            t.int32_data.iter().map(|&v| v as u16).collect()
        }),
        Storage::I8 => Data::I8(if has_raw {
            raw(r, 1, &what, |b| b[0] as i8)?
        } else {
            t.int32_data.iter().map(|&v| v as i8).collect()
        }),
        Storage::U8 => Data::U8(if has_raw {
            raw(r, 1, &what, |b| b[0])?
        } else {
            t.int32_data.iter().map(|&v| v as u8).collect()
        }),
        Storage::Str => Data::Str(
            t.string_data
                .into_iter()
                .map(|s| {
                    String::from_utf8(s).map_err(|_| content(&what, "a string value is not UTF-8"))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let numel = out.dims.iter().try_fold(
        1u64,
        |a, &d| if d < 0 { None } else { a.checked_mul(d as u64) },
    );
    match numel {
        // a tensor with dims but no values at all is a shape-only weight, as in the text form
        Some(_) if data.is_empty() && out.dims.iter().any(|&d| d != 0) => {}
        Some(n) if n == data.len() as u64 => out.data = Some(data),
        _ => {
            return Err(content(
                &what,
                format!(
                    "has {} values but its dims {:?} hold {}",
                    data.len(),
                    out.dims,
                    numel.map_or("too many".to_string(), |n| n.to_string())
                ),
            ))
        }
    }
    Ok(out)
}

const ATTR_CODES: [(i32, AttrType); 14] = [
    (1, AttrType::Float),
    (2, AttrType::Int),
    (3, AttrType::String),
    (4, AttrType::Tensor),
    (5, AttrType::Graph),
    (11, AttrType::SparseTensor),
    (13, AttrType::TypeProto),
    (6, AttrType::Floats),
    (7, AttrType::Ints),
    (8, AttrType::Strings),
    (9, AttrType::Tensors),
    (10, AttrType::Graphs),
    (12, AttrType::SparseTensors),
    (14, AttrType::TypeProtos),
];

fn read_attr(a: proto::AttributeProto, node: &str) -> Result<Attribute, ProtoError> {
    let what = format!("attribute `{}` of node `{node}`", a.name);
    let ty = ATTR_CODES
        .iter()
        .find(|(c, _)| *c == a.r#type)
        .map(|(_, t)| *t);
    // old exporters leave `type` unset: infer it from the field that holds a value
    let ty = match ty {
        Some(t) => t,
        None if !a.floats.is_empty() => AttrType::Floats,
        None if !a.ints.is_empty() => AttrType::Ints,
        None if !a.strings.is_empty() => AttrType::Strings,
        None if a.t.is_some() => AttrType::Tensor,
        None if a.g.is_some() => AttrType::Graph,
        None if !a.s.is_empty() => AttrType::String,
        None => {
            return Err(content(
                &what,
                format!("type code {} is not an attribute type", a.r#type),
            ))
        }
    };
    let utf8 =
        |b: Vec<u8>| String::from_utf8(b).map_err(|_| content(&what, "a string is not UTF-8"));
    let value = if !a.ref_attr_name.is_empty() {
        AttrValue::Ref(ty, a.ref_attr_name)
    } else {
        match ty {
            AttrType::Float => AttrValue::Float(a.f),
            AttrType::Int => AttrValue::Int(a.i),
            AttrType::String => AttrValue::String(utf8(a.s)?),
            AttrType::Tensor => {
                let t = a.t.ok_or_else(|| content(&what, "holds no tensor"))?;
                let name = (!t.name.is_empty()).then(|| t.name.clone());
                AttrValue::Tensor(read_tensor(t)?, name)
            }
            AttrType::Graph => AttrValue::Graph(Box::new(read_graph(
                *a.g.ok_or_else(|| content(&what, "holds no graph"))?,
            )?)),
            AttrType::TypeProto => AttrValue::TypeProto(
                a.tp.and_then(|t| read_type(t, &what).transpose())
                    .transpose()?
                    .ok_or_else(|| content(&what, "holds no type"))?,
            ),
            AttrType::Floats => AttrValue::Floats(a.floats),
            AttrType::Ints => AttrValue::Ints(a.ints),
            AttrType::Strings => {
                AttrValue::Strings(a.strings.into_iter().map(utf8).collect::<Result<_, _>>()?)
            }
            // the text form keeps no elements of these lists, and neither does the IR
            t => AttrValue::EmptyList(t),
        }
    };
    Ok(Attribute {
        name: a.name,
        value,
    })
}

fn read_node(n: proto::NodeProto) -> Result<Node, ProtoError> {
    let label = n
        .name
        .clone()
        .unwrap_or_else(|| n.output.first().cloned().unwrap_or_default());
    let attrs = n
        .attribute
        .into_iter()
        .map(|a| read_attr(a, &label))
        .collect::<Result<Vec<_>, _>>()?;
    let mut node = Node::new(&n.domain, &n.op_type, attrs, n.input, n.output)
        .map_err(|e| content(format!("node `{label}`"), e.to_string()))?;
    node.name = n.name;
    node.overload = n.overload;
    Ok(node)
}

fn read_function(f: proto::FunctionProto) -> Result<Function, ProtoError> {
    let mut attrs: Vec<(String, Option<Attribute>)> =
        f.attribute.into_iter().map(|a| (a, None)).collect();
    for a in f.attribute_proto {
        let a = read_attr(a, &f.name)?;
        attrs.push((a.name.clone(), Some(a)));
    }
    Ok(Function {
        domain: f.domain,
        name: f.name,
        overload: f.overload,
        opset_import: f
            .opset_import
            .into_iter()
            .map(|o| (o.domain, o.version))
            .collect(),
        doc_string: None,
        attrs,
        inputs: f.input.into_iter().map(|n| (None, n)).collect(),
        outputs: f.output.into_iter().map(|n| (None, n)).collect(),
        value_info: Vec::new(),
        nodes: f
            .node
            .into_iter()
            .map(read_node)
            .collect::<Result<_, _>>()?,
        span: Span::default(),
    })
}
