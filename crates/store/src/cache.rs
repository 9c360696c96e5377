//! The machine-wide embedding cache: vectors by (model, text hash), shared
//! by every index on the machine.
//!
//! An index already keeps one vector per distinct text, so an edit undone
//! or a file moved within it costs nothing. The cache carries that across
//! indexes: a second checkout in another index, a `--rebuild`, an index
//! deleted and made again, or a switch to another model and back finds the
//! vectors computed before instead of spending CPU-hours on them again.
//!
//! One LanceDB table per model (`<cache>/<model>-<dim>/vectors.lance`:
//! hash, f16 vector, when added), so vectors of two models never meet.
//! It is only a cache: every failure to read or write it is the caller's to
//! log and step over, and the oldest entries go once it outgrows its size.
//! Writers append without a lock (LanceDB commits concurrent appends);
//! maintenance (compaction, the hash index, eviction) takes a try-lock and
//! is skipped while another process does it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use lancedb::database::CreateTableMode;
use lancedb::index::scalar::BTreeIndexBuilder;
use lancedb::index::Index;
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::table::OptimizeAction;
use lancedb::{Connection, Table};

use crate::{
    arrow_rows, collect, connect, has_index_on, lance, prune_old_versions, sql_list, Result,
    StoreError,
};

const CACHE_TABLE: &str = "vectors";
/// Taken (without waiting) by whoever maintains the cache.
const MAINTAIN_LOCK: &str = ".quarry-maintain.lock";
/// Hashes per `IN (...)` lookup.
const LOOKUP_GROUP: usize = 400;
/// From this many hashes on, a lookup reads the cache once from end to end
/// instead of asking the hash index group by group (a whole repository's
/// texts, not a watcher's batch).
const SCAN_FROM: usize = 4_096;
/// The cache's default size on disk, about 2.7M vectors of 384 dimensions.
pub const DEFAULT_CACHE_BYTES: u64 = 2 << 30;

/// Vectors computed before, by model and text hash.
pub struct EmbeddingCache {
    dir: PathBuf,
    model: String,
    dim: usize,
    max_entries: usize,
    table: Table,
    _conn: Connection,
}

impl std::fmt::Debug for EmbeddingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingCache")
            .field("dir", &self.dir)
            .field("model", &self.model)
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

/// What the cache holds, for `quarry status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Vectors stored.
    pub entries: usize,
    /// Bytes on disk.
    pub bytes: u64,
}

impl EmbeddingCache {
    /// Opens the cache of `model` (`dim`-dimensional vectors) under `root`,
    /// creating it when missing. Any number of processes may open it.
    pub async fn open(root: &Path, model: &str, dim: usize) -> Result<Self> {
        let dir = Self::dir_for(root, model, dim);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            action: "creating the embedding cache",
            path: dir.clone(),
            source,
        })?;
        let conn = connect(&dir).await?;
        let table = match conn.open_table(CACHE_TABLE).execute().await {
            Ok(table) => table,
            Err(lancedb::Error::TableNotFound { .. }) => conn
                // Another process may be creating it right now.
                .create_empty_table(CACHE_TABLE, arrow_rows::cache_schema(dim))
                .mode(CreateTableMode::exist_ok(|request| request))
                .execute()
                .await
                .map_err(lance("creating the embedding cache"))?,
            Err(e) => return Err(lance("opening the embedding cache")(e)),
        };
        let schema = table.schema().await.map_err(lance("reading the schema"))?;
        if schema.as_ref() != arrow_rows::cache_schema(dim).as_ref() {
            return Err(StoreError::Data(format!(
                "the embedding cache at {} has an unexpected layout; delete the directory to start it afresh",
                dir.display()
            )));
        }
        Ok(Self {
            max_entries: entries_for_bytes(DEFAULT_CACHE_BYTES, dim),
            dir,
            model: model.to_string(),
            dim,
            table,
            _conn: conn,
        })
    }

    /// Where the cache of `model` lives under `root` (whether or not it
    /// exists yet).
    pub fn dir_for(root: &Path, model: &str, dim: usize) -> PathBuf {
        root.join(format!("{}-{dim}", file_name_of(model)))
    }

    /// The model whose vectors these are.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// This model's cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Caps the cache at about `bytes` on disk (default
    /// [`DEFAULT_CACHE_BYTES`]); [`EmbeddingCache::maintain`] drops the
    /// oldest entries beyond it.
    pub fn set_max_bytes(&mut self, bytes: u64) {
        self.max_entries = entries_for_bytes(bytes, self.dim);
    }

    /// The vectors the cache has for `hashes`, read a batch at a time (so a
    /// whole repository's worth never sits in memory), each hash once.
    pub(crate) async fn hits(&self, hashes: &[String]) -> Result<Hits<'_>> {
        let wanted: HashSet<String> = hashes.iter().cloned().collect();
        let source = if wanted.len() >= SCAN_FROM {
            let stream = self
                .table
                .query()
                .select(Select::columns(&["hash", "vector"]))
                .execute()
                .await
                .map_err(lance("reading the embedding cache"))?;
            HitSource::Scan(stream)
        } else {
            let distinct: Vec<String> = wanted.iter().cloned().collect();
            HitSource::Lookups {
                groups: distinct
                    .chunks(LOOKUP_GROUP)
                    .map(<[String]>::to_vec)
                    .collect(),
                ready: Vec::new(),
            }
        };
        Ok(Hits {
            cache: self,
            wanted,
            source,
        })
    }

    /// The vectors of those of `hashes` that the cache has, in no order.
    #[cfg(test)]
    pub(crate) async fn get(&self, hashes: &[String]) -> Result<Vec<(String, Vec<f32>)>> {
        let mut found = Vec::new();
        let mut hits = self.hits(hashes).await?;
        while let Some(batch) = hits.next().await? {
            found.extend(batch);
        }
        Ok(found)
    }

    /// Adds vectors (of texts just embedded, which [`EmbeddingCache::get`]
    /// did not have) in one commit.
    pub async fn put(&self, vectors: &[(String, Vec<f32>)]) -> Result<()> {
        if vectors.is_empty() {
            return Ok(());
        }
        if let Some((_, bad)) = vectors.iter().find(|(_, v)| v.len() != self.dim) {
            return Err(StoreError::Dimension {
                got: bad.len(),
                expected: self.dim,
            });
        }
        let rows: Vec<(&str, &[f32])> = vectors
            .iter()
            .map(|(h, v)| (h.as_str(), v.as_slice()))
            .collect();
        let added = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let batch = arrow_rows::cache_batch(self.dim, &rows, added)?;
        self.table
            .add(batch)
            .execute()
            .await
            .map_err(lance("writing the embedding cache"))?;
        Ok(())
    }

    /// Which of `hashes` the cache has (without reading their vectors).
    pub async fn contains_among(&self, hashes: &HashSet<String>) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        let mut stream = self
            .table
            .query()
            .select(Select::columns(&["hash"]))
            .execute()
            .await
            .map_err(lance("reading the embedding cache"))?;
        while let Some(batch) = stream
            .try_next()
            .await
            .map_err(lance("reading the embedding cache"))?
        {
            out.extend(
                arrow_rows::string_column(&batch, "hash")?
                    .into_iter()
                    .filter(|h| hashes.contains(h)),
            );
        }
        Ok(out)
    }

    /// Keeps the cache lean: drops the oldest entries beyond its size,
    /// folds appended rows into few files and into the hash index (built
    /// on first use), and prunes old versions. Returns false, doing
    /// nothing, while another process maintains it.
    pub async fn maintain(&self) -> Result<bool> {
        let lock_path = self.dir.join(MAINTAIN_LOCK);
        let lock = std::fs::File::create(&lock_path).map_err(|source| StoreError::Io {
            action: "locking the embedding cache",
            path: lock_path.clone(),
            source,
        })?;
        if lock.try_lock().is_err() {
            return Ok(false);
        }
        self.evict_oldest().await?;
        if !has_index_on(&self.table, "hash").await?
            && self
                .table
                .count_rows(None)
                .await
                .map_err(lance("counting cache rows"))?
                > 0
        {
            self.table
                .create_index(&["hash"], Index::BTree(BTreeIndexBuilder::default()))
                .execute()
                .await
                .map_err(lance("indexing the embedding cache"))?;
        }
        self.table
            .optimize(OptimizeAction::All)
            .await
            .map_err(lance("compacting the embedding cache"))?;
        prune_old_versions(&self.table, "pruning the embedding cache").await?;
        drop(lock);
        Ok(true)
    }

    /// Deletes the oldest entries while there are more than `max_entries`
    /// (whole groups at a time: a group shares its time stamp).
    async fn evict_oldest(&self) -> Result<()> {
        let rows = self
            .table
            .count_rows(None)
            .await
            .map_err(lance("counting cache rows"))?;
        if rows <= self.max_entries {
            return Ok(());
        }
        let query = self.table.query().select(Select::columns(&["added"]));
        let mut added: Vec<u64> = Vec::with_capacity(rows);
        for batch in collect(&query, "reading the embedding cache").await? {
            added.extend(arrow_rows::u64_column(&batch, "added")?);
        }
        added.sort_unstable_by(|a, b| b.cmp(a));
        // Everything as old as the newest entry that does not fit goes.
        let Some(&cutoff) = added.get(self.max_entries) else {
            return Ok(());
        };
        tracing::info!(
            rows,
            kept = self.max_entries,
            "dropping the embedding cache's oldest entries"
        );
        self.table
            .delete(&format!("added <= {cutoff}"))
            .await
            .map_err(lance("trimming the embedding cache"))?;
        Ok(())
    }

    /// Entries and bytes on disk.
    pub async fn stats(&self) -> Result<CacheStats> {
        Ok(CacheStats {
            entries: self
                .table
                .count_rows(None)
                .await
                .map_err(lance("counting cache rows"))?,
            bytes: crate::dir_size(&self.dir),
        })
    }
}

/// A lookup in progress ([`EmbeddingCache::hits`]).
pub(crate) struct Hits<'a> {
    cache: &'a EmbeddingCache,
    /// Hashes still to find: each is handed out once.
    wanted: HashSet<String>,
    source: HitSource,
}

enum HitSource {
    /// Many hashes: one pass over the whole cache.
    Scan(lancedb::arrow::SendableRecordBatchStream),
    /// A few: `IN (...)` queries through the hash index, a group at a time.
    Lookups {
        groups: Vec<Vec<String>>,
        ready: Vec<arrow_array::RecordBatch>,
    },
}

impl Hits<'_> {
    /// The next batch of hits (possibly empty), or `None` at the end.
    pub(crate) async fn next(&mut self) -> Result<Option<Vec<(String, Vec<f32>)>>> {
        let batch = match &mut self.source {
            HitSource::Scan(stream) => stream
                .try_next()
                .await
                .map_err(lance("reading the embedding cache"))?,
            HitSource::Lookups { groups, ready } => {
                while ready.is_empty() {
                    let Some(group) = groups.pop() else {
                        return Ok(None);
                    };
                    let query = self
                        .cache
                        .table
                        .query()
                        .only_if(format!("hash IN ({})", sql_list(&group)))
                        .select(Select::columns(&["hash", "vector"]));
                    *ready = collect(&query, "reading the embedding cache").await?;
                }
                ready.pop()
            }
        };
        let Some(batch) = batch else {
            return Ok(None);
        };
        let hashes = arrow_rows::string_column(&batch, "hash")?;
        let vectors = arrow_rows::vector_column(&batch, "vector")?;
        Ok(Some(
            hashes
                .into_iter()
                .zip(vectors)
                .filter(|(hash, _)| self.wanted.remove(hash))
                .collect(),
        ))
    }
}

/// About how many vectors of `dim` dimensions fit in `bytes` (f16 values,
/// a 32-character hash, a time stamp and some overhead).
fn entries_for_bytes(bytes: u64, dim: usize) -> usize {
    (bytes / (dim as u64 * 2 + 48)).max(1) as usize
}

/// A model id as one directory name: `org/name` → `org--name`, anything
/// else outside `[A-Za-z0-9._-]` → `_`.
fn file_name_of(model: &str) -> String {
    model
        .replace('/', "--")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: usize, dim: usize) -> Vec<f32> {
        let raw: Vec<f32> = (0..dim)
            .map(|i| ((seed * 31 + i * 7) % 17) as f32 - 8.0)
            .collect();
        let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        raw.iter().map(|x| x / norm).collect()
    }

    fn entries(range: std::ops::Range<usize>, dim: usize) -> Vec<(String, Vec<f32>)> {
        range.map(|i| (format!("{i:032x}"), unit(i, dim))).collect()
    }

    fn sorted(mut v: Vec<(String, Vec<f32>)>) -> Vec<(String, Vec<f32>)> {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn close(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|((ha, va), (hb, vb))| {
                ha == hb && va.iter().zip(vb).all(|(x, y)| (x - y).abs() < 2e-3)
            })
    }

    #[tokio::test]
    async fn vectors_come_back_from_another_handle_and_models_stay_apart() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), "org/model-a", 8)
            .await
            .unwrap();
        let stored = entries(0..10, 8);
        cache.put(&stored[..6]).await.unwrap();
        cache.put(&stored[6..]).await.unwrap();

        // Another process's handle, asked for some hits and some misses.
        let again = EmbeddingCache::open(root.path(), "org/model-a", 8)
            .await
            .unwrap();
        let mut wanted: Vec<String> = stored[3..8].iter().map(|(h, _)| h.clone()).collect();
        wanted.push(format!("{:032x}", 999));
        let got = sorted(again.get(&wanted).await.unwrap());
        assert!(close(&got, &stored[3..8]), "{got:?}");

        let other = EmbeddingCache::open(root.path(), "org/model-b", 8)
            .await
            .unwrap();
        assert!(other.get(&wanted).await.unwrap().is_empty());
        assert_ne!(other.dir(), again.dir());
        assert!(again.dir().ends_with("org--model-a-8"));

        let wrong = cache.put(&[("x".into(), vec![0.0; 3])]).await;
        assert!(matches!(wrong, Err(StoreError::Dimension { got: 3, .. })));
    }

    #[tokio::test]
    async fn a_large_lookup_scans_once_and_finds_the_same_as_small_ones() {
        let root = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(root.path(), "m", 4).await.unwrap();
        let stored = entries(0..SCAN_FROM + 100, 4);
        cache.put(&stored).await.unwrap();
        assert!(cache.maintain().await.unwrap());
        // Every other hash, plus misses: past SCAN_FROM, so one scan.
        let mut wanted: Vec<String> = stored.iter().step_by(2).map(|(h, _)| h.clone()).collect();
        wanted.extend((0..SCAN_FROM).map(|i| format!("miss{i}")));
        assert!(wanted.len() >= SCAN_FROM);
        let scanned = sorted(cache.get(&wanted).await.unwrap());
        let expected: Vec<_> = stored.iter().step_by(2).cloned().collect();
        assert!(close(&scanned, &sorted(expected.clone())));
        // The same through the hash index, a group at a time.
        let small = sorted(cache.get(&wanted[..300]).await.unwrap());
        assert!(close(&small, &sorted(expected[..300].to_vec())));
        let present: HashSet<String> = wanted[..5].iter().cloned().collect();
        assert_eq!(cache.contains_among(&present).await.unwrap(), present);
    }

    #[tokio::test]
    async fn maintenance_keeps_the_newest_entries_within_the_size_and_few_versions() {
        let root = tempfile::tempdir().unwrap();
        let mut cache = EmbeddingCache::open(root.path(), "m", 4).await.unwrap();
        let stored = entries(0..50, 4);
        for group in stored.chunks(10) {
            cache.put(group).await.unwrap();
        }
        // Room for 25 entries: the three newest groups would be 30, so the
        // two newest (20) stay.
        cache.set_max_bytes(25 * (4 * 2 + 48));
        assert!(cache.maintain().await.unwrap());
        let all: Vec<String> = stored.iter().map(|(h, _)| h.clone()).collect();
        let kept = sorted(cache.get(&all).await.unwrap());
        assert!(close(&kept, &stored[30..]), "kept {}", kept.len());
        assert_eq!(cache.stats().await.unwrap().entries, 20);
        let versions = cache.table.list_versions().await.unwrap();
        assert_eq!(versions.len(), 1, "old versions are pruned");

        // While another process maintains it, maintenance steps aside.
        let held = std::fs::File::create(cache.dir().join(MAINTAIN_LOCK)).unwrap();
        held.lock().unwrap();
        assert!(!cache.maintain().await.unwrap());
    }

    #[tokio::test]
    async fn concurrent_writers_lose_nothing() {
        let root = tempfile::tempdir().unwrap();
        let a = EmbeddingCache::open(root.path(), "m", 4).await.unwrap();
        let b = EmbeddingCache::open(root.path(), "m", 4).await.unwrap();
        let stored = entries(0..40, 4);
        let (left, right) = stored.split_at(20);
        let writes_a = async {
            for group in left.chunks(5) {
                a.put(group).await.unwrap();
            }
        };
        let writes_b = async {
            for group in right.chunks(5) {
                b.put(group).await.unwrap();
            }
        };
        futures::join!(writes_a, writes_b);
        let all: Vec<String> = stored.iter().map(|(h, _)| h.clone()).collect();
        let fresh = EmbeddingCache::open(root.path(), "m", 4).await.unwrap();
        assert_eq!(fresh.get(&all).await.unwrap().len(), 40);
        // A long-lived handle sees the other's writes once it checks again.
        std::thread::sleep(crate::READ_CONSISTENCY * 2);
        assert_eq!(a.get(&all).await.unwrap().len(), 40);
    }

    #[test]
    fn model_ids_become_single_directory_names() {
        assert_eq!(
            file_name_of("sentence-transformers/all-MiniLM-L6-v2"),
            "sentence-transformers--all-MiniLM-L6-v2"
        );
        assert_eq!(file_name_of("../x y"), "..--x_y");
    }
}
