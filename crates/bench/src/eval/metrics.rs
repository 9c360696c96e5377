//! Retrieval and localization metrics, from the ranks at which the gold
//! items were found.

/// Ranks considered for MRR; a gold item ranked lower counts as 0.
pub const MRR_DEPTH: usize = 100;

/// Retrieval metrics over a query set with one relevant item per query.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Metrics {
    /// Mean reciprocal rank (ranks beyond [`MRR_DEPTH`] count 0).
    pub mrr: f64,
    /// nDCG@10 with one relevant item per query.
    pub ndcg10: f64,
    /// Share of queries with the gold item first.
    pub recall1: f64,
    /// Share with it in the top 5.
    pub recall5: f64,
    /// Share with it in the top 10.
    pub recall10: f64,
}

impl Metrics {
    /// Metrics from the 1-based rank of the gold item per query (`None`: not found).
    pub fn from_ranks(ranks: &[Option<usize>]) -> Self {
        let n = ranks.len().max(1) as f64;
        let mut m = Metrics::default();
        for rank in ranks.iter().flatten().copied() {
            if rank <= MRR_DEPTH {
                m.mrr += 1.0 / rank as f64;
            }
            if rank <= 10 {
                m.ndcg10 += 1.0 / ((rank + 1) as f64).log2();
                m.recall10 += 1.0;
            }
            if rank <= 5 {
                m.recall5 += 1.0;
            }
            if rank == 1 {
                m.recall1 += 1.0;
            }
        }
        for value in [
            &mut m.mrr,
            &mut m.ndcg10,
            &mut m.recall1,
            &mut m.recall5,
            &mut m.recall10,
        ] {
            *value /= n;
        }
        m
    }
}

impl Metrics {
    /// The metrics as table columns: MRR@100, nDCG@10, R@1, R@5, R@10.
    pub fn columns(&self) -> Vec<(String, f64)> {
        vec![
            ("MRR@100".into(), self.mrr),
            ("nDCG@10".into(), self.ndcg10),
            ("R@1".into(), self.recall1),
            ("R@5".into(), self.recall5),
            ("R@10".into(), self.recall10),
        ]
    }
}

/// Share of queries whose gold items all rank within `k`: the localization
/// accuracy Acc@k of the SWE-bench localization literature. `ranks` holds,
/// per query, the rank of each gold item (`None`: not retrieved); a query
/// without gold items counts as a miss.
pub fn all_within(ranks: &[Vec<Option<usize>>], k: usize) -> f64 {
    let hits = ranks
        .iter()
        .filter(|gold| !gold.is_empty() && gold.iter().all(|r| r.is_some_and(|r| r <= k)))
        .count();
    hits as f64 / ranks.len().max(1) as f64
}

/// 1-based rank of each distinct key in `keys` (first occurrence wins): the
/// ranking of files, say, from a ranking of their functions.
pub fn first_ranks<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for key in keys {
        if !seen.contains(&key) {
            seen.push(key);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_ranks() {
        let m = Metrics::from_ranks(&[Some(1), Some(2), None, Some(11)]);
        assert!((m.mrr - (1.0 + 0.5 + 1.0 / 11.0) / 4.0).abs() < 1e-9);
        assert!((m.recall1 - 0.25).abs() < 1e-9);
        assert!((m.recall5 - 0.5).abs() < 1e-9);
        assert!((m.recall10 - 0.5).abs() < 1e-9);
        assert!((m.ndcg10 - (1.0 + 1.0 / 3f64.log2()) / 4.0).abs() < 1e-9);
    }

    #[test]
    fn accuracy_needs_every_gold_item_within_k() {
        let ranks = vec![
            vec![Some(1), Some(3)],
            vec![Some(2)],
            vec![Some(1), None],
            vec![],
        ];
        assert_eq!(all_within(&ranks, 1), 0.0);
        assert_eq!(all_within(&ranks, 2), 0.25);
        assert_eq!(all_within(&ranks, 3), 0.5);
        assert_eq!(first_ranks(["a", "b", "a", "c"]), ["a", "b", "c"]);
    }
}
