//! Shared pieces of the benchmarks and measurement binaries.

use ledger_core::entry::EntryError;
use ledger_core::NewEntry;

/// Padding that makes [`bench_entries`] leaves 256 bytes long (with a
/// six-digit sequence number and a 13-digit integrated time).
pub const PAD_FOR_256_BYTE_LEAVES: usize = 87;

/// `n` action entries with 256-byte leaves, numbered from `*seq + 1`.
pub fn bench_entries(n: usize, seq: &mut u64) -> Result<Vec<NewEntry>, EntryError> {
    let agent: verifier::agent_id::AgentId = "spiffe://bench.example/agent/load"
        .parse()
        .map_err(|reason| EntryError::AgentId { id: "spiffe://bench.example/agent/load".into(), reason })?;
    (0..n)
        .map(|_| {
            *seq += 1;
            let data = serde_json::json!({"seq": *seq, "pad": "p".repeat(PAD_FOR_256_BYTE_LEAVES)});
            NewEntry::action(&agent, "write", "db/items", Some(&data), ledger_core::entry::MAX_LEAF_BYTES)
        })
        .collect()
}

/// Time and element counts accumulated per benchmark key over every
/// sample of a run, for the same-run ratios the benches print.
#[derive(Debug, Default)]
pub struct Totals(std::sync::Mutex<std::collections::BTreeMap<String, (std::time::Duration, u64)>>);

impl Totals {
    /// Adds `elements` processed in `elapsed` under `key`.
    pub fn record(&self, key: &str, elapsed: std::time::Duration, elements: u64) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let e = t.entry(key.to_owned()).or_default();
        e.0 += elapsed;
        e.1 += elements;
    }

    /// Seconds per element under `key`.
    pub fn per_element(&self, key: &str) -> Option<f64> {
        let t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        t.get(key).filter(|(_, n)| *n > 0).map(|(d, n)| d.as_secs_f64() / *n as f64)
    }

    /// Elements per second under `key` (0 when nothing was recorded).
    pub fn rate(&self, key: &str) -> f64 {
        self.per_element(key).map_or(0.0, |s| 1.0 / s)
    }
}

/// Resident set size of this process in KiB (Linux), 0 where unknown.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// Peak resident set size of this process in KiB (Linux), 0 where unknown.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bench_leaves_are_256_bytes() {
        let mut seq = 123_455;
        let entries = super::bench_entries(1, &mut seq).unwrap_or_default();
        assert_eq!(entries.first().map(|e| e.to_leaf(1_795_633_425_543).len()), Some(256));
    }
}
