//! Store-level query timings on an existing data directory (benchmark, not
//! a test): `cargo run --release -p letterbox-store --example query_bench
//! -- DATA_DIR ADDRESS [ITERATIONS]`. Times "the 50 newest emails,
//! collapsed by thread" (the JMAP mail list query) and a full-text body
//! query through the store, and prints the space the full-text index takes.
//! Run it with the server stopped, or beside it (reads only).

use letterbox_store::sqlite::SqliteStore;
use letterbox_store::{Filter, Query, Store, TextField};
use std::time::{Duration, Instant};

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(address)) = (args.next(), args.next()) else {
        eprintln!("usage: query_bench DATA_DIR ADDRESS [ITERATIONS]");
        std::process::exit(2);
    };
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(50);
    let store = SqliteStore::open(&std::path::Path::new(&dir).join("letterbox.db"))?;
    let account = store.account(&address).await?.ok_or("no such account")?;
    let queries = [
        (
            "50 newest, collapsed by thread",
            Query {
                filter: None,
                sort: vec![],
                collapse_threads: true,
                count_total: true,
                position: 0,
                limit: 50,
            },
        ),
        (
            "50 newest with body text 'zebracorn'",
            Query {
                filter: Some(Filter::Contains(TextField::Body, "zebracorn".into())),
                sort: vec![],
                collapse_threads: false,
                count_total: true,
                position: 0,
                limit: 50,
            },
        ),
    ];
    println!("{:<40} {:>8} {:>9} {:>9}", "query", "total", "p50 ms", "p99 ms");
    for (name, q) in queries {
        let mut times = Vec::with_capacity(n);
        let mut total = 0;
        for _ in 0..n {
            let t = Instant::now();
            total = store.query_emails(account.id, q.clone()).await?.total;
            times.push(t.elapsed());
        }
        println!(
            "{name:<40} {total:>8} {:>9.2} {:>9.2}",
            pct(&mut times, 0.5),
            pct(&mut times, 0.99)
        );
    }
    let emails = account.usage.messages.max(1);
    for (what, bytes) in store.space_report().await? {
        println!("{what}: {bytes} bytes ({} per message)", bytes / emails);
    }
    store.close();
    Ok(())
}
