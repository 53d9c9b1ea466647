//! Migrating a `RwLock<HashMap<K, V>>` to rwlog: the same program twice,
//! first with the lock, then with `SharedMap`. The README's "Migrating from
//! RwLock" quotes both halves.
//!
//! ```text
//! cargo run --example migrate_rwlock
//! ```

// before: begin
fn with_a_lock() -> u64 {
    use std::collections::HashMap;
    use std::sync::{Arc, RwLock};

    let cache = Arc::new(RwLock::new(HashMap::<String, u64>::new()));
    let writer = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || {
            for i in 0..100 {
                cache.write().unwrap().insert(format!("k{i}"), i);
            }
        })
    };
    writer.join().unwrap();
    let total = cache.read().unwrap().values().sum();
    total
}
// before: end

// after: begin
fn with_rwlog() -> rwlog::Result<u64> {
    let cache = rwlog::SharedMap::<String, u64>::new()?;
    let writer = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            for i in 0..100 {
                cache.insert(format!("k{i}"), i).unwrap();
            }
        })
    };
    writer.join().unwrap();
    let total = cache.read().values().sum();
    Ok(total)
}
// after: end

fn main() -> rwlog::Result<()> {
    let (locked, logged) = (with_a_lock(), with_rwlog()?);
    assert_eq!(locked, logged);
    println!("RwLock<HashMap>: {locked}; rwlog::SharedMap: {logged}");
    Ok(())
}
