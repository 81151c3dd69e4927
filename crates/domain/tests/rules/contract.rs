//! The storage contracts (`secureai_domain::testing::contract`) on the
//! in-memory store: each on a fresh store, as the SQL store runs them.

use std::sync::Arc;

use secureai_domain::testing::{
    FakeClock, FakeHasher, InMemoryStore, RecordingTransport, SequentialTokens, contract,
};

#[tokio::test]
async fn the_in_memory_store_keeps_every_storage_contract() {
    let contracts = contract::all();
    assert!(!contracts.is_empty());
    for (name, run) in contracts {
        println!("contract {name}");
        let store = Arc::new(InMemoryStore::new());
        let ports = store.ports(
            Arc::new(FakeClock::new()),
            Arc::new(SequentialTokens::default()),
            Arc::new(FakeHasher),
            Arc::new(RecordingTransport::default()),
        );
        run(ports).await;
    }
}
