//! Views over the log, with a toy view (entries counted per kind): the
//! state kept entry by entry in the group commits equals the state
//! rebuilt from the log, on both stores and across restarts.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use ed25519_dalek::SigningKey;
use ledger_core::conformance::{entry, signer};
use ledger_core::store::{LogStore, MemoryStore, Namespace, Record, RocksStore};
use ledger_core::views::{self, Entries, View};
use ledger_core::{Error, Log, LogConfig};
use serde_json::Value;
use verifier::entry::passport::Passport;

const ORIGIN: &str = "test.example/log";
const NAME: &str = "kind-counts";

/// Entries per kind; records `kind-counts ‖ 0x00 ‖ kind` → count.
#[derive(Debug, Default)]
struct KindCounts {
    published: RwLock<BTreeMap<String, u64>>,
    pending: Mutex<BTreeMap<String, u64>>,
}

impl KindCounts {
    fn counts(&self) -> BTreeMap<String, u64> {
        self.published.read().unwrap().clone()
    }
}

impl View for KindCounts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn load(&self, store: &dyn LogStore) -> Result<bool, Error> {
        let prefix = views::record_key(NAME, &[]);
        let counts: BTreeMap<String, u64> = store
            .scan_prefix(Namespace::Views, &prefix, &[], 100)?
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k[prefix.len()..].to_vec()).unwrap(), u64::from_be_bytes(v.try_into().unwrap())))
            .collect();
        let found = !counts.is_empty();
        *self.published.write().unwrap() = counts;
        Ok(found)
    }

    fn fold(&self, entries: &Entries<'_>, records: &mut Vec<Record>) -> Result<(), Error> {
        let mut pending = self.pending.lock().unwrap();
        let published = self.published.read().unwrap();
        for leaf in entries.leaves {
            let value: Value = serde_json::from_slice(leaf).unwrap();
            let kind = value["kind"].as_str().unwrap().to_owned();
            let n = pending.get(&kind).or(published.get(&kind)).copied().unwrap_or(0) + 1;
            pending.insert(kind, n);
        }
        for (kind, n) in pending.iter() {
            records.push(Record::put(Namespace::Views, views::record_key(NAME, kind.as_bytes()), n.to_be_bytes()));
        }
        Ok(())
    }

    fn publish(&self) {
        let changes = std::mem::take(&mut *self.pending.lock().unwrap());
        self.published.write().unwrap().extend(changes);
    }

    fn discard(&self) {
        self.pending.lock().unwrap().clear();
    }
}

fn open(store: Arc<dyn LogStore>, view: Option<Arc<KindCounts>>) -> Log {
    let views: Vec<Arc<dyn View>> = view.into_iter().map(|v| v as Arc<dyn View>).collect();
    let config = LogConfig { origin: ORIGIN.into(), agent_auth: false, views, ..LogConfig::default() };
    Log::open(store, signer(), config, None).unwrap()
}

fn passport(i: u8) -> Passport {
    Passport {
        agent: format!("spiffe://test.example/agent/p{i}").parse().unwrap(),
        public_key: SigningKey::from_bytes(&[i; 32]).verifying_key(),
        code_hash: [0; 32],
        model_hash: None,
        owner: "o".into(),
        purpose: "p".into(),
        tpm_ak: None,
    }
}

/// Appends actions (concurrently, so they share group commits), passports
/// and retirements, `round` telling the batches apart; returns the counts
/// they add.
async fn append_mix(log: &Arc<Log>, round: u8) -> BTreeMap<String, u64> {
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let log = Arc::clone(log);
        let base = u64::from(round) * 1000 + t * 100;
        tasks.push(tokio::spawn(async move { log.append((base..base + t % 3 + 1).map(entry).collect()).await.unwrap().len() }));
    }
    let mut actions = 0;
    for t in tasks {
        actions += t.await.unwrap() as u64;
    }
    for i in 0..3 {
        log.register(passport(round * 10 + i)).await.unwrap();
    }
    log.retire(&passport(round * 10).agent, "done").await.unwrap();
    BTreeMap::from([("action".to_owned(), actions), ("passport".to_owned(), 3), ("retirement".to_owned(), 1)])
}

fn add(total: &mut BTreeMap<String, u64>, more: BTreeMap<String, u64>) {
    for (k, n) in more {
        *total.entry(k).or_default() += n;
    }
}

/// Deletes every record of the toy view and its applied index.
fn forget_view(store: &dyn LogStore) {
    let mut records: Vec<Record> = store
        .scan_prefix(Namespace::Views, &views::record_key(NAME, &[]), &[], 100)
        .unwrap()
        .into_iter()
        .map(|(k, _)| Record::delete(Namespace::Views, k))
        .collect();
    records.push(Record::delete(Namespace::Views, NAME));
    store.erase(&records).unwrap();
    assert_eq!(views::applied(store, NAME).unwrap(), None);
}

/// Runs the whole story on stores from `reopen`, which gives the same
/// store each time (memory) or reopens it from disk (RocksDB).
async fn rebuilt_equals_incremental(mut reopen: impl FnMut() -> Arc<dyn LogStore>) {
    // Kept entry by entry, in the group commits.
    let view = Arc::new(KindCounts::default());
    let log = Arc::new(open(reopen(), Some(view.clone())));
    let mut expected = append_mix(&log, 1).await;
    add(&mut expected, append_mix(&log, 2).await);
    assert_eq!(view.counts(), expected, "incremental");
    let size = log.head().size;
    drop(log);

    // Loaded from its records after a restart.
    let store = reopen();
    assert_eq!(views::applied(&*store, NAME).unwrap(), Some(size));
    let loaded = Arc::new(KindCounts::default());
    drop(open(store, Some(loaded.clone())));
    assert_eq!(loaded.counts(), expected, "loaded");

    // Rebuilt from the log when its records are gone.
    let store = reopen();
    forget_view(&*store);
    let rebuilt = Arc::new(KindCounts::default());
    let log = Arc::new(open(store.clone(), Some(rebuilt.clone())));
    assert_eq!(rebuilt.counts(), expected, "rebuilt from the log");
    assert_eq!(views::applied(&*store, NAME).unwrap(), Some(size));
    // ... and kept up to date from there.
    add(&mut expected, append_mix(&log, 3).await);
    assert_eq!(rebuilt.counts(), expected, "incremental after a rebuild");
    drop((log, store));

    // Behind the head (the log ran without the view): it catches up.
    let log = Arc::new(open(reopen(), None));
    add(&mut expected, append_mix(&log, 4).await);
    let size = log.head().size;
    drop(log);
    let caught_up = Arc::new(KindCounts::default());
    let store = reopen();
    drop(open(store.clone(), Some(caught_up.clone())));
    assert_eq!(caught_up.counts(), expected, "caught up from its applied index");
    assert_eq!(views::applied(&*store, NAME).unwrap(), Some(size));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_view_rebuilt_from_the_log_equals_the_one_kept_in_memory_store() {
    let store: Arc<dyn LogStore> = Arc::new(MemoryStore::new());
    rebuilt_equals_incremental(|| store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_view_rebuilt_from_the_log_equals_the_one_kept_across_rocksdb_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    rebuilt_equals_incremental(|| Arc::new(RocksStore::open(&path).unwrap())).await;
}

#[test]
fn two_views_may_not_share_a_name() {
    let views: Vec<Arc<dyn View>> = vec![Arc::new(KindCounts::default()), Arc::new(KindCounts::default())];
    let config = LogConfig { origin: ORIGIN.into(), views, ..LogConfig::default() };
    assert!(matches!(Log::open(Arc::new(MemoryStore::new()), signer(), config, None), Err(Error::Config(_))));
}
