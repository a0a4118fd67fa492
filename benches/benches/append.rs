//! Embedded append throughput of the log on RocksDB (synced group commits)
//! against a raw RocksDB write batch of the same bytes with the same sync
//! setting, measured in the same run; the ratio is printed at the end.

// In tests and benches a failed unwrap is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ed25519_dalek::SigningKey;
use ledger_benches::Totals;
use ledger_core::store::RocksStore;
use ledger_core::{Log, LogConfig};
use verifier::note::NoteSigner;

const BATCHES: [usize; 3] = [1, 100, 1000];

fn bench(c: &mut Criterion, totals: &Totals) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let mut group = c.benchmark_group("embedded_append");
    group.sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_millis(500));
    for batch in BATCHES {
        group.throughput(Throughput::Elements(batch as u64));

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RocksStore::open(&dir.path().join("db")).unwrap());
        let signer = NoteSigner::new("bench.example/log", SigningKey::from_bytes(&[1; 32])).unwrap();
        let log =
            Log::open(store, signer, LogConfig { origin: "bench.example/log".into(), agent_auth: false, ..LogConfig::default() }, None)
                .unwrap();
        let mut seq = 0;
        group.bench_with_input(BenchmarkId::new("ledger", batch), &batch, |b, &n| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let batch = ledger_benches::bench_entries(n, &mut seq).unwrap();
                    let start = Instant::now();
                    rt.block_on(log.append(batch)).unwrap();
                    elapsed += start.elapsed();
                }
                totals.record(&format!("ledger/{n}"), elapsed, iters * n as u64);
                elapsed
            })
        });
        drop(log);

        let raw_dir = tempfile::tempdir().unwrap();
        let db = rocksdb::DB::open_default(raw_dir.path()).unwrap();
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        let value = vec![b'v'; 256];
        let mut key = 0u64;
        group.bench_with_input(BenchmarkId::new("raw_rocksdb", batch), &batch, |b, &n| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let mut wb = rocksdb::WriteBatch::default();
                    for _ in 0..n {
                        key += 1;
                        wb.put(key.to_be_bytes(), &value);
                    }
                    db.write_opt(wb, &wo).unwrap();
                    elapsed += start.elapsed();
                }
                totals.record(&format!("raw_rocksdb/{n}"), elapsed, iters * n as u64);
                elapsed
            })
        });
    }
    group.finish();
}

fn main() {
    let totals = Totals::default();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &totals);
    c.final_summary();
    println!("\nembedded append, entries/s (all samples of this run):");
    println!("{:>6} {:>14} {:>14} {:>8}", "batch", "ledger", "raw rocksdb", "ratio");
    for batch in BATCHES {
        let (ledger, raw) = (totals.rate(&format!("ledger/{batch}")), totals.rate(&format!("raw_rocksdb/{batch}")));
        println!("{batch:>6} {ledger:>14.0} {raw:>14.0} {:>8.2}", if raw > 0.0 { ledger / raw } else { 0.0 });
    }
}
