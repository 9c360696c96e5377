//! The on-disk index: an embedded LanceDB database with three tables:
//! - `chunks`: one row per searchable chunk (text, location, the hash of
//!   its embedding text), with the full-text index;
//! - `vectors`: one row per distinct embedded text, keyed by that hash, with
//!   the ANN index. Vectors are written after the text, without rewriting
//!   it: text search works (and stays indexed) while embeddings fill in,
//!   and a text seen before — a second checkout, an edit
//!   undone — is never embedded twice;
//! - `files`: one row per indexed file, so a second `quarry index` can skip
//!   what has not changed.
//!
//! The chunks table's Arrow schema metadata records the schema version, the
//! embedding model and its dimension. An index is only ever opened with the
//! model that wrote it: vectors of two models are never mixed. Indexes of
//! schema version 1 (vectors inside the chunks table) are upgraded in place
//! when opened.

mod arrow_rows;
mod cache;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use lancedb::index::scalar::{FtsIndexBuilder, FullTextSearchQuery};
use lancedb::index::vector::{IvfHnswSqIndexBuilder, IvfPqIndexBuilder, IvfRqIndexBuilder};
use lancedb::index::{Index, IndexType};
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::table::OptimizeAction;
use lancedb::{Connection, DistanceType, Table};

pub use arrow_rows::{ChunkRow, FileRow, Fingerprint, StoredChunk};
pub use cache::{CacheStats, EmbeddingCache, DEFAULT_CACHE_BYTES};

/// Version of the table layout. Bump it when columns change; an older index
/// is upgraded when opened, a newer one is refused with a message that says
/// how to rebuild it.
pub const SCHEMA_VERSION: u32 = 2;

const CHUNKS_TABLE: &str = "chunks";
const FILES_TABLE: &str = "files";
const VECTORS_TABLE: &str = "vectors";
/// The file [`WriterLock`] locks, inside the index directory.
const WRITER_LOCK: &str = ".quarry-writer.lock";
/// Present while an index is being created or destroyed (a rebuild): a
/// directory holding it is half-made or half-deleted and starts over.
const CREATING_MARKER: &str = ".quarry-creating";
/// When each root's last indexing run finished (JSON: root → Unix seconds).
/// A side file, not a table: it is advisory, written once per run, and an
/// index without it (older, or a lost write) only shows "never" until the
/// next run.
const INDEXED_AT_FILE: &str = ".quarry-indexed-at.json";
/// Present while an index changes model ([`Store::switch_model`]): the
/// target model, so an interrupted switch is finished on the next open.
const SWITCHING_MARKER: &str = ".quarry-switching-model.json";
const META_SCHEMA_VERSION: &str = "quarry.schema_version";
const META_MODEL: &str = "quarry.model";
const META_DIM: &str = "quarry.dim";
/// SQL `IN (...)` lists are split into groups of this many values so a
/// delete of thousands of paths stays one commit per group, not per file.
const DELETE_GROUP: usize = 400;
/// Vectors per commit when an index's vectors are copied into the cache.
const CACHE_COPY_GROUP: usize = 8_192;
/// Vectors no chunk refers to any more (edited or deleted code) are kept, so
/// undoing an edit or switching back to a branch embeds nothing, until they
/// outnumber this fraction of the referenced ones; then `optimize` drops them.
const ORPHAN_VECTORS_KEPT: f64 = 0.5;

/// Errors from opening, writing or querying the index.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory holds something other than a Quarry index.
    #[error("{} is not a Quarry index ({reason}); pass --db with an empty or new directory, or the directory of an existing Quarry index", dir.display())]
    NotAnIndex { dir: PathBuf, reason: String },
    /// The index was built with another embedding model.
    #[error("the index at {} was built with model `{index_model}` ({index_dim}-d) but `{requested_model}` ({requested_dim}-d) was requested; search it with its own model, or rebuild it with `quarry index --rebuild`", dir.display())]
    ModelMismatch {
        dir: PathBuf,
        index_model: String,
        index_dim: usize,
        requested_model: String,
        requested_dim: usize,
    },
    /// The index was written by a different (older or newer) Quarry.
    #[error("the index at {} has schema version {found}, this Quarry uses {expected}; rebuild it with `quarry index --rebuild`", dir.display())]
    SchemaMismatch {
        dir: PathBuf,
        found: u32,
        expected: u32,
    },
    /// The directory has Quarry's tables but they cannot be read.
    #[error("the index at {} is damaged ({reason}); rebuild it with `quarry index --rebuild DIR`", dir.display())]
    Damaged { dir: PathBuf, reason: String },
    /// No index exists where one was expected.
    #[error("no Quarry index at {}; create one with `quarry index DIR`", dir.display())]
    Missing { dir: PathBuf },
    /// A vector of the wrong length was handed to the store.
    #[error("vector has {got} dimensions, the index expects {expected}")]
    Dimension { got: usize, expected: usize },
    /// LanceDB failed.
    #[error("index database error while {action}: {source}")]
    Lance {
        action: &'static str,
        #[source]
        source: lancedb::Error,
    },
    /// Arrow data did not have the expected shape.
    #[error("index data error: {0}")]
    Data(String),
    /// File system failure around the index directory.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

fn lance(action: &'static str) -> impl FnOnce(lancedb::Error) -> StoreError {
    move |source| StoreError::Lance { action, source }
}

/// Which embedding model and layout an index was written with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IndexMeta {
    /// Layout version, see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Embedding model id, e.g. `sentence-transformers/all-MiniLM-L6-v2`.
    pub model: String,
    /// Vector dimension.
    pub dim: usize,
}

impl IndexMeta {
    /// Metadata for a new index written with `model` of `dim` dimensions.
    pub fn new(model: impl Into<String>, dim: usize) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            model: model.into(),
            dim,
        }
    }

    fn to_map(&self) -> HashMap<String, String> {
        HashMap::from([
            (
                META_SCHEMA_VERSION.to_string(),
                self.schema_version.to_string(),
            ),
            (META_MODEL.to_string(), self.model.clone()),
            (META_DIM.to_string(), self.dim.to_string()),
        ])
    }

    fn from_map(dir: &Path, map: &HashMap<String, String>) -> Result<Self> {
        let not_ours = |reason: &str| StoreError::NotAnIndex {
            dir: dir.to_path_buf(),
            reason: reason.to_string(),
        };
        let schema_version = map
            .get(META_SCHEMA_VERSION)
            .ok_or_else(|| not_ours("the chunks table carries no Quarry metadata"))?
            .parse()
            .map_err(|_| not_ours("unreadable schema version"))?;
        let model = map
            .get(META_MODEL)
            .cloned()
            .ok_or_else(|| not_ours("no model recorded"))?;
        let dim = map
            .get(META_DIM)
            .ok_or_else(|| not_ours("no dimension recorded"))?
            .parse()
            .map_err(|_| not_ours("unreadable dimension"))?;
        Ok(Self {
            schema_version,
            model,
            dim,
        })
    }
}

/// Filters every search honours.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Only chunks of these languages (empty: all).
    pub languages: Vec<String>,
    /// Only chunks under these roots (absolute paths; empty: all).
    pub roots: Vec<String>,
}

impl SearchFilter {
    fn to_sql(&self) -> Option<String> {
        let mut clauses = Vec::new();
        if !self.languages.is_empty() {
            clauses.push(format!("language IN ({})", sql_list(&self.languages)));
        }
        if !self.roots.is_empty() {
            clauses.push(format!("root IN ({})", sql_list(&self.roots)));
        }
        (!clauses.is_empty()).then(|| clauses.join(" AND "))
    }
}

/// One indexed root with its counts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RootStatus {
    /// Absolute path of the indexed directory.
    pub root: String,
    /// Indexed files under it.
    pub files: usize,
    /// Chunks under it.
    pub chunks: usize,
    /// Chunks under it still without vectors.
    pub pending: usize,
    /// Unix seconds when its last indexing run finished, if known.
    pub last_indexed: Option<u64>,
}

/// A summary of the whole index, for `quarry status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IndexStatus {
    /// Where the index lives.
    pub db: PathBuf,
    /// Model and layout.
    pub meta: IndexMeta,
    /// Per-root counts.
    pub roots: Vec<RootStatus>,
    /// Total indexed files.
    pub files: usize,
    /// Total chunks.
    pub chunks: usize,
    /// Chunks written but not embedded yet (searchable by text only).
    pub pending: usize,
    /// Distinct embedded texts (the vectors table's rows; identical chunks
    /// share one).
    pub vectors: usize,
    /// Bytes on disk of the whole index directory.
    pub bytes: u64,
    /// Live versions of the chunks table (LanceDB keeps one per commit until pruned).
    pub versions: usize,
}

/// Where an index's bytes are, so growth can be seen and explained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiskUsage {
    /// Chunk rows (text and metadata), including data files that deletions
    /// made obsolete and compaction has not removed yet.
    pub chunk_data: u64,
    /// Vector rows.
    pub vector_data: u64,
    /// The full-text (inverted) index.
    pub text_index: u64,
    /// The ANN vector index.
    pub vector_index: u64,
    /// Everything else: file records, manifests, transactions, deletion files.
    pub other: u64,
}

impl DiskUsage {
    /// All of it.
    pub fn total(&self) -> u64 {
        self.chunk_data + self.vector_data + self.text_index + self.vector_index + self.other
    }
}

/// The right to write an index, held by one process at a time: a second
/// indexer waits instead of interleaving its commits with the first's.
/// The operating system releases the lock when its holder exits, however it
/// exits, so a crashed or killed indexer never leaves an index locked.
#[derive(Debug)]
pub struct WriterLock {
    _file: std::fs::File,
}

impl WriterLock {
    /// Takes the write lock of the index at `dir`, creating the directory if
    /// needed. While another process holds it, calls `on_wait` once (to say
    /// so) and waits for it.
    pub fn acquire(dir: &Path, on_wait: impl FnOnce()) -> Result<Self> {
        let io = |action: &'static str| {
            move |source| StoreError::Io {
                action,
                path: dir.to_path_buf(),
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io("creating index directory"))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(WRITER_LOCK))
            .map_err(io("opening the write lock of"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                on_wait();
                file.lock().map_err(io("waiting for the write lock of"))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io("locking")(e));
            }
        }
        Ok(Self { _file: file })
    }
}

/// An open index.
pub struct Store {
    dir: PathBuf,
    meta: IndexMeta,
    chunks: Table,
    files: Table,
    vectors: Table,
    /// The last count of chunks without vectors, with the (chunks, vectors)
    /// table versions it was counted at: searches ask for it every time.
    pending: Mutex<Option<((u64, u64), usize)>>,
    /// Set once the full-text index is known to exist (it is never dropped),
    /// so searches stop asking LanceDB for its index list.
    has_text_index: AtomicBool,
    /// Row count from which [`Store::optimize`] builds an ANN vector index.
    ann_min_rows: usize,
    ann_params: AnnParams,
    _conn: Connection,
}

/// Row count from which [`Store::optimize`] builds an approximate (ANN) vector
/// index. Below it an exact scan is fast enough and needs no training; above it
/// exact search grows linearly with the index.
pub const ANN_MIN_ROWS: usize = 20_000;

/// The ANN index [`Store::optimize`] builds: RaBitQ codes of one bit per
/// dimension. Measured with `quarry-bench recall --build` on a 186k-vector
/// index (README): a ninth of IVF-HNSW-SQ's size (12 vs 114 MB), built in a
/// fifth of the time, recall@10 0.99 instead of 0.91 at the same latency,
/// once the stored vectors re-rank its candidates.
pub const ANN_KIND: AnnKind = AnnKind::IvfRq { bits: 1 };

/// How an ANN vector query trades recall for time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnParams {
    /// IVF partitions searched; `None` leaves it to LanceDB's adaptive probing.
    pub nprobes: Option<usize>,
    /// HNSW search breadth within a partition (HNSW indexes only); `None`:
    /// LanceDB's default.
    pub ef: Option<usize>,
    /// Candidates per requested result re-ranked with the stored vectors.
    pub refine_factor: u32,
}

impl Default for AnnParams {
    /// Chosen with `quarry-bench recall` on a 186k-chunk index (README): the
    /// one-bit codes find the neighbours, the stored vectors order them;
    /// re-ranking 10 candidates per result gives recall@10 0.99 (4: 0.96,
    /// 20: 0.997) at about 30 ms, and more partitions add little.
    fn default() -> Self {
        Self {
            nprobes: None,
            ef: None,
            refine_factor: 10,
        }
    }
}

/// The kind of ANN index built over the vectors: how each vector is
/// compressed and how candidates are found. Searches re-rank the
/// candidates with the stored vectors ([`AnnParams::refine_factor`]), so
/// a coarser code costs recall only where that re-ranking misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnKind {
    /// IVF partitions, an HNSW graph in each, 8-bit scalar codes (a byte
    /// per dimension plus the graph's edges).
    HnswSq,
    /// IVF partitions with product-quantised codes of `sub_vectors` bytes.
    IvfPq { sub_vectors: u32 },
    /// IVF partitions with RaBitQ codes of `bits` per dimension.
    IvfRq { bits: u32 },
}

impl AnnKind {
    /// The LanceDB index definition, always by cosine distance.
    fn index(self) -> Index {
        match self {
            AnnKind::HnswSq => Index::IvfHnswSq(
                IvfHnswSqIndexBuilder::default().distance_type(DistanceType::Cosine),
            ),
            AnnKind::IvfPq { sub_vectors } => Index::IvfPq(
                IvfPqIndexBuilder::default()
                    .distance_type(DistanceType::Cosine)
                    .num_sub_vectors(sub_vectors),
            ),
            AnnKind::IvfRq { bits } => Index::IvfRq(
                IvfRqIndexBuilder::default()
                    .distance_type(DistanceType::Cosine)
                    .num_bits(bits),
            ),
        }
    }

    /// The LanceDB index type this kind builds.
    pub fn index_type(self) -> IndexType {
        match self {
            AnnKind::HnswSq => IndexType::IvfHnswSq,
            AnnKind::IvfPq { .. } => IndexType::IvfPq,
            AnnKind::IvfRq { .. } => IndexType::IvfRq,
        }
    }
}

impl std::fmt::Display for AnnKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnnKind::HnswSq => write!(f, "IVF-HNSW-SQ"),
            AnnKind::IvfPq { sub_vectors } => write!(f, "IVF-PQ {sub_vectors}×8 bit"),
            AnnKind::IvfRq { bits } => write!(f, "IVF-RaBitQ {bits} bit/dim"),
        }
    }
}

impl std::str::FromStr for AnnKind {
    type Err = String;

    /// `hnsw-sq`, `pq:N` (N sub-vectors) or `rq:B` (B bits per dimension).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let number = |v: &str| v.parse::<u32>().map_err(|_| format!("not a number: {v}"));
        match s.split_once(':') {
            None if s == "hnsw-sq" => Ok(AnnKind::HnswSq),
            Some(("pq", n)) => Ok(AnnKind::IvfPq {
                sub_vectors: number(n)?,
            }),
            Some(("rq", b)) => Ok(AnnKind::IvfRq { bits: number(b)? }),
            _ => Err(format!("unknown ANN kind {s:?}: hnsw-sq, pq:N or rq:B")),
        }
    }
}

impl Store {
    /// Opens the index at `dir`, creating it when the directory is missing,
    /// empty, or left half-made by an interrupted creation (callers that may
    /// run beside another writer hold the [`WriterLock`]). An existing index
    /// must have been written with `meta`'s model.
    pub async fn open_or_create(dir: &Path, meta: &IndexMeta) -> Result<Self> {
        match Self::open(dir).await {
            Ok(store) => {
                store.check_model(meta)?;
                Ok(store)
            }
            Err(StoreError::Missing { .. }) => Self::create(dir, meta).await,
            Err(e) => Err(e),
        }
    }

    /// Opens an existing index, whatever model it was written with.
    pub async fn open(dir: &Path) -> Result<Self> {
        let state = inspect_dir(dir)?;
        match state {
            DirState::Missing | DirState::Empty | DirState::Creating => {
                return Err(StoreError::Missing {
                    dir: dir.to_path_buf(),
                })
            }
            DirState::Foreign(reason) => {
                return Err(StoreError::NotAnIndex {
                    dir: dir.to_path_buf(),
                    reason,
                })
            }
            DirState::Damaged(reason) => {
                return Err(StoreError::Damaged {
                    dir: dir.to_path_buf(),
                    reason,
                })
            }
            DirState::Quarry => {}
        }
        let conn = connect(dir).await?;
        let chunks = open_table(&conn, dir, CHUNKS_TABLE).await?;
        let files = open_table(&conn, dir, FILES_TABLE).await?;
        if let Some(target) = read_switching(dir)? {
            tracing::info!(
                "finishing the interrupted switch of {} to {}",
                dir.display(),
                target.model
            );
            finish_switch(&conn, dir, &chunks, &target).await?;
        }
        let schema = chunks.schema().await.map_err(lance("reading the schema"))?;
        let mut meta = IndexMeta::from_map(dir, schema.metadata())?;
        if meta.schema_version > SCHEMA_VERSION || meta.schema_version == 0 {
            return Err(StoreError::SchemaMismatch {
                dir: dir.to_path_buf(),
                found: meta.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        if meta.schema_version == 1 {
            meta.schema_version = SCHEMA_VERSION;
            upgrade_v1(&conn, dir, &chunks, &schema, &meta).await?;
        }
        let vectors = open_table(&conn, dir, VECTORS_TABLE).await?;
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
            chunks,
            files,
            vectors,
            pending: Mutex::new(None),
            has_text_index: AtomicBool::new(false),
            ann_min_rows: ANN_MIN_ROWS,
            ann_params: AnnParams::default(),
            _conn: conn,
        })
    }

    async fn create(dir: &Path, meta: &IndexMeta) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            action: "creating index directory",
            path: dir.to_path_buf(),
            source,
        })?;
        // Until every table exists, the marker says the directory is
        // half-made; what an interrupted creation left goes first.
        mark_creating(dir)?;
        remove_index_files(dir)?;
        let conn = connect(dir).await?;
        let chunk_schema = arrow_rows::chunk_schema(meta.to_map());
        let file_schema = arrow_rows::file_schema();
        let files = conn
            .create_empty_table(FILES_TABLE, file_schema)
            .execute()
            .await
            .map_err(lance("creating the files table"))?;
        let vectors = conn
            .create_empty_table(VECTORS_TABLE, arrow_rows::vector_schema(meta.dim))
            .execute()
            .await
            .map_err(lance("creating the vectors table"))?;
        let chunks = conn
            .create_empty_table(CHUNKS_TABLE, chunk_schema)
            .execute()
            .await
            .map_err(lance("creating the chunks table"))?;
        let marker = dir.join(CREATING_MARKER);
        std::fs::remove_file(&marker).map_err(|source| StoreError::Io {
            action: "finishing the creation of",
            path: marker,
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            meta: meta.clone(),
            chunks,
            files,
            vectors,
            pending: Mutex::new(None),
            has_text_index: AtomicBool::new(false),
            ann_min_rows: ANN_MIN_ROWS,
            ann_params: AnnParams::default(),
            _conn: conn,
        })
    }

    /// Whether the chunks table has its full-text index (asked of LanceDB
    /// until the answer is yes, then remembered).
    async fn has_text_index(&self) -> Result<bool> {
        if self.has_text_index.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let found = has_index_on(&self.chunks, "text").await?;
        self.has_text_index.store(found, Ordering::Relaxed);
        Ok(found)
    }

    /// Changes the row count from which `optimize` builds the ANN vector index
    /// (default [`ANN_MIN_ROWS`]); for benchmarks and tests.
    pub fn set_ann_min_rows(&mut self, rows: usize) {
        self.ann_min_rows = rows;
    }

    /// Changes how ANN queries trade recall for time (default
    /// [`AnnParams::default`]); for benchmarks.
    pub fn set_ann_params(&mut self, params: AnnParams) {
        self.ann_params = params;
    }

    /// Whether the vectors have an ANN index.
    pub async fn has_vector_index(&self) -> Result<bool> {
        Ok(self.vector_index_type().await?.is_some())
    }

    /// The type of the vectors' ANN index, if they have one.
    pub async fn vector_index_type(&self) -> Result<Option<IndexType>> {
        Ok(self
            .vectors
            .list_indices()
            .await
            .map_err(lance("listing indices"))?
            .into_iter()
            .find(|index| index.columns.iter().any(|c| c == "vector"))
            .map(|index| index.index_type))
    }

    /// Deletes the index at `dir` (only if it is a Quarry index or empty): its
    /// tables go, the directory and its write lock (which the caller may be
    /// holding, to rebuild) stay.
    pub fn destroy(dir: &Path) -> Result<()> {
        match inspect_dir(dir)? {
            DirState::Missing => Ok(()),
            DirState::Foreign(reason) => Err(StoreError::NotAnIndex {
                dir: dir.to_path_buf(),
                reason,
            }),
            DirState::Empty | DirState::Creating | DirState::Quarry | DirState::Damaged(_) => {
                // The marker goes first: a rebuild killed half-way leaves a
                // directory that starts over, never a damaged index.
                mark_creating(dir)?;
                remove_index_files(dir)
            }
        }
    }

    /// Changes the model this index is embedded with, keeping what does
    /// not depend on it: files, chunks and the full-text index stay, the
    /// vectors go (the caller saves them to the old model's embedding cache
    /// first), and every chunk waits for the new model's vector. Crash-safe:
    /// a marker names the target until the switch is done, and an open
    /// finishes an interrupted one.
    pub async fn switch_model(self, meta: &IndexMeta) -> Result<Store> {
        let dir = self.dir.clone();
        let marker = dir.join(SWITCHING_MARKER);
        let staged = dir.join(format!("{SWITCHING_MARKER}.tmp"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io {
                action: "recording a model switch in",
                path,
                source,
            }
        };
        let json = serde_json::json!({ "model": meta.model, "dim": meta.dim }).to_string();
        std::fs::write(&staged, json).map_err(io(&staged))?;
        std::fs::rename(&staged, &marker).map_err(io(&marker))?;
        let conn = connect(&dir).await?;
        finish_switch(&conn, &dir, &self.chunks, meta).await?;
        drop(self);
        Store::open(&dir).await
    }

    /// Model and layout of this index.
    pub fn meta(&self) -> &IndexMeta {
        &self.meta
    }

    /// Directory of this index.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Refuses an index written by another model than `wanted`.
    pub fn check_model(&self, wanted: &IndexMeta) -> Result<()> {
        if self.meta.model != wanted.model || self.meta.dim != wanted.dim {
            return Err(StoreError::ModelMismatch {
                dir: self.dir.clone(),
                index_model: self.meta.model.clone(),
                index_dim: self.meta.dim,
                requested_model: wanted.model.clone(),
                requested_dim: wanted.dim,
            });
        }
        Ok(())
    }

    /// The files recorded under `root`, keyed by relative path.
    pub async fn files_under(&self, root: &str) -> Result<HashMap<String, FileRow>> {
        let batches = collect(
            &self
                .files
                .query()
                .only_if(format!("root = {}", sql_str(root))),
            "reading the files table",
        )
        .await?;
        let mut out = HashMap::new();
        for batch in &batches {
            for row in arrow_rows::file_rows(batch)? {
                out.insert(row.path.clone(), row);
            }
        }
        Ok(out)
    }

    /// Replaces everything recorded for `paths` under `root` with `files`
    /// and `chunks` (which must all belong to `root`). Paths in `paths`
    /// without a new [`FileRow`] are removed. Vectors given with the chunks
    /// are stored unless their text has one already. A handful of commits
    /// per call, however many files: callers batch many files into one call.
    pub async fn replace_files(
        &self,
        root: &str,
        paths: &[String],
        files: &[FileRow],
        chunks: &[ChunkRow],
    ) -> Result<()> {
        for chunk in chunks.iter().filter(|c| !c.vector.is_empty()) {
            self.check_dim(&chunk.vector)?;
        }
        // Chunks first, file records last: an interrupted write leaves a
        // file whose record is stale, so the next run re-indexes it.
        self.delete_paths(&self.chunks, root, paths).await?;
        if !chunks.is_empty() {
            let schema = self
                .chunks
                .schema()
                .await
                .map_err(lance("reading schema"))?;
            let batch = arrow_rows::chunk_batch(schema, chunks)?;
            self.chunks
                .add(batch)
                .execute()
                .await
                .map_err(lance("writing chunks"))?;
        }
        let given: Vec<(String, Vec<f32>)> = chunks
            .iter()
            .filter(|c| !c.vector.is_empty())
            .map(|c| (c.chunk.content_hash.clone(), c.vector.clone()))
            .collect();
        if !given.is_empty() {
            let known = self.vector_hashes().await?;
            let mut seen = HashSet::new();
            let new: Vec<(String, Vec<f32>)> = given
                .into_iter()
                .filter(|(hash, _)| !known.contains(hash) && seen.insert(hash.clone()))
                .collect();
            self.add_vectors(&new).await?;
        }
        self.delete_paths(&self.files, root, paths).await?;
        if !files.is_empty() {
            let batch = arrow_rows::file_batch(files)?;
            self.files
                .add(batch)
                .execute()
                .await
                .map_err(lance("writing file records"))?;
        }
        Ok(())
    }

    /// Refuses a vector of another length than the index's.
    fn check_dim(&self, vector: &[f32]) -> Result<()> {
        if vector.len() == self.meta.dim {
            return Ok(());
        }
        Err(StoreError::Dimension {
            got: vector.len(),
            expected: self.meta.dim,
        })
    }

    /// Stores the vectors of texts, keyed by the texts' hashes (the chunks'
    /// `content_hash`), in one commit. Callers pass hashes that have no vector
    /// yet ([`Store::vector_hashes`]); a duplicate is harmless (searches use
    /// one of them) but wastes space.
    pub async fn add_vectors(&self, vectors: &[(String, Vec<f32>)]) -> Result<()> {
        if vectors.is_empty() {
            return Ok(());
        }
        for (_, vector) in vectors {
            self.check_dim(vector)?;
        }
        let rows: Vec<(&str, &[f32])> = vectors
            .iter()
            .map(|(h, v)| (h.as_str(), v.as_slice()))
            .collect();
        let batch = arrow_rows::vector_batch(self.meta.dim, &rows)?;
        self.vectors
            .add(batch)
            .execute()
            .await
            .map_err(lance("writing vectors"))?;
        Ok(())
    }

    /// The hashes of every text that has a vector: what an indexer need not
    /// embed again.
    pub async fn vector_hashes(&self) -> Result<HashSet<String>> {
        distinct_strings(self.vectors.query(), "hash", "reading vector hashes").await
    }

    /// Which of `hashes` have a vector: the lookup of a small change (a
    /// watcher's batch), which must not read every hash of a large index.
    pub async fn vectors_among(&self, hashes: &[String]) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for group in hashes.chunks(DELETE_GROUP) {
            let query = self
                .vectors
                .query()
                .only_if(format!("hash IN ({})", sql_list(group)));
            out.extend(distinct_strings(query, "hash", "looking up vectors").await?);
        }
        Ok(out)
    }

    /// Stores the vectors `cache` has for `hashes` (texts this index has no
    /// vector for) in this index, a group per commit, and returns the hashes
    /// it stored: those need no embedding. A cache of another model gives
    /// nothing. The cache is only a cache: when it cannot be read, the
    /// error is logged and what was stored so far is returned; failing to
    /// write the index is an error.
    pub async fn fill_from_cache(
        &self,
        cache: &EmbeddingCache,
        hashes: &[String],
    ) -> Result<HashSet<String>> {
        let mut stored = HashSet::new();
        if cache.model() != self.meta.model || cache.dim() != self.meta.dim {
            return Ok(stored);
        }
        let unreadable = |e: StoreError| {
            tracing::warn!(cache = %cache.dir().display(), "embedding cache unreadable: {e}");
        };
        let mut hits = match cache.hits(hashes).await {
            Ok(hits) => hits,
            Err(e) => {
                unreadable(e);
                return Ok(stored);
            }
        };
        let mut group: Vec<(String, Vec<f32>)> = Vec::new();
        loop {
            match hits.next().await {
                Ok(Some(batch)) => group.extend(batch),
                Ok(None) => break,
                Err(e) => {
                    unreadable(e);
                    break;
                }
            }
            if group.len() >= CACHE_COPY_GROUP {
                let full = std::mem::take(&mut group);
                self.add_vectors(&full).await?;
                stored.extend(full.into_iter().map(|(h, _)| h));
            }
        }
        self.add_vectors(&group).await?;
        stored.extend(group.into_iter().map(|(h, _)| h));
        Ok(stored)
    }

    /// Copies this index's vectors that `cache` lacks into it, a group at a
    /// time: what a rebuild does first, so the vectors of an index made
    /// before the cache existed (or while it was off) are not lost with it.
    /// Returns how many were copied.
    pub async fn save_vectors_to(&self, cache: &EmbeddingCache) -> Result<usize> {
        if cache.model() != self.meta.model || cache.dim() != self.meta.dim {
            return Ok(0);
        }
        let ours = self.vector_hashes().await?;
        let cached = cache.contains_among(&ours).await?;
        if cached.len() == ours.len() {
            return Ok(0);
        }
        let mut stream = self
            .vectors
            .query()
            .select(Select::columns(&["hash", "vector"]))
            .execute()
            .await
            .map_err(lance("reading vectors"))?;
        let mut copied = 0;
        let mut group = Vec::new();
        while let Some(batch) = stream.try_next().await.map_err(lance("reading vectors"))? {
            let hashes = arrow_rows::string_column(&batch, "hash")?;
            let vectors = arrow_rows::vector_column(&batch, "vector")?;
            group.extend(
                hashes
                    .into_iter()
                    .zip(vectors)
                    .filter(|(hash, _)| !cached.contains(hash)),
            );
            if group.len() >= CACHE_COPY_GROUP {
                copied += group.len();
                cache.put(&std::mem::take(&mut group)).await?;
            }
        }
        copied += group.len();
        cache.put(&group).await?;
        Ok(copied)
    }

    /// Rewrites the file records of `paths` under `root` without touching
    /// their chunks: for files whose mtime changed but whose bytes did not.
    pub async fn update_file_records(
        &self,
        root: &str,
        paths: &[String],
        files: &[FileRow],
    ) -> Result<()> {
        self.delete_paths(&self.files, root, paths).await?;
        if !files.is_empty() {
            let batch = arrow_rows::file_batch(files)?;
            self.files
                .add(batch)
                .execute()
                .await
                .map_err(lance("writing file records"))?;
        }
        Ok(())
    }

    async fn delete_paths(&self, table: &Table, root: &str, paths: &[String]) -> Result<()> {
        for group in paths.chunks(DELETE_GROUP) {
            let predicate = format!("root = {} AND path IN ({})", sql_str(root), sql_list(group));
            table
                .delete(predicate.as_str())
                .await
                .map_err(lance("deleting stale rows"))?;
        }
        Ok(())
    }

    /// Removes every row of `root`.
    pub async fn remove_root(&self, root: &str) -> Result<()> {
        let predicate = format!("root = {}", sql_str(root));
        self.chunks
            .delete(predicate.as_str())
            .await
            .map_err(lance("removing a root's chunks"))?;
        self.files
            .delete(predicate.as_str())
            .await
            .map_err(lance("removing a root's files"))?;
        let mut indexed_at = read_indexed_at(&self.dir);
        if indexed_at.remove(root).is_some() {
            write_indexed_at(&self.dir, &indexed_at)?;
        }
        Ok(())
    }

    /// Records that an indexing run of `root` finished now (shown as "last
    /// indexed" by `quarry status` and the app).
    pub fn record_indexed(&self, root: &str) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut indexed_at = read_indexed_at(&self.dir);
        indexed_at.insert(root.to_string(), now);
        write_indexed_at(&self.dir, &indexed_at)
    }

    /// Builds or refreshes the full-text index, builds the ANN index once
    /// there are enough vectors, drops vectors no chunk needs once they are
    /// many, compacts every table and prunes versions older than the one
    /// just written. Called once after an indexing run.
    pub async fn optimize(&self) -> Result<()> {
        self.ensure_text_index().await?;
        self.ensure_scalar_indexes().await?;
        let hashes = self.vector_hashes().await?;
        let referenced = self.chunk_hashes(None).await?;
        let orphans: Vec<String> = hashes
            .iter()
            .filter(|h| !referenced.contains(h.as_str()))
            .cloned()
            .collect();
        if orphans.len() as f64 > ORPHAN_VECTORS_KEPT * referenced.len().max(1) as f64 {
            tracing::info!(orphans = orphans.len(), "dropping vectors no chunk uses");
            for group in orphans.chunks(DELETE_GROUP * 10) {
                let predicate = format!("hash IN ({})", sql_list(group));
                self.vectors
                    .delete(predicate.as_str())
                    .await
                    .map_err(lance("dropping unused vectors"))?;
            }
        }
        let pending = referenced.iter().filter(|h| !hashes.contains(*h)).count();
        let vectors = referenced.len() - pending;
        // The ANN index is trained once every chunk has its vector, so its
        // partitions fit the whole code base; later optimisations fold new
        // vectors into it, and vectors not yet in it are still searched
        // exactly, so results never miss fresh chunks.
        let built = self.vector_index_type().await?;
        if pending == 0 && vectors >= self.ann_min_rows && built.is_none() {
            tracing::info!(vectors, "building the vector index");
            self.build_vector_index(ANN_KIND).await?;
        } else if built.is_some_and(|t| t != ANN_KIND.index_type()) {
            // An index of an earlier kind (IVF-HNSW-SQ before 2026-11-22:
            // nine times the size, lower recall) is replaced once.
            tracing::info!(vectors, "replacing the vector index with a smaller one");
            self.build_vector_index(ANN_KIND).await?;
        }
        for table in [&self.chunks, &self.vectors, &self.files] {
            table
                .optimize(OptimizeAction::All)
                .await
                .map_err(lance("optimising"))?;
            prune_old_versions(table, "pruning old versions").await?;
        }
        Ok(())
    }

    /// Builds (or replaces) the ANN index over the vectors, of `kind`, and
    /// prunes the files of the index it replaces. [`Store::optimize`]
    /// builds [`ANN_KIND`]; benchmarks compare the others on a real index.
    pub async fn build_vector_index(&self, kind: AnnKind) -> Result<()> {
        self.vectors
            .create_index(&["vector"], kind.index())
            .replace(true)
            .execute()
            .await
            .map_err(lance("building the vector index"))?;
        prune_old_versions(&self.vectors, "pruning old versions").await
    }

    /// Builds the indexes on the columns a small change filters by, where
    /// missing: `path` (a watcher's batch deletes and looks up its files'
    /// rows), `root` (per-root counts) and the vectors' `hash` (which texts
    /// have a vector). Without them each batch reads whole columns of a
    /// large index. Rows appended later are scanned until the next
    /// `optimize` folds them in.
    async fn ensure_scalar_indexes(&self) -> Result<()> {
        // Few distinct roots: a bitmap each; paths and hashes: sorted.
        let wanted = [
            (&self.chunks, "path", ScalarKind::BTree),
            (&self.chunks, "root", ScalarKind::Bitmap),
            (&self.files, "path", ScalarKind::BTree),
            (&self.vectors, "hash", ScalarKind::BTree),
        ];
        for (table, column, kind) in wanted {
            if has_index_on(table, column).await?
                || table
                    .count_rows(None)
                    .await
                    .map_err(lance("counting rows"))?
                    == 0
            {
                continue;
            }
            let index = match kind {
                ScalarKind::Bitmap => Index::Bitmap(Default::default()),
                ScalarKind::BTree => Index::BTree(Default::default()),
            };
            table
                .create_index(&[column], index)
                .execute()
                .await
                .map_err(lance("indexing a column"))?;
        }
        Ok(())
    }

    /// Nearest chunks to `vector` by cosine distance, best first, with
    /// their similarity (1 - distance). Uses the ANN index when there is one.
    pub async fn vector_search(
        &self,
        vector: &[f32],
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<(StoredChunk, f32)>> {
        self.vector_query(vector, limit, filter, false).await
    }

    /// Like [`Store::vector_search`], always exact (a full scan): the ground
    /// truth that ANN recall is measured against.
    pub async fn vector_search_exact(
        &self,
        vector: &[f32],
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<(StoredChunk, f32)>> {
        self.vector_query(vector, limit, filter, true).await
    }

    async fn vector_query(
        &self,
        vector: &[f32],
        limit: usize,
        filter: &SearchFilter,
        exact: bool,
    ) -> Result<Vec<(StoredChunk, f32)>> {
        self.check_dim(vector)?;
        // Nearest texts first, then their chunks. Identical chunks share a
        // vector and filters apply to chunks, so ask for more texts than
        // results, and widen the search while filters leave too few.
        let filter_sql = filter.to_sql();
        let mut texts = if filter_sql.is_some() {
            limit * 8
        } else {
            limit * 2
        }
        .max(limit + 10);
        loop {
            let nearest = self.nearest_texts(vector, texts, exact).await?;
            let exhausted = nearest.len() < texts;
            let mut out = self.chunks_of(&nearest, filter_sql.as_deref()).await?;
            if out.len() >= limit || exhausted {
                out.truncate(limit);
                return Ok(out);
            }
            texts *= 4;
        }
    }

    /// The `limit` stored texts nearest to `vector`: (hash, similarity), best first.
    async fn nearest_texts(
        &self,
        vector: &[f32],
        limit: usize,
        exact: bool,
    ) -> Result<Vec<(String, f32)>> {
        let mut query = self
            .vectors
            .query()
            .nearest_to(vector)
            .map_err(lance("building the vector query"))?
            .distance_type(DistanceType::Cosine)
            .select(Select::columns(&["hash", "_distance"]))
            .limit(limit);
        query = if exact {
            query.bypass_vector_index()
        } else {
            let params = self.ann_params;
            query = query.refine_factor(params.refine_factor);
            if let Some(nprobes) = params.nprobes {
                query = query
                    .nprobes(nprobes)
                    .map_err(lance("building the vector query"))?;
            }
            if let Some(ef) = params.ef {
                query = query.ef(ef);
            }
            query
        };
        let batches = collect(&query, "running the vector query").await?;
        let mut out = Vec::new();
        for batch in &batches {
            let hashes = arrow_rows::string_column(batch, "hash")?;
            let distances = arrow_rows::f32_column(batch, "_distance")?;
            out.extend(
                hashes
                    .into_iter()
                    .zip(distances.into_iter().map(|d| 1.0 - d)),
            );
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }

    /// The chunks whose text is one of `nearest` (and that pass `filter`),
    /// ordered by their text's similarity.
    async fn chunks_of(
        &self,
        nearest: &[(String, f32)],
        filter: Option<&str>,
    ) -> Result<Vec<(StoredChunk, f32)>> {
        if nearest.is_empty() {
            return Ok(Vec::new());
        }
        let similarity: HashMap<&str, f32> =
            nearest.iter().map(|(h, s)| (h.as_str(), *s)).collect();
        let hashes: Vec<String> = similarity.keys().map(|h| h.to_string()).collect();
        let predicate = format!("content_hash IN ({})", sql_list(&hashes));
        let chunks = self
            .chunks_where(predicate, filter, None, "reading the nearest chunks")
            .await?;
        let mut out: Vec<(StoredChunk, f32)> = chunks
            .into_iter()
            .map(|chunk| {
                let score = similarity.get(chunk.content_hash.as_str()).copied();
                (chunk, score.unwrap_or(f32::MIN))
            })
            .collect();
        out.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| a.0.path.cmp(&b.0.path))
                .then_with(|| a.0.start_line.cmp(&b.0.start_line))
        });
        Ok(out)
    }

    /// Best full-text (BM25) matches for `terms`, best first, with scores.
    /// An index without a full-text index yet (nothing indexed) returns
    /// nothing rather than failing.
    pub async fn text_search(
        &self,
        terms: &str,
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<(StoredChunk, f32)>> {
        if terms.trim().is_empty() || !self.has_text_index().await? {
            return Ok(Vec::new());
        }
        let fts = FullTextSearchQuery::new(terms.to_string())
            .with_column("text".to_string())
            .map_err(|e| StoreError::Data(format!("building the full-text query: {e}")))?;
        let mut query = self
            .chunks
            .query()
            .full_text_search(fts)
            .select(Select::columns(&arrow_rows::with_column(
                arrow_rows::RESULT_COLUMNS,
                "_score",
            )))
            .limit(limit);
        if let Some(sql) = filter.to_sql() {
            query = query.only_if(sql);
        }
        let batches = collect(&query, "running the full-text query").await?;
        let mut out = Vec::new();
        for batch in &batches {
            let scores = arrow_rows::f32_column(batch, "_score")?;
            for (row, score) in arrow_rows::stored_chunks(batch)?.into_iter().zip(scores) {
                out.push((row, score));
            }
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }

    /// Chunks whose symbol is one of `names` or ends with `.name` / `::name`
    /// (so `parse` finds `Config::parse` and `Loader.parse`). Exact
    /// identifier lookups make sure a chunk that defines a name the query
    /// mentions is a candidate even when neither retriever ranked it.
    pub async fn symbol_lookup(
        &self,
        names: &[String],
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<StoredChunk>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut alternatives = vec![format!("symbol IN ({})", sql_list(names))];
        for name in names {
            // `_` is a LIKE wildcard: the match is a superset, and callers
            // compare names exactly. Names never contain `%`.
            alternatives.push(format!("symbol LIKE {}", sql_str(&format!("%.{name}"))));
            alternatives.push(format!("symbol LIKE {}", sql_str(&format!("%::{name}"))));
        }
        let predicate = format!("({})", alternatives.join(" OR "));
        self.chunks_where(
            predicate,
            filter.to_sql().as_deref(),
            Some(limit),
            "looking up symbols",
        )
        .await
    }

    /// The chunks matching `predicate` and `filter` (SQL), up to `limit`.
    async fn chunks_where(
        &self,
        predicate: String,
        filter: Option<&str>,
        limit: Option<usize>,
        action: &'static str,
    ) -> Result<Vec<StoredChunk>> {
        let predicate = match filter {
            Some(sql) => format!("{predicate} AND {sql}"),
            None => predicate,
        };
        let mut query = self
            .chunks
            .query()
            .only_if(predicate)
            .select(Select::columns(arrow_rows::RESULT_COLUMNS));
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        let mut out = Vec::new();
        for batch in &collect(&query, action).await? {
            out.extend(arrow_rows::stored_chunks(batch)?);
        }
        Ok(out)
    }

    /// The indexed roots (absolute paths), sorted.
    pub async fn roots(&self) -> Result<Vec<String>> {
        let roots = distinct_strings(self.files.query(), "root", "reading roots").await?;
        let mut roots: Vec<String> = roots.into_iter().collect();
        roots.sort();
        Ok(roots)
    }

    /// Number of chunks written but not embedded yet (under `root`, or anywhere).
    pub async fn pending_chunks(&self, root: Option<&str>) -> Result<usize> {
        let versions = match root {
            Some(_) => None,
            None => Some((
                self.chunks
                    .version()
                    .await
                    .map_err(lance("reading the version"))?,
                self.vectors
                    .version()
                    .await
                    .map_err(lance("reading the version"))?,
            )),
        };
        if let Some(versions) = versions {
            if let Some((at, count)) = *self.pending.lock().unwrap_or_else(|e| e.into_inner()) {
                if at == versions {
                    return Ok(count);
                }
            }
        }
        let hashes = self.vector_hashes().await?;
        let batches = collect(
            &self
                .chunks_in(root)
                .select(Select::columns(&["content_hash"])),
            "counting chunks awaiting vectors",
        )
        .await?;
        let mut count = 0;
        for batch in &batches {
            count += arrow_rows::string_column(batch, "content_hash")?
                .iter()
                .filter(|h| !hashes.contains(*h))
                .count();
        }
        if let Some(versions) = versions {
            *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some((versions, count));
        }
        Ok(count)
    }

    /// Files under `root` with chunks not embedded yet (left by an interrupted
    /// run): the indexer processes them again even though they did not change.
    pub async fn files_with_pending_chunks(&self, root: &str) -> Result<HashSet<String>> {
        let hashes = self.vector_hashes().await?;
        let batches = collect(
            &self
                .chunks_in(Some(root))
                .select(Select::columns(&["path", "content_hash"])),
            "finding chunks awaiting vectors",
        )
        .await?;
        let mut out = HashSet::new();
        for batch in &batches {
            let paths = arrow_rows::string_column(batch, "path")?;
            let content = arrow_rows::string_column(batch, "content_hash")?;
            for (path, hash) in paths.into_iter().zip(content) {
                if !hashes.contains(&hash) {
                    out.insert(path);
                }
            }
        }
        Ok(out)
    }

    /// Like [`Store::files_with_pending_chunks`], among `paths` only.
    pub async fn files_with_pending_chunks_among(
        &self,
        root: &str,
        paths: &[String],
    ) -> Result<HashSet<String>> {
        let mut rows = Vec::new();
        for group in paths.chunks(DELETE_GROUP) {
            let query = self.chunks.query().only_if(format!(
                "root = {} AND path IN ({})",
                sql_str(root),
                sql_list(group)
            ));
            let batches = collect(
                &query.select(Select::columns(&["path", "content_hash"])),
                "finding chunks awaiting vectors",
            )
            .await?;
            for batch in &batches {
                let paths = arrow_rows::string_column(batch, "path")?;
                let content = arrow_rows::string_column(batch, "content_hash")?;
                rows.extend(paths.into_iter().zip(content));
            }
        }
        let hashes: Vec<String> = rows.iter().map(|(_, h)| h.clone()).collect();
        let embedded = self.vectors_among(&hashes).await?;
        Ok(rows
            .into_iter()
            .filter(|(_, h)| !embedded.contains(h))
            .map(|(p, _)| p)
            .collect())
    }

    /// Number of chunks under `root`.
    pub async fn chunks_under(&self, root: &str) -> Result<usize> {
        self.chunks
            .count_rows(Some(format!("root = {}", sql_str(root))))
            .await
            .map_err(lance("counting chunks"))
    }

    /// The distinct text hashes of the chunks (under `root`, or anywhere).
    async fn chunk_hashes(&self, root: Option<&str>) -> Result<HashSet<String>> {
        distinct_strings(self.chunks_in(root), "content_hash", "reading chunk hashes").await
    }

    /// A query over the chunks under `root`, or all of them.
    fn chunks_in(&self, root: Option<&str>) -> lancedb::query::Query {
        let query = self.chunks.query();
        match root {
            Some(root) => query.only_if(format!("root = {}", sql_str(root))),
            None => query,
        }
    }

    /// Builds the full-text index if there is none yet, so new rows are
    /// searchable by text before their vectors exist. Later rows are searched
    /// without the index until [`Store::optimize`] folds them in.
    pub async fn ensure_text_index(&self) -> Result<()> {
        if self.has_text_index().await? {
            return Ok(());
        }
        let rows = self
            .chunks
            .count_rows(None)
            .await
            .map_err(lance("counting rows"))?;
        if rows > 0 {
            self.chunks
                .create_index(&["text"], Index::FTS(fts_params()))
                .execute()
                .await
                .map_err(lance("building the full-text index"))?;
        }
        Ok(())
    }

    /// Every chunk's identity `(root, path, symbol, start, end, content hash)`, sorted:
    /// lets tests compare two indexes row for row.
    pub async fn chunk_fingerprints(&self) -> Result<Vec<Fingerprint>> {
        let batches = collect(
            &self.chunks.query().select(Select::columns(&[
                "root",
                "path",
                "symbol",
                "start_line",
                "end_line",
                "content_hash",
            ])),
            "reading chunks",
        )
        .await?;
        let mut out = Vec::new();
        for batch in &batches {
            out.extend(arrow_rows::fingerprints(batch)?);
        }
        out.sort();
        Ok(out)
    }

    /// The index's size on disk by component.
    pub fn disk_usage(&self) -> DiskUsage {
        let table = |name: &str| self.dir.join(format!("{name}.lance"));
        let chunk_data = dir_size(&table(CHUNKS_TABLE).join("data"));
        let vector_data = dir_size(&table(VECTORS_TABLE).join("data"));
        let text_index = dir_size(&table(CHUNKS_TABLE).join("_indices"));
        let vector_index = dir_size(&table(VECTORS_TABLE).join("_indices"));
        let other = dir_size(&self.dir) - chunk_data - vector_data - text_index - vector_index;
        DiskUsage {
            chunk_data,
            vector_data,
            text_index,
            vector_index,
            other,
        }
    }

    /// Counts, roots, size on disk and versions.
    pub async fn status(&self) -> Result<IndexStatus> {
        let indexed_at = read_indexed_at(&self.dir);
        let hashes = self.vector_hashes().await?;
        let mut roots: BTreeMap<String, RootStatus> = BTreeMap::new();
        fn entry<'a>(
            roots: &'a mut BTreeMap<String, RootStatus>,
            indexed_at: &BTreeMap<String, u64>,
            root: String,
        ) -> &'a mut RootStatus {
            roots.entry(root.clone()).or_insert_with(|| RootStatus {
                last_indexed: indexed_at.get(&root).copied(),
                root,
                files: 0,
                chunks: 0,
                pending: 0,
            })
        }
        let file_roots = collect(
            &self.files.query().select(Select::columns(&["root"])),
            "reading the index",
        )
        .await?;
        for batch in &file_roots {
            for root in arrow_rows::string_column(batch, "root")? {
                entry(&mut roots, &indexed_at, root).files += 1;
            }
        }
        // One pass over the chunks counts them and their pending ones per root.
        let chunk_roots = collect(
            &self
                .chunks
                .query()
                .select(Select::columns(&["root", "content_hash"])),
            "reading the index",
        )
        .await?;
        for batch in &chunk_roots {
            let content = arrow_rows::string_column(batch, "content_hash")?;
            for (root, hash) in arrow_rows::string_column(batch, "root")?
                .into_iter()
                .zip(content)
            {
                let root = entry(&mut roots, &indexed_at, root);
                root.chunks += 1;
                root.pending += usize::from(!hashes.contains(&hash));
            }
        }
        let roots: Vec<RootStatus> = roots.into_values().collect();
        let versions = self
            .chunks
            .list_versions()
            .await
            .map_err(lance("listing versions"))?
            .len();
        Ok(IndexStatus {
            db: self.dir.clone(),
            meta: self.meta.clone(),
            files: roots.iter().map(|r| r.files).sum(),
            chunks: roots.iter().map(|r| r.chunks).sum(),
            pending: roots.iter().map(|r| r.pending).sum(),
            vectors: hashes.len(),
            roots,
            bytes: dir_size(&self.dir),
            versions,
        })
    }
}

/// The scalar index a column gets from [`Store::optimize`].
#[derive(Clone, Copy)]
enum ScalarKind {
    BTree,
    Bitmap,
}

/// Whether `table` has an index on `column`.
async fn has_index_on(table: &Table, column: &str) -> Result<bool> {
    Ok(table
        .list_indices()
        .await
        .map_err(lance("listing indices"))?
        .iter()
        .any(|index| index.columns.iter().any(|c| c == column)))
}

/// Runs a query and gathers its batches.
async fn collect(query: &impl ExecutableQuery, action: &'static str) -> Result<Vec<RecordBatch>> {
    query
        .execute()
        .await
        .map_err(lance(action))?
        .try_collect()
        .await
        .map_err(lance(action))
}

/// The distinct values of the text column `column` over `query`'s rows.
async fn distinct_strings(
    query: lancedb::query::Query,
    column: &str,
    action: &'static str,
) -> Result<HashSet<String>> {
    let batches = collect(&query.select(Select::columns(&[column])), action).await?;
    let mut out = HashSet::new();
    for batch in &batches {
        out.extend(arrow_rows::string_column(batch, column)?);
    }
    Ok(out)
}

fn fts_params() -> FtsIndexBuilder {
    // The code analyzer keeps whole identifiers and also indexes their
    // snake_case / CamelCase parts, so `parse_config` matches both
    // "parse_config" and "config".
    FtsIndexBuilder::code()
        .split_identifiers(true)
        .preserve_original(true)
        .lower_case(true)
        .max_token_length(Some(64))
}

/// Deletes every version of `table` but the latest, with the files only
/// they use (a single writer: no reader needs an older version).
async fn prune_old_versions(table: &Table, action: &'static str) -> Result<()> {
    table
        .optimize(OptimizeAction::Prune {
            older_than: Some(lancedb::table::Duration::zero()),
            delete_unverified: Some(false),
            error_if_tagged_old_versions: Some(false),
        })
        .await
        .map_err(lance(action))?;
    Ok(())
}

/// Upgrades a schema-version-1 index in place: vectors move from a column of
/// the chunks table to the vectors table (one per distinct text, f16), then
/// the column is dropped and the version recorded. Every step can be
/// interrupted: until the column is gone the upgrade starts over, and after
/// it only the version remains to be written.
async fn upgrade_v1(
    conn: &Connection,
    dir: &Path,
    chunks: &Table,
    schema: &arrow_schema::Schema,
    upgraded: &IndexMeta,
) -> Result<()> {
    let dim = upgraded.dim;
    tracing::info!(
        "upgrading {} to schema version {SCHEMA_VERSION}",
        dir.display()
    );
    if schema.field_with_name("vector").is_ok() {
        let partial = dir.join(format!("{VECTORS_TABLE}.lance"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|source| StoreError::Io {
                action: "removing a partly upgraded vectors table",
                path: partial.clone(),
                source,
            })?;
        }
        let vectors = conn
            .create_empty_table(VECTORS_TABLE, arrow_rows::vector_schema(dim))
            .execute()
            .await
            .map_err(lance("creating the vectors table"))?;
        let mut stream = chunks
            .query()
            .only_if("vector IS NOT NULL")
            .select(Select::columns(&["content_hash", "vector"]))
            .execute()
            .await
            .map_err(lance("reading vectors to upgrade"))?;
        let mut seen = HashSet::new();
        while let Some(batch) = stream
            .try_next()
            .await
            .map_err(lance("reading vectors to upgrade"))?
        {
            let hashes = arrow_rows::string_column(&batch, "content_hash")?;
            let values = arrow_rows::vector_column(&batch, "vector")?;
            let rows: Vec<(&str, &[f32])> = hashes
                .iter()
                .zip(&values)
                .filter(|(h, _)| seen.insert((*h).clone()))
                .map(|(h, v)| (h.as_str(), v.as_slice()))
                .collect();
            if !rows.is_empty() {
                vectors
                    .add(arrow_rows::vector_batch(dim, &rows)?)
                    .execute()
                    .await
                    .map_err(lance("writing upgraded vectors"))?;
            }
        }
        chunks
            .drop_columns(&["vector"])
            .await
            .map_err(lance("dropping the old vector column"))?;
    }
    chunks
        .as_native()
        .ok_or_else(|| StoreError::Data("the chunks table is not a local table".into()))?
        // Replaces the whole map, so every key is written.
        .replace_schema_metadata(upgraded.to_map())
        .await
        .map_err(lance("recording the schema version"))
}

/// The model an interrupted switch was going to, if one was.
fn read_switching(dir: &Path) -> Result<Option<IndexMeta>> {
    let path = dir.join(SWITCHING_MARKER);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Io {
                action: "reading",
                path,
                source,
            })
        }
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| StoreError::Damaged {
            dir: dir.to_path_buf(),
            reason: format!("{SWITCHING_MARKER} is unreadable: {e}"),
        })?;
    match (value["model"].as_str(), value["dim"].as_u64()) {
        (Some(model), Some(dim)) if dim > 0 => Ok(Some(IndexMeta::new(model, dim as usize))),
        _ => Err(StoreError::Damaged {
            dir: dir.to_path_buf(),
            reason: format!("{SWITCHING_MARKER} names no model and dimension"),
        }),
    }
}

/// The steps of a model switch after its marker is written, each safe to
/// repeat: a fresh, empty vectors table of the new dimension, then the new
/// model in the chunks table's metadata, then the marker goes.
async fn finish_switch(
    conn: &Connection,
    dir: &Path,
    chunks: &Table,
    target: &IndexMeta,
) -> Result<()> {
    let table_dir = dir.join(format!("{VECTORS_TABLE}.lance"));
    if table_dir.exists() {
        std::fs::remove_dir_all(&table_dir).map_err(|source| StoreError::Io {
            action: "removing the old model's vectors",
            path: table_dir.clone(),
            source,
        })?;
    }
    conn.create_empty_table(VECTORS_TABLE, arrow_rows::vector_schema(target.dim))
        .execute()
        .await
        .map_err(lance("creating the new model's vectors table"))?;
    let mut meta = target.clone();
    meta.schema_version = SCHEMA_VERSION;
    chunks
        .as_native()
        .ok_or_else(|| StoreError::Data("the chunks table is not a local table".into()))?
        .replace_schema_metadata(meta.to_map())
        .await
        .map_err(lance("recording the new model"))?;
    let marker = dir.join(SWITCHING_MARKER);
    std::fs::remove_file(&marker).map_err(|source| StoreError::Io {
        action: "finishing the model switch of",
        path: marker,
        source,
    })
}

/// Opens one of the index's tables; failure means the index is damaged
/// (the directory was already recognised as a Quarry index).
async fn open_table(conn: &Connection, dir: &Path, name: &str) -> Result<Table> {
    conn.open_table(name)
        .execute()
        .await
        .map_err(|e| StoreError::Damaged {
            dir: dir.to_path_buf(),
            reason: format!("the {name} table cannot be opened: {e}"),
        })
}

/// How stale a long-lived handle's reads may be: another process (the CLI
/// beside the desktop app, a watcher) commits to the same tables, and a
/// handle only sees that once it checks for newer versions.
const READ_CONSISTENCY: std::time::Duration = std::time::Duration::from_millis(500);

async fn connect(dir: &Path) -> Result<Connection> {
    let uri = dir.to_str().ok_or_else(|| StoreError::NotAnIndex {
        dir: dir.to_path_buf(),
        reason: "the path is not valid UTF-8".into(),
    })?;
    lancedb::connect(uri)
        .read_consistency_interval(READ_CONSISTENCY)
        .execute()
        .await
        .map_err(lance("opening the database"))
}

#[derive(Debug)]
enum DirState {
    Missing,
    Empty,
    /// Being created or rebuilt by a writer, or left so by one that died;
    /// the next writer starts over.
    Creating,
    Quarry,
    /// Quarry's tables, but not all of them (lost or deleted by hand).
    Damaged(String),
    Foreign(String),
}

/// Writes the marker of a creation (or rebuild) in progress.
fn mark_creating(dir: &Path) -> Result<()> {
    std::fs::write(dir.join(CREATING_MARKER), b"").map_err(|source| StoreError::Io {
        action: "marking the creation of",
        path: dir.to_path_buf(),
        source,
    })
}

/// Removes everything in an index directory but its write lock (which the
/// caller may hold) and the creation marker (removed once creation is done).
/// Reads the last-indexed times; a missing or unreadable file is empty.
fn read_indexed_at(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read(dir.join(INDEXED_AT_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Replaces the last-indexed times atomically (write, then rename).
fn write_indexed_at(dir: &Path, times: &BTreeMap<String, u64>) -> Result<()> {
    let path = dir.join(INDEXED_AT_FILE);
    let staging = dir.join(format!("{INDEXED_AT_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(times).map_err(|e| StoreError::Data(e.to_string()))?;
    std::fs::write(&staging, bytes)
        .and_then(|()| std::fs::rename(&staging, &path))
        .map_err(|source| StoreError::Io {
            action: "writing",
            path,
            source,
        })
}

fn remove_index_files(dir: &Path) -> Result<()> {
    let io = |path: PathBuf| {
        move |source| StoreError::Io {
            action: "removing index",
            path,
            source,
        }
    };
    for entry in std::fs::read_dir(dir)
        .map_err(io(dir.to_path_buf()))?
        .flatten()
    {
        let name = entry.file_name();
        if name == WRITER_LOCK || name == CREATING_MARKER {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(io(path))?;
    }
    Ok(())
}

fn inspect_dir(dir: &Path) -> Result<DirState> {
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::Missing),
        Err(source) => {
            return Err(StoreError::Io {
                action: "reading",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    if !meta.is_dir() {
        return Ok(DirState::Foreign("it is a file, not a directory".into()));
    }
    let entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| StoreError::Io {
            action: "listing",
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != WRITER_LOCK && !name.starts_with(INDEXED_AT_FILE))
        .collect();
    if entries.iter().any(|e| e == CREATING_MARKER) {
        return Ok(DirState::Creating);
    }
    if entries.is_empty() {
        return Ok(DirState::Empty);
    }
    let table = |e: &String| {
        [FILES_TABLE, VECTORS_TABLE, CHUNKS_TABLE]
            .iter()
            .any(|t| e == &format!("{t}.lance"))
    };
    // A table counts once its first version is committed.
    let committed = |name: &str| {
        std::fs::read_dir(dir.join(format!("{name}.lance")).join("_versions"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".manifest"))
    };
    if committed(CHUNKS_TABLE) && committed(FILES_TABLE) {
        return Ok(DirState::Quarry);
    }
    if entries.len() == 1 && entries[0] == format!("{FILES_TABLE}.lance") {
        // Left by a creation of a Quarry from before the marker.
        remove_index_files(dir)?;
        return Ok(DirState::Empty);
    }
    if entries.iter().all(table) {
        return Ok(DirState::Damaged(
            "its tables are incomplete (a table or its versions are missing)".into(),
        ));
    }
    Ok(DirState::Foreign(format!(
        "it holds {} other entries and no chunks/files tables",
        entries.len()
    )))
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(_) => total += entry.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}

/// Quotes a string for a LanceDB SQL predicate.
fn sql_str(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn sql_list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| sql_str(v))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
