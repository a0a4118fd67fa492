//! Sans-io tree index maths for RFC 9162 logs.
//!
//! The log stores only *complete* subtrees: node `(level, index)` is the root
//! of leaves `[index·2^level, (index+1)·2^level)` and exists once the tree has
//! that many leaves. Every hash a proof needs is the hash of a leaf range that
//! RFC 9162's recursion produces; such a range is a run of complete subtrees
//! of strictly decreasing size, folded right to left. A [`ProofPlan`] records
//! the subtrees each proof element needs, so storage can fetch them in one
//! batch (O(log n) reads) and [`ProofPlan::assemble`] builds the proof.

use alloc::vec::Vec;

use crate::hash::{node_hash, Hash, EMPTY_ROOT};

/// The largest level a node can have (a tree of 2^63 leaves).
pub const MAX_LEVEL: u8 = 63;

/// A complete subtree: level 0 is a leaf, level `l` covers `2^l` leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    /// Height above the leaves.
    pub level: u8,
    /// Position among the nodes of this level, from the left.
    pub index: u64,
}

impl NodeId {
    /// Node `index` at `level`.
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// The leaf with this index.
    pub const fn leaf(index: u64) -> Self {
        Self { level: 0, index }
    }

    /// The leaves `[start, end)` this node covers.
    pub const fn leaf_range(&self) -> (u64, u64) {
        let start = self.index << self.level;
        (start, start + (1u64 << self.level))
    }

    /// The two children, `None` for a leaf.
    pub const fn children(&self) -> Option<(NodeId, NodeId)> {
        if self.level == 0 {
            return None;
        }
        let l = NodeId::new(self.level - 1, self.index * 2);
        let r = NodeId::new(self.level - 1, self.index * 2 + 1);
        Some((l, r))
    }

    /// A 9-byte big-endian key (level, then index) that sorts nodes of one
    /// level contiguously, so a tile is one range scan.
    pub fn to_key(&self) -> [u8; 9] {
        let mut key = [0u8; 9];
        key[0] = self.level;
        key[1..].copy_from_slice(&self.index.to_be_bytes());
        key
    }

    /// Parses [`NodeId::to_key`].
    pub fn from_key(key: &[u8]) -> Option<Self> {
        let (&level, index) = key.split_first()?;
        let index = u64::from_be_bytes(index.try_into().ok()?);
        (level <= MAX_LEVEL).then_some(Self { level, index })
    }
}

/// The complete subtrees whose roots become new nodes when leaf `index` is
/// appended: the leaf itself, then every ancestor that the leaf completes.
pub fn nodes_completed_by(index: u64) -> impl Iterator<Item = NodeId> {
    let count = index.checked_add(1).map_or(0, |n| n.trailing_zeros() as u8 + 1);
    (0..count).map(move |level| NodeId::new(level, index >> level))
}

/// Largest power of two strictly smaller than `n`, RFC 9162's `k`; a tree
/// of fewer than two leaves does not split (0).
pub const fn split_point(n: u64) -> u64 {
    if n < 2 {
        return 0;
    }
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Splits the RFC-aligned leaf range `[start, end)` into complete subtrees of
/// decreasing size, left to right.
pub fn range_nodes(start: u64, end: u64, out: &mut Vec<NodeId>) {
    let mut lo = start;
    while lo < end {
        let remaining = end - lo;
        let mut level = 63 - remaining.leading_zeros() as u8;
        while lo & ((1u64 << level) - 1) != 0 {
            level -= 1;
        }
        out.push(NodeId::new(level, lo >> level));
        lo += 1u64 << level;
    }
}

/// Folds the hashes of a range's subtrees (as produced by [`range_nodes`])
/// right to left into the range's Merkle hash.
pub fn fold_range(hashes: &[Hash]) -> Hash {
    match hashes.split_last() {
        None => EMPTY_ROOT,
        Some((last, rest)) => rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)),
    }
}

/// Merkle tree hash of a list of leaf hashes, computed directly (O(n)).
/// Meant for tests, tiles and small trees; the log itself never needs it.
pub fn hash_leaves(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&hash_leaves(&leaves[..k]), &hash_leaves(&leaves[k..]))
        }
    }
}

/// The right frontier of a tree: its complete subtrees, largest first (at
/// most 64). Appending a leaf merges equal-sized neighbours, so the root of
/// a growing tree costs O(1) memory. The log's sequencer keeps one to hash
/// new nodes; an auditor streams every leaf through one to recompute a
/// checkpoint's root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    nodes: Vec<(NodeId, Hash)>,
}

impl CompactRange {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The frontier of a tree of `size` leaves from the hashes of
    /// [`frontier`]`(size)`, in order. `None` if the count does not match.
    pub fn from_frontier(size: u64, hashes: &[Hash]) -> Option<Self> {
        let ids = frontier(size);
        (ids.len() == hashes.len()).then(|| Self { size, nodes: ids.into_iter().zip(hashes.iter().copied()).collect() })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash, pushing every node it completes (the leaf, then
    /// each completed ancestor, lowest first) onto `completed`.
    pub fn push_recording(&mut self, leaf: Hash, completed: &mut Vec<(NodeId, Hash)>) {
        self.push_with(leaf, |node| completed.push(node));
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_| {});
    }

    fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut((NodeId, Hash))) {
        let node = (NodeId::leaf(self.size), leaf);
        self.nodes.push(node);
        completed(node);
        while let [.., (l_id, l), (r_id, r)] = self.nodes[..] {
            if l_id.level != r_id.level {
                break;
            }
            self.nodes.truncate(self.nodes.len() - 2);
            let parent = (NodeId::new(l_id.level + 1, l_id.index / 2), node_hash(&l, &r));
            self.nodes.push(parent);
            completed(parent);
        }
        self.size += 1;
    }

    /// The root hash ([`EMPTY_ROOT`] for the empty tree).
    pub fn root(&self) -> Hash {
        match self.nodes.split_last() {
            None => EMPTY_ROOT,
            Some(((_, last), rest)) => rest.iter().rev().fold(*last, |acc, (_, h)| node_hash(h, &acc)),
        }
    }
}

/// Why a proof cannot be planned for the requested sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexBeyondTree { index: u64, size: u64 },
    /// The old size of a consistency proof exceeds the new one.
    #[error("old size {old} is larger than new size {new}")]
    OldSizeLarger { old: u64, new: u64 },
    /// The node hashes handed to `assemble` do not match the plan.
    #[error("expected {expected} node hashes, got {got}")]
    WrongNodeCount { expected: usize, got: usize },
}

/// Which complete subtrees a proof needs, and how to combine them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProofPlan {
    nodes: Vec<NodeId>,
    /// End offset into `nodes` of each proof element, in proof order.
    element_ends: Vec<usize>,
}

impl ProofPlan {
    fn push_range(&mut self, start: u64, end: u64) {
        range_nodes(start, end, &mut self.nodes);
        self.element_ends.push(self.nodes.len());
    }

    /// The nodes to fetch, in the order `assemble` expects their hashes.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Number of hashes in the finished proof.
    pub fn len(&self) -> usize {
        self.element_ends.len()
    }

    /// Whether the proof has no hashes (e.g. a one-leaf tree).
    pub fn is_empty(&self) -> bool {
        self.element_ends.is_empty()
    }

    /// Builds the proof from the hashes of [`ProofPlan::nodes`], in order.
    pub fn assemble(&self, node_hashes: &[Hash]) -> Result<Vec<Hash>, PlanError> {
        if node_hashes.len() != self.nodes.len() {
            return Err(PlanError::WrongNodeCount { expected: self.nodes.len(), got: node_hashes.len() });
        }
        let mut start = 0;
        let proof = self
            .element_ends
            .iter()
            .map(|&end| {
                let h = fold_range(&node_hashes[start..end]);
                start = end;
                h
            })
            .collect();
        Ok(proof)
    }
}

/// Plans the root of the tree of `size` leaves; `assemble` yields one hash
/// (or none for the empty tree, whose root is [`EMPTY_ROOT`]).
pub fn root_plan(size: u64) -> ProofPlan {
    let mut plan = ProofPlan::default();
    if size > 0 {
        plan.push_range(0, size);
    }
    plan
}

/// Plans the RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in a tree of
/// `size` leaves, leaf sibling first.
pub fn inclusion_plan(index: u64, size: u64) -> Result<ProofPlan, PlanError> {
    if index >= size {
        return Err(PlanError::IndexBeyondTree { index, size });
    }
    let mut plan = ProofPlan::default();
    inclusion_ranges(index, 0, size, &mut plan);
    Ok(plan)
}

fn inclusion_ranges(m: u64, lo: u64, hi: u64, plan: &mut ProofPlan) {
    let n = hi - lo;
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < lo + k {
        inclusion_ranges(m, lo, lo + k, plan);
        plan.push_range(lo + k, hi);
    } else {
        inclusion_ranges(m, lo + k, hi, plan);
        plan.push_range(lo, lo + k);
    }
}

/// Plans the RFC 9162 §2.1.4.1 consistency proof between sizes `old` and
/// `new`. Empty when `old` is 0 or equals `new`.
pub fn consistency_plan(old: u64, new: u64) -> Result<ProofPlan, PlanError> {
    if old > new {
        return Err(PlanError::OldSizeLarger { old, new });
    }
    let mut plan = ProofPlan::default();
    if old > 0 && old < new {
        subproof_ranges(old, 0, new, true, &mut plan);
    }
    Ok(plan)
}

fn subproof_ranges(m: u64, lo: u64, hi: u64, complete: bool, plan: &mut ProofPlan) {
    let n = hi - lo;
    if m == n {
        if !complete {
            plan.push_range(lo, hi);
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof_ranges(m, lo, lo + k, complete, plan);
        plan.push_range(lo + k, hi);
    } else {
        subproof_ranges(m - k, lo + k, hi, false, plan);
        plan.push_range(lo, lo + k);
    }
}

/// The complete subtrees of a tree of `size` leaves, left to right (its
/// "compact range" or right frontier). At most 64 nodes.
pub fn frontier(size: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    range_nodes(0, size, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn node(all: &[Hash], id: NodeId) -> Hash {
        let (s, e) = id.leaf_range();
        hash_leaves(&all[s as usize..e as usize])
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        assert_eq!((split_point(0), split_point(1)), (0, 0), "no panic below two leaves");
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(1 << 40), 1 << 39);
        assert_eq!(split_point((1 << 40) + 1), 1 << 40);
    }

    #[test]
    fn nodes_completed_by_append() {
        let ids: Vec<_> = nodes_completed_by(7).collect();
        assert_eq!(ids, [NodeId::new(0, 7), NodeId::new(1, 3), NodeId::new(2, 1), NodeId::new(3, 0)]);
        assert_eq!(nodes_completed_by(4).count(), 1);
        assert_eq!(nodes_completed_by(u64::MAX).count(), 0);
    }

    #[test]
    fn root_plan_matches_direct_hash() {
        let all = leaves(300);
        for size in 0..=300u64 {
            let plan = root_plan(size);
            let fetched: Vec<_> = plan.nodes().iter().map(|id| node(&all, *id)).collect();
            let got = plan.assemble(&fetched).unwrap().first().copied().unwrap_or(EMPTY_ROOT);
            assert_eq!(got, hash_leaves(&all[..size as usize]), "size {size}");
        }
    }

    #[test]
    fn compact_range_matches_direct_roots_and_completed_nodes() {
        let all = leaves(300);
        let (mut recorded, mut plain) = (CompactRange::new(), CompactRange::new());
        for (i, leaf) in all.iter().enumerate() {
            let mut completed = Vec::new();
            recorded.push_recording(*leaf, &mut completed);
            plain.push(*leaf);
            let ids: Vec<NodeId> = completed.iter().map(|(id, _)| *id).collect();
            assert_eq!(ids, nodes_completed_by(i as u64).collect::<Vec<_>>());
            for (id, h) in completed {
                assert_eq!(h, node(&all, id));
            }
            assert_eq!(recorded, plain);
            assert_eq!(plain.root(), hash_leaves(&all[..=i]));
            let hashes: Vec<Hash> = frontier(i as u64 + 1).iter().map(|id| node(&all, *id)).collect();
            assert_eq!(CompactRange::from_frontier(i as u64 + 1, &hashes), Some(plain.clone()));
        }
        assert_eq!(CompactRange::new().root(), EMPTY_ROOT);
        assert_eq!(CompactRange::from_frontier(3, &[[0; 32]]), None);
    }

    #[test]
    fn frontier_is_at_most_popcount() {
        for size in [0u64, 1, 2, 3, 255, 256, 1_000_003] {
            assert_eq!(frontier(size).len(), size.count_ones() as usize);
        }
    }

    #[test]
    fn key_round_trip_and_order() {
        let a = NodeId::new(8, 3);
        assert_eq!(NodeId::from_key(&a.to_key()), Some(a));
        assert!(NodeId::new(0, 255).to_key() < NodeId::new(0, 256).to_key());
        assert_eq!(NodeId::from_key(&[64, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(NodeId::from_key(&[0, 0]), None);
    }

    #[test]
    fn plan_errors() {
        assert_eq!(inclusion_plan(5, 5), Err(PlanError::IndexBeyondTree { index: 5, size: 5 }));
        assert_eq!(consistency_plan(6, 5), Err(PlanError::OldSizeLarger { old: 6, new: 5 }));
        let plan = inclusion_plan(0, 2).unwrap();
        assert_eq!(plan.assemble(&[]), Err(PlanError::WrongNodeCount { expected: 1, got: 0 }));
    }
}
