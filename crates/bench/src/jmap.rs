//! `jmap`: what a webmail does most, over JMAP (RFC 8620/8621): open a
//! mailbox as conversations (Email/query of the 50 newest with
//! collapseThreads, and Email/get of them by result reference, in one
//! request), and flag or unflag a message (Email/set keywords). N clients
//! on keep-alive connections, HTTP/1.1 or HTTP/2 (`--http2`: prior
//! knowledge on http://, ALPN on https://). The mailbox is the one the
//! `search` workload fills (`letterbox-bench search --messages 100000`).

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::progress::Progress;
use crate::stats::{print_table, write_json, Live, OpRow, Ops};

#[derive(clap::Args, Debug)]
pub struct JmapArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value = "user1@example.test")]
    user: String,
    #[arg(long, default_value = "password")]
    password: String,
    /// Mailbox (by name) to read.
    #[arg(long, default_value = "bench-search")]
    mailbox: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Speak HTTP/2 instead of HTTP/1.1.
    #[arg(long)]
    http2: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

static OPS: [&str; 2] = ["Email/query+get (50, threads)", "Email/set keyword"];

const USING: [&str; 2] = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"];

#[derive(Serialize)]
struct Report {
    http2: bool,
    connections: usize,
    seconds: f64,
    total: usize,
    ops: Vec<OpRow>,
}

struct Api {
    http: reqwest::Client,
    url: String,
    auth: String,
    account: String,
}

impl Api {
    async fn post(&self, calls: Value) -> Result<Value> {
        let body = json!({"using": USING, "methodCalls": calls});
        let r = self
            .http
            .post(&self.url)
            .header("Authorization", &self.auth)
            .json(&body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("API answered {}", r.status());
        }
        let v: Value = r.json().await?;
        if let Some(err) = v["methodResponses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m[0] == "error")
        {
            bail!("method error: {}", err[1]);
        }
        Ok(v)
    }
}

async fn connect(a: &JmapArgs) -> Result<Api> {
    use base64::Engine;
    let mut b = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(60));
    // On TLS, ALPN picks h2; on cleartext, HTTP/2 needs prior knowledge.
    if !a.http2 {
        b = b.http1_only();
    } else if !a.url.starts_with("https://") {
        b = b.http2_prior_knowledge();
    }
    let http = b.build()?;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.user, a.password))
    );
    let base = a.url.trim_end_matches('/');
    let session: Value = http
        .get(format!("{base}/jmap/session"))
        .header("Authorization", &auth)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let account = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        .as_str()
        .context("no mail account in the Session")?
        .to_string();
    Ok(Api {
        http,
        url: format!("{base}/jmap/api"),
        auth,
        account,
    })
}

pub async fn run(a: JmapArgs) -> Result<()> {
    let api = connect(&a).await?;
    let found = api
        .post(json!([["Mailbox/query", {"accountId": api.account, "filter": {"name": a.mailbox}}, "m"]]))
        .await?;
    let mailbox = found["methodResponses"][0][1]["ids"][0]
        .as_str()
        .with_context(|| format!("no mailbox named {}", a.mailbox))?
        .to_string();
    let a = Arc::new(a);
    let live = Arc::new(Live::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(a.duration);
    let progress = Progress::timed("jmap", "requests", live.clone(), a.duration as f64);
    let mut tasks = Vec::new();
    for id in 0..a.connections {
        let (a, live, mailbox) = (a.clone(), live.clone(), mailbox.clone());
        tasks.push(tokio::spawn(async move {
            let mut ops = Ops::new(&OPS, live);
            let api = match connect(&a).await {
                Ok(api) => api,
                Err(e) => {
                    eprintln!("\nclient {id}: {e:#}");
                    return ops;
                }
            };
            let mut round = 0u64;
            let mut ids: Vec<String> = Vec::new();
            while Instant::now() < deadline {
                round += 1;
                // Four list views for each flag change, as a reader does.
                if round.is_multiple_of(5) && !ids.is_empty() {
                    let target = &ids[(round as usize / 5 + id) % ids.len()];
                    let flag = if round.is_multiple_of(10) { Value::Null } else { json!(true) };
                    let t = Instant::now();
                    let r = api
                        .post(json!([["Email/set", {"accountId": api.account,
                            "update": {target: {"keywords/$flagged": flag}}}, "s"]]))
                        .await;
                    match r {
                        Ok(v) if v["methodResponses"][0][1]["updated"].is_object() => ops.record(1, t.elapsed()),
                        _ => ops.error(1),
                    }
                    continue;
                }
                let t = Instant::now();
                let r = api
                    .post(json!([
                        ["Email/query", {"accountId": api.account, "filter": {"inMailbox": mailbox},
                            "sort": [{"property": "receivedAt", "isAscending": false}],
                            "collapseThreads": true, "limit": 50}, "q"],
                        ["Email/get", {"accountId": api.account,
                            "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                            "properties": ["id", "threadId", "subject", "from", "receivedAt", "preview", "keywords", "hasAttachment"]}, "g"],
                    ]))
                    .await;
                match r {
                    Ok(v) => {
                        ops.record(0, t.elapsed());
                        if ids.is_empty() {
                            ids = v["methodResponses"][0][1]["ids"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|i| i.as_str().map(str::to_string))
                                .collect();
                        }
                    }
                    Err(e) => {
                        ops.error(0);
                        if round < 3 {
                            eprintln!("\nclient {id}: {e:#}");
                        }
                    }
                }
            }
            ops
        }));
    }
    let mut ops = Ops::new(&OPS, Arc::new(Live::default()));
    for t in tasks {
        ops.merge(t.await?);
    }
    let elapsed = started.elapsed();
    progress.finish().await;
    let rows = ops.rows(elapsed);
    let total: usize = rows.iter().filter(|r| r.op != "total").map(|r| r.summary.count).sum();
    println!(
        "jmap: {} clients over HTTP/{}, {:.1}s, {total} requests ({:.0}/s)",
        a.connections,
        if a.http2 { "2" } else { "1.1" },
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    print_table(&rows);
    if let Some(path) = &a.json {
        write_json(
            path,
            &Report {
                http2: a.http2,
                connections: a.connections,
                seconds: elapsed.as_secs_f64(),
                total,
                ops: rows,
            },
        )?;
    }
    Ok(())
}
