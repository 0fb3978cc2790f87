//! The webmail's files: plain ES modules, CSS, the service worker and the
//! web app manifest under `assets/`, embedded by `build.rs` so that
//! `cargo build` makes the whole client (no node, no bundler).
//!
//! Every asset is served under `/assets/<version>/`, where the version is a
//! digest of all files: relative module imports keep working and each
//! release gets fresh, forever-cacheable URLs. `index.html` and `sw.js`
//! (whose URLs must stay fixed) have `{{ASSETS}}`, `{{VERSION}}` and
//! `{{PRECACHE}}` replaced when loaded. Compressible files are gzipped once
//! at start.
//!
//! For development a directory can replace the embedded files; it is read
//! on every request and nothing is cached.

use bytes::Bytes;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// Files whose placeholders are filled in (fixed URLs, never cached long).
const TEMPLATES: &[&str] = &["index.html", "sw.js", "manifest.webmanifest"];
/// Longest asset path accepted from a URL.
const MAX_PATH: usize = 200;

/// One servable file (cheap to clone: the bytes are shared).
#[derive(Debug, Clone)]
pub struct Asset {
    pub body: Bytes,
    /// The gzip form, when the type compresses and it is smaller.
    pub gzip: Option<Bytes>,
    pub content_type: &'static str,
}

/// The webmail's files, embedded or from a development directory.
#[derive(Debug)]
pub struct Webmail {
    version: String,
    files: HashMap<String, Asset>,
    dev_dir: Option<PathBuf>,
}

/// The media type of a file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/") || content_type.contains("json") || content_type.contains("svg")
}

fn gzip(body: &[u8]) -> Option<Bytes> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(body).ok()?;
    let out = enc.finish().ok()?;
    (out.len() < body.len()).then(|| out.into())
}

/// An asset path from a URL: relative, no `..`, no odd characters.
pub fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= MAX_PATH
        && !path.starts_with('/')
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        && path.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

fn version_of<'a>(files: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    for (path, body) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update((body.len() as u64).to_be_bytes());
        h.update(body);
    }
    hex::encode(&h.finalize()[..8])
}

impl Webmail {
    /// The files built into the binary.
    pub fn embedded() -> Webmail {
        Self::build(
            embedded::FILES
                .iter()
                .map(|(p, b)| (p.to_string(), b.to_vec()))
                .collect(),
        )
    }

    /// Files read from `dir` on every request (development).
    pub fn from_dir(dir: &Path) -> Webmail {
        Webmail {
            version: "dev".into(),
            files: HashMap::new(),
            dev_dir: Some(dir.to_path_buf()),
        }
    }

    fn build(raw: Vec<(String, Vec<u8>)>) -> Webmail {
        let version = version_of(raw.iter().map(|(p, b)| (p.as_str(), b.as_slice())));
        let precache: Vec<String> = raw
            .iter()
            .filter(|(p, _)| !TEMPLATES.contains(&p.as_str()))
            .map(|(p, _)| format!("/assets/{version}/{p}"))
            .collect();
        let mut files = HashMap::new();
        for (path, body) in raw {
            let body = if TEMPLATES.contains(&path.as_str()) {
                fill(&body, &version, &precache)
            } else {
                body
            };
            files.insert(path.clone(), asset(&path, body));
        }
        Webmail {
            version,
            files,
            dev_dir: None,
        }
    }

    /// The digest in every asset URL.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether assets may be cached forever (not from a development directory).
    pub fn immutable(&self) -> bool {
        self.dev_dir.is_none()
    }

    /// The file at `path` (relative to `assets/`), templates filled in.
    pub fn get(&self, path: &str) -> Option<Asset> {
        if !valid_path(path) {
            return None;
        }
        let Some(dir) = &self.dev_dir else {
            return self.files.get(path).cloned();
        };
        let body = std::fs::read(dir.join(path)).ok()?;
        let body = if TEMPLATES.contains(&path) {
            fill(&body, &self.version, &[])
        } else {
            body
        };
        Some(Asset {
            body: body.into(),
            gzip: None,
            content_type: content_type(path),
        })
    }
}

fn asset(path: &str, body: Vec<u8>) -> Asset {
    let content_type = content_type(path);
    let gzip = if compressible(content_type) { gzip(&body) } else { None };
    Asset {
        body: body.into(),
        gzip,
        content_type,
    }
}

fn fill(body: &[u8], version: &str, precache: &[String]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let list = precache
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(",");
    text.replace("{{ASSETS}}", &format!("/assets/{version}"))
        .replace("{{VERSION}}", version)
        .replace("{{PRECACHE}}", &format!("[{list}]"))
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_urls_stay_inside_the_assets() {
        assert!(valid_path("app.js"));
        assert!(valid_path("vendor/purify.js"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "a/./b",
            "a\\b",
            "a%2e",
            "x y",
        ] {
            assert!(!valid_path(bad), "{bad}");
        }
    }

    #[test]
    fn the_embedded_client_has_its_entry_points_and_fills_templates() {
        let w = Webmail::embedded();
        assert_eq!(w.version().len(), 16);
        let index = w.get("index.html").expect("index.html");
        let text = String::from_utf8_lossy(&index.body);
        assert!(!text.contains("{{"), "unfilled placeholder in index.html");
        assert!(text.contains(&format!("/assets/{}/", w.version())));
        assert!(w.get("sw.js").is_some());
        assert!(w.get("manifest.webmanifest").is_some());
        assert!(index.gzip.as_ref().is_some_and(|g| g.len() < index.body.len()));
    }

    #[test]
    fn the_version_changes_with_any_file() {
        let a = version_of([("a.js", b"1".as_slice())].into_iter());
        let b = version_of([("a.js", b"2".as_slice())].into_iter());
        let c = version_of([("b.js", b"1".as_slice())].into_iter());
        assert!(a != b && a != c && b != c);
    }

    #[test]
    fn a_development_directory_is_read_per_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), "<script src=\"{{ASSETS}}/app.js\">").expect("write");
        let w = Webmail::from_dir(dir.path());
        assert!(!w.immutable());
        let body = w.get("index.html").expect("index").body;
        assert_eq!(&*body, b"<script src=\"/assets/dev/app.js\">");
        std::fs::write(dir.path().join("index.html"), "changed").expect("write");
        assert_eq!(&*w.get("index.html").expect("index").body, b"changed");
        assert!(w.get("../index.html").is_none());
    }
}
