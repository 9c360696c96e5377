//! Writes a model as OpenVINO IR (version 11) directly from safetensors weights.
//!
//! OpenVINO reads IR from memory: an XML graph plus one weights buffer that
//! constants point into by offset. Quarry's buffer is the safetensors file
//! itself followed by a few small extra constants, so no weight is copied or
//! converted and nothing needs Python, PyTorch or ONNX at any point.
//! Port shapes are left out: OpenVINO infers them when it reads the graph.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

/// One tensor's entry in a safetensors header.
#[derive(Debug, Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// Where each tensor of a safetensors file lies inside the file.
#[derive(Debug)]
pub struct SafetensorsIndex {
    tensors: BTreeMap<String, TensorEntry>,
    data_start: usize,
}

impl SafetensorsIndex {
    /// Parses the header of a safetensors file held in `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let len_bytes: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or("file too short for a safetensors header")?;
        let header_len = usize::try_from(u64::from_le_bytes(len_bytes))
            .map_err(|_| "safetensors header length overflows")?;
        let header = bytes
            .get(8..8usize.saturating_add(header_len))
            .ok_or("safetensors header runs past the end of the file")?;
        let mut raw: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(header).map_err(|e| format!("safetensors header: {e}"))?;
        raw.remove("__metadata__");
        let mut tensors = BTreeMap::new();
        let data_start = 8 + header_len;
        for (name, value) in raw {
            let entry: TensorEntry =
                serde_json::from_value(value).map_err(|e| format!("tensor {name}: {e}"))?;
            if data_start + entry.data_offsets[1] > bytes.len() {
                return Err(format!("tensor {name} runs past the end of the file"));
            }
            tensors.insert(name, entry);
        }
        Ok(SafetensorsIndex {
            tensors,
            data_start,
        })
    }

    fn entry(&self, name: &str) -> Result<&TensorEntry, String> {
        self.tensors
            .get(name)
            .ok_or_else(|| format!("weights have no tensor {name}"))
    }
}

/// An output of a layer, usable as another layer's input.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    layer: usize,
    port: usize,
    /// Element type ("f32", "i64"): every port in IR states its precision.
    element: &'static str,
}

struct Layer {
    name: String,
    kind: &'static str,
    version: &'static str,
    data: Vec<(&'static str, String)>,
    /// Precision of each input port.
    inputs: Vec<&'static str>,
    /// Precision and tensor name of the output port (`None` for a Result).
    output: Option<(&'static str, Option<String>)>,
}

/// An IR graph under construction, with the weights buffer its constants point into.
pub struct Graph<'w> {
    layers: Vec<Layer>,
    edges: Vec<(Out, usize, usize)>,
    weights: &'w SafetensorsIndex,
    /// Bytes appended after the safetensors file (small constants).
    extra: Vec<u8>,
    /// Size of the safetensors file: where `extra` starts in the buffer.
    extra_base: usize,
}

/// Port precision of an element type.
fn precision(element: &str) -> &'static str {
    match element {
        "i64" => "I64",
        _ => "FP32",
    }
}

/// Element type of a port precision.
fn element_of(precision: &str) -> &'static str {
    match precision {
        "I64" => "i64",
        _ => "f32",
    }
}

impl<'w> Graph<'w> {
    /// Starts a graph whose weights are the safetensors file of `file_len` bytes.
    pub fn new(weights: &'w SafetensorsIndex, file_len: usize) -> Self {
        Graph {
            layers: Vec::new(),
            edges: Vec::new(),
            weights,
            extra: Vec::new(),
            extra_base: file_len,
        }
    }

    fn push(&mut self, layer: Layer, inputs: &[Out]) -> Out {
        let id = self.layers.len();
        for (i, &from) in inputs.iter().enumerate() {
            self.edges.push((from, id, i));
        }
        let port = layer.inputs.len();
        let element = layer.output.as_ref().map_or("f32", |o| element_of(o.0));
        self.layers.push(layer);
        Out {
            layer: id,
            port,
            element,
        }
    }

    /// A model input of dynamic shape with `rank` dimensions.
    pub fn parameter(&mut self, name: &str, element: &'static str, rank: usize) -> Out {
        let shape = vec!["?"; rank].join(",");
        self.push(
            Layer {
                name: name.to_string(),
                kind: "Parameter",
                version: "opset1",
                data: vec![("shape", shape), ("element_type", element.to_string())],
                inputs: Vec::new(),
                output: Some((precision(element), Some(name.to_string()))),
            },
            &[],
        )
    }

    fn constant_at(
        &mut self,
        element: &'static str,
        shape: &[usize],
        offset: usize,
        size: usize,
    ) -> Out {
        let shape_text = shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let name = format!("const_{}", self.layers.len());
        self.push(
            Layer {
                name,
                kind: "Const",
                version: "opset1",
                data: vec![
                    ("element_type", element.to_string()),
                    ("shape", shape_text),
                    ("offset", offset.to_string()),
                    ("size", size.to_string()),
                ],
                inputs: Vec::new(),
                output: Some((precision(element), None)),
            },
            &[],
        )
    }

    /// A float32 weight tensor of the safetensors file, in place.
    pub fn weight(&mut self, name: &str) -> Result<Out, String> {
        let e = self.weights.entry(name)?;
        if e.dtype != "F32" {
            return Err(format!("tensor {name} is {}, expected F32", e.dtype));
        }
        let (offset, size, shape) = (
            self.weights.data_start + e.data_offsets[0],
            e.data_offsets[1] - e.data_offsets[0],
            e.shape.clone(),
        );
        Ok(self.constant_at("f32", &shape, offset, size))
    }

    /// Row `row` of a 2-d float32 weight tensor, as a 1-d constant, in place.
    pub fn weight_row(&mut self, name: &str, row: usize) -> Result<Out, String> {
        let e = self.weights.entry(name)?;
        if e.dtype != "F32" || e.shape.len() != 2 || row >= e.shape[0] {
            return Err(format!("tensor {name} has no f32 row {row}"));
        }
        let width = e.shape[1];
        let offset = self.weights.data_start + e.data_offsets[0] + row * width * 4;
        Ok(self.constant_at("f32", &[width], offset, width * 4))
    }

    /// Shape `[d0, d1, …]` of a weight tensor (to check a config against its weights).
    pub fn weight_shape(&self, name: &str) -> Result<Vec<usize>, String> {
        Ok(self.weights.entry(name)?.shape.clone())
    }

    fn append(&mut self, bytes: &[u8]) -> usize {
        // Keep every extra constant 8-byte aligned.
        while !(self.extra_base + self.extra.len()).is_multiple_of(8) {
            self.extra.push(0);
        }
        let offset = self.extra_base + self.extra.len();
        self.extra.extend_from_slice(bytes);
        offset
    }

    /// An int64 constant (`shape` empty for a scalar).
    pub fn i64s(&mut self, values: &[i64], shape: &[usize]) -> Out {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let offset = self.append(&bytes);
        self.constant_at("i64", shape, offset, bytes.len())
    }

    /// A float32 scalar constant.
    pub fn f32_scalar(&mut self, value: f32) -> Out {
        let offset = self.append(&value.to_le_bytes());
        self.constant_at("f32", &[], offset, 4)
    }

    /// Any operation: `kind` and `version` as in OpenVINO's opsets, attributes in `data`.
    ///
    /// The output's element type is the first input's, except for the operations
    /// that state it (`output_type`, `destination_type`).
    pub fn op(
        &mut self,
        kind: &'static str,
        version: &'static str,
        inputs: &[Out],
        data: &[(&'static str, &str)],
    ) -> Out {
        let name = format!("{}_{}", kind.to_lowercase(), self.layers.len());
        let stated = data
            .iter()
            .find(|(k, _)| *k == "output_type" || *k == "destination_type")
            .map(|(_, v)| if *v == "i64" { "i64" } else { "f32" });
        let element = stated.unwrap_or_else(|| inputs.first().map_or("f32", |i| i.element));
        self.push(
            Layer {
                name,
                kind,
                version,
                data: data.iter().map(|(k, v)| (*k, v.to_string())).collect(),
                inputs: inputs.iter().map(|i| precision(i.element)).collect(),
                output: Some((precision(element), None)),
            },
            inputs,
        )
    }

    /// Marks `value` as a model output.
    pub fn result(&mut self, value: Out) {
        let name = format!("result_{}", self.layers.len());
        self.push(
            Layer {
                name,
                kind: "Result",
                version: "opset1",
                data: Vec::new(),
                inputs: vec![precision(value.element)],
                output: None,
            },
            &[value],
        );
    }

    /// The IR XML and the bytes to append to the safetensors file to form the weights buffer.
    pub fn finish(self, name: &str) -> (String, Vec<u8>) {
        let mut xml = String::with_capacity(64 * self.layers.len() + 4096);
        let _ = writeln!(
            xml,
            "<?xml version=\"1.0\"?>\n<net name=\"{name}\" version=\"11\">\n<layers>"
        );
        for (id, l) in self.layers.iter().enumerate() {
            let _ = write!(
                xml,
                "<layer id=\"{id}\" name=\"{}\" type=\"{}\" version=\"{}\">",
                l.name, l.kind, l.version
            );
            if !l.data.is_empty() {
                xml.push_str("<data");
                for (k, v) in &l.data {
                    let _ = write!(xml, " {k}=\"{v}\"");
                }
                xml.push_str("/>");
            }
            if !l.inputs.is_empty() {
                xml.push_str("<input>");
                for (p, prec) in l.inputs.iter().enumerate() {
                    let _ = write!(xml, "<port id=\"{p}\" precision=\"{prec}\"/>");
                }
                xml.push_str("</input>");
            }
            if let Some((prec, names)) = &l.output {
                let _ = write!(
                    xml,
                    "<output><port id=\"{}\" precision=\"{prec}\"",
                    l.inputs.len()
                );
                if let Some(n) = names {
                    let _ = write!(xml, " names=\"{n}\"");
                }
                xml.push_str("/></output>");
            }
            xml.push_str("</layer>\n");
        }
        xml.push_str("</layers>\n<edges>\n");
        for (from, to, port) in &self.edges {
            let _ = writeln!(
                xml,
                "<edge from-layer=\"{}\" from-port=\"{}\" to-layer=\"{to}\" to-port=\"{port}\"/>",
                from.layer, from.port
            );
        }
        xml.push_str("</edges>\n</net>\n");
        (xml, self.extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_safetensors() -> Vec<u8> {
        let header = br#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"__metadata__":{"a":"b"}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend((0..6).flat_map(|i| (i as f32).to_le_bytes()));
        bytes
    }

    #[test]
    fn index_finds_tensors_and_rejects_truncated_files() {
        let bytes = tiny_safetensors();
        let idx = SafetensorsIndex::parse(&bytes).unwrap();
        assert_eq!(idx.entry("w").unwrap().shape, vec![2, 3]);
        assert!(idx.entry("__metadata__").is_err());
        assert!(SafetensorsIndex::parse(&bytes[..bytes.len() - 4]).is_err());
        assert!(SafetensorsIndex::parse(&bytes[..5]).is_err());
    }

    #[test]
    fn graph_points_constants_into_the_file_and_appends_small_ones() {
        let bytes = tiny_safetensors();
        let idx = SafetensorsIndex::parse(&bytes).unwrap();
        let mut g = Graph::new(&idx, bytes.len());
        let x = g.parameter("x", "f32", 2);
        let w = g.weight("w").unwrap();
        let row = g.weight_row("w", 1).unwrap();
        let s = g.i64s(&[0, 0, 3], &[3]);
        let y = g.op(
            "MatMul",
            "opset1",
            &[x, w],
            &[("transpose_a", "false"), ("transpose_b", "true")],
        );
        let y = g.op("Add", "opset1", &[y, row], &[("auto_broadcast", "numpy")]);
        let y = g.op("Reshape", "opset1", &[y, s], &[("special_zero", "true")]);
        g.result(y);
        let data_start = bytes.len() - 24;
        let (xml, extra) = g.finish("t");
        assert!(
            xml.contains(&format!("offset=\"{data_start}\" size=\"24\"")),
            "{xml}"
        );
        assert!(
            xml.contains(&format!("offset=\"{}\" size=\"12\"", data_start + 12)),
            "{xml}"
        );
        // The i64 constant is appended after the file, 8-byte aligned.
        let pad = (8 - bytes.len() % 8) % 8;
        assert_eq!(extra.len(), pad + 24);
        assert!(xml.contains(&format!("offset=\"{}\" size=\"24\"", bytes.len() + pad)));
        assert!(
            xml.contains("<edge from-layer=\"0\" from-port=\"0\" to-layer=\"4\" to-port=\"0\"/>")
        );
        assert!(xml.contains("type=\"Result\""));
    }
}
