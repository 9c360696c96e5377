//! Conversion between Quarry's row structs and Arrow record batches.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Float32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float16Array, Int64Array, RecordBatch, StringArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use half::f16;

use crate::{Result, StoreError};

/// Columns returned by searches: all of the chunks table's.
pub(crate) const RESULT_COLUMNS: &[&str] = &[
    "id",
    "root",
    "path",
    "language",
    "kind",
    "symbol",
    "start_line",
    "end_line",
    "content_hash",
    "text",
];

/// `columns` plus one more (a score column a query computes).
pub(crate) fn with_column<'a>(columns: &[&'a str], extra: &'a str) -> Vec<&'a str> {
    let mut all = columns.to_vec();
    all.push(extra);
    all
}

/// A chunk as written to the index: what searches return, plus its vector
/// when it is already known.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRow {
    /// Everything but the vector.
    pub chunk: StoredChunk,
    /// Embedding of the chunk's text; empty when it is not computed yet (the
    /// chunk is found by full-text search, and by vector search once
    /// [`crate::Store::add_vectors`] stores a vector for its `content_hash`).
    pub vector: Vec<f32>,
}

/// A chunk without its vector: what searches return.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredChunk {
    /// Stable id.
    pub id: String,
    /// Absolute path of the indexed root.
    pub root: String,
    /// Path relative to the root.
    pub path: String,
    /// Language name.
    pub language: String,
    /// Chunk kind.
    pub kind: String,
    /// Qualified symbol.
    pub symbol: String,
    /// First line, 1-based inclusive.
    pub start_line: u32,
    /// Last line, 1-based inclusive.
    pub end_line: u32,
    /// Hash of the embedded text.
    pub content_hash: String,
    /// Source text.
    pub text: String,
}

/// What the index remembers of a file, to skip it when unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// Absolute path of the indexed root.
    pub root: String,
    /// Path relative to the root.
    pub path: String,
    /// Size in bytes when indexed.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch when indexed.
    pub mtime_ns: i64,
    /// Hash of the file's bytes.
    pub content_hash: String,
    /// Number of chunks the file produced.
    pub chunks: u32,
}

pub(crate) fn chunk_schema(metadata: HashMap<String, String>) -> SchemaRef {
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new_with_metadata(
        vec![
            utf8("id"),
            utf8("root"),
            utf8("path"),
            utf8("language"),
            utf8("kind"),
            utf8("symbol"),
            Field::new("start_line", DataType::UInt32, false),
            Field::new("end_line", DataType::UInt32, false),
            utf8("content_hash"),
            utf8("text"),
        ],
        metadata,
    ))
}

/// The vectors table: one row per distinct embedded text, keyed by its hash
/// (a chunk's `content_hash`).
pub(crate) fn vector_schema(dim: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("hash", DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::FixedSizeList(
                // Half precision: half the disk of f32 for unit vectors whose
                // cosine similarities change by ~1e-3 (retrieval unchanged).
                Arc::new(Field::new("item", DataType::Float16, true)),
                dim as i32,
            ),
            false,
        ),
    ]))
}

/// The embedding cache's rows: a vector by text hash, and when it was added
/// (Unix nanoseconds; the oldest go first when the cache is over its size).
pub(crate) fn cache_schema(dim: usize) -> SchemaRef {
    let mut fields: Vec<Field> = vector_schema(dim)
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("added", DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

pub(crate) fn file_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("root", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("size", DataType::UInt64, false),
        Field::new("mtime_ns", DataType::Int64, false),
        Field::new("content_hash", DataType::Utf8, false),
        Field::new("chunks", DataType::UInt32, false),
    ]))
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

pub(crate) fn chunk_batch(schema: SchemaRef, rows: &[ChunkRow]) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.chunk.id.as_str())),
        strings(rows.iter().map(|r| r.chunk.root.as_str())),
        strings(rows.iter().map(|r| r.chunk.path.as_str())),
        strings(rows.iter().map(|r| r.chunk.language.as_str())),
        strings(rows.iter().map(|r| r.chunk.kind.as_str())),
        strings(rows.iter().map(|r| r.chunk.symbol.as_str())),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.chunk.start_line),
        )),
        Arc::new(UInt32Array::from_iter_values(
            rows.iter().map(|r| r.chunk.end_line),
        )),
        strings(rows.iter().map(|r| r.chunk.content_hash.as_str())),
        strings(rows.iter().map(|r| r.chunk.text.as_str())),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| StoreError::Data(e.to_string()))
}

/// Rows of the vectors table; every vector must have `dim` values.
pub(crate) fn vector_batch(dim: usize, rows: &[(&str, &[f32])]) -> Result<RecordBatch> {
    let values = Float16Array::from_iter_values(
        rows.iter()
            .flat_map(|(_, v)| v.iter().map(|&x| f16::from_f32(x))),
    );
    let vectors = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float16, true)),
        dim as i32,
        Arc::new(values),
        None,
    )
    .map_err(|e| StoreError::Data(e.to_string()))?;
    let columns: Vec<ArrayRef> = vec![strings(rows.iter().map(|(h, _)| *h)), Arc::new(vectors)];
    RecordBatch::try_new(vector_schema(dim), columns).map_err(|e| StoreError::Data(e.to_string()))
}

/// Rows for the embedding cache, all stamped `added`.
pub(crate) fn cache_batch(dim: usize, rows: &[(&str, &[f32])], added: u64) -> Result<RecordBatch> {
    let vectors = vector_batch(dim, rows)?;
    let mut columns = vectors.columns().to_vec();
    columns.push(Arc::new(UInt64Array::from_iter_values(
        std::iter::repeat_n(added, rows.len()),
    )));
    RecordBatch::try_new(cache_schema(dim), columns).map_err(|e| StoreError::Data(e.to_string()))
}

/// A `UInt64` column's values.
pub(crate) fn u64_column(batch: &RecordBatch, name: &str) -> Result<Vec<u64>> {
    column(batch, name)?
        .as_primitive_opt::<UInt64Type>()
        .map(|a| a.values().to_vec())
        .ok_or_else(|| StoreError::Data(format!("column `{name}` is not u64")))
}

pub(crate) fn file_batch(rows: &[FileRow]) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.root.as_str())),
        strings(rows.iter().map(|r| r.path.as_str())),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.size))),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.mtime_ns),
        )),
        strings(rows.iter().map(|r| r.content_hash.as_str())),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.chunks))),
    ];
    RecordBatch::try_new(file_schema(), columns).map_err(|e| StoreError::Data(e.to_string()))
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| StoreError::Data(format!("missing column `{name}`")))
}

pub(crate) fn string_column(batch: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let array = column(batch, name)?;
    let array = array
        .as_string_opt::<i32>()
        .ok_or_else(|| StoreError::Data(format!("column `{name}` is not text")))?;
    Ok((0..array.len())
        .map(|i| {
            if array.is_null(i) {
                String::new()
            } else {
                array.value(i).to_string()
            }
        })
        .collect())
}

pub(crate) fn vector_column(batch: &RecordBatch, name: &str) -> Result<Vec<Vec<f32>>> {
    let list = column(batch, name)?
        .as_fixed_size_list_opt()
        .ok_or_else(|| StoreError::Data(format!("column `{name}` is not a vector")))?;
    let dim = list.value_length() as usize;
    let values: Vec<f32> = if let Some(v) = list.values().as_primitive_opt::<Float32Type>() {
        v.values().to_vec()
    } else if let Some(v) = list.values().as_primitive_opt::<Float16Type>() {
        v.values().iter().map(|x| x.to_f32()).collect()
    } else {
        return Err(StoreError::Data(format!(
            "column `{name}` is not f16 or f32"
        )));
    };
    Ok(values
        .chunks(dim.max(1))
        .take(list.len())
        .map(|v| v.to_vec())
        .collect())
}

fn u32_column(batch: &RecordBatch, name: &str) -> Result<Vec<u32>> {
    let array = column(batch, name)?
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(|| StoreError::Data(format!("column `{name}` is not u32")))?;
    Ok(array.values().to_vec())
}

pub(crate) fn f32_column(batch: &RecordBatch, name: &str) -> Result<Vec<f32>> {
    let array = column(batch, name)?
        .as_primitive_opt::<Float32Type>()
        .ok_or_else(|| StoreError::Data(format!("column `{name}` is not f32")))?;
    Ok(array.values().to_vec())
}

pub(crate) fn stored_chunks(batch: &RecordBatch) -> Result<Vec<StoredChunk>> {
    let id = string_column(batch, "id")?;
    let root = string_column(batch, "root")?;
    let path = string_column(batch, "path")?;
    let language = string_column(batch, "language")?;
    let kind = string_column(batch, "kind")?;
    let symbol = string_column(batch, "symbol")?;
    let start = u32_column(batch, "start_line")?;
    let end = u32_column(batch, "end_line")?;
    let hash = string_column(batch, "content_hash")?;
    let text = string_column(batch, "text")?;
    Ok((0..batch.num_rows())
        .map(|i| StoredChunk {
            id: id[i].clone(),
            root: root[i].clone(),
            path: path[i].clone(),
            language: language[i].clone(),
            kind: kind[i].clone(),
            symbol: symbol[i].clone(),
            start_line: start[i],
            end_line: end[i],
            content_hash: hash[i].clone(),
            text: text[i].clone(),
        })
        .collect())
}

/// A chunk's identity for comparing two indexes: root, path, symbol, lines, content hash.
pub type Fingerprint = (String, String, String, u32, u32, String);

pub(crate) fn fingerprints(batch: &RecordBatch) -> Result<Vec<Fingerprint>> {
    let root = string_column(batch, "root")?;
    let path = string_column(batch, "path")?;
    let symbol = string_column(batch, "symbol")?;
    let start = u32_column(batch, "start_line")?;
    let end = u32_column(batch, "end_line")?;
    let hash = string_column(batch, "content_hash")?;
    Ok((0..batch.num_rows())
        .map(|i| {
            (
                root[i].clone(),
                path[i].clone(),
                symbol[i].clone(),
                start[i],
                end[i],
                hash[i].clone(),
            )
        })
        .collect())
}

pub(crate) fn file_rows(batch: &RecordBatch) -> Result<Vec<FileRow>> {
    let root = string_column(batch, "root")?;
    let path = string_column(batch, "path")?;
    let size = u64_column(batch, "size")?;
    let mtime = column(batch, "mtime_ns")?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| StoreError::Data("column `mtime_ns` is not i64".into()))?
        .values()
        .to_vec();
    let hash = string_column(batch, "content_hash")?;
    let chunks = u32_column(batch, "chunks")?;
    Ok((0..batch.num_rows())
        .map(|i| FileRow {
            root: root[i].clone(),
            path: path[i].clone(),
            size: size[i],
            mtime_ns: mtime[i],
            content_hash: hash[i].clone(),
            chunks: chunks[i],
        })
        .collect())
}
