//! Build steps:
//! - Rebuilds when a migration is added or changed: `sqlx::migrate!` embeds the files at
//!   compile time, and cargo would not otherwise notice a new SQL file.
//! - Packs the console's assets (`src/console/assets`): the scripts in [`SCRIPTS`] order
//!   become one `console.<hash>.js`, the style one `console.<hash>.css`, each gzipped
//!   once here; the page names them by their hashed names, so they can be cached for
//!   good. The API reference viewer (`vendor/rapidoc-min.js`) is packed the same way. The result is `$OUT_DIR/console_assets.rs`, which `src/console/assets.rs`
//!   includes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The console's scripts, in the order they are joined: each is a plain script that
/// adds to the `Console` namespace the ones before it made.
const SCRIPTS: &[&str] = &[
    "js/core.js",
    "js/live.js",
    "js/signin.js",
    "js/overview.js",
    "js/queues.js",
    "js/jobs.js",
    "js/schedules.js",
    "js/files.js",
    "js/realtime.js",
    "js/audit.js",
    "js/keys.js",
    "js/webhooks.js",
    "js/app.js",
];

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=src/console/assets");
    let assets = Path::new("src/console/assets");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    if !assets.exists() {
        // The Dockerfile's dependency layer builds a stand-in crate without the sources:
        // nothing includes the table there, but the script must not fail.
        std::fs::write(
            out.join("console_assets.rs"),
            "pub static ASSETS: &[(&str, &str, &[u8], usize)] = &[];\n\
             pub static PAGE: &str = \"\";\npub static DOCS_PAGE: &str = \"\";\n",
        )
        .expect("write console_assets.rs");
        return;
    }

    let mut script = String::new();
    for name in SCRIPTS {
        let text = read(&assets.join(name));
        let _ = writeln!(script, "// {name}\n{text}");
    }
    let style = read(&assets.join("console.css"));
    let viewer = read(&assets.join("vendor/rapidoc-min.js"));
    let javascript = "text/javascript; charset=utf-8";
    let packed = [
        pack(&out, "console", "js", javascript, script.as_bytes()),
        pack(
            &out,
            "console",
            "css",
            "text/css; charset=utf-8",
            style.as_bytes(),
        ),
        pack(&out, "rapidoc", "js", javascript, viewer.as_bytes()),
    ];
    let page = read(&assets.join("index.html"))
        .replace("{{script}}", &packed[0].0)
        .replace("{{style}}", &packed[1].0);
    let docs = read(&assets.join("docs.html")).replace("{{rapidoc}}", &packed[2].0);

    let mut code =
        String::from("/// The hashed assets: (name, content type, gzipped bytes, plain length).\n");
    code.push_str("pub static ASSETS: &[(&str, &str, &[u8], usize)] = &[\n");
    for (name, content_type, file, length) in &packed {
        let _ = writeln!(
            code,
            "    ({name:?}, {content_type:?}, include_bytes!({file:?}), {length}),"
        );
    }
    code.push_str("];\n/// The console's page, naming the hashed assets.\n");
    let _ = writeln!(code, "pub static PAGE: &str = {page:?};");
    code.push_str("/// The API reference page, naming the viewer.\n");
    let _ = writeln!(code, "pub static DOCS_PAGE: &str = {docs:?};");
    std::fs::write(out.join("console_assets.rs"), code).expect("write console_assets.rs");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Gzips `bytes` into `$OUT_DIR`; returns (hashed name, content type, file, length).
fn pack(
    out: &Path,
    stem: &str,
    extension: &str,
    content_type: &'static str,
    bytes: &[u8],
) -> (String, &'static str, String, usize) {
    let name = format!("{stem}.{:016x}.{extension}", fnv1a(bytes));
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(bytes).expect("gzip");
    let file = out.join(format!("{name}.gz"));
    std::fs::write(&file, gzip.finish().expect("gzip")).expect("write asset");
    (name, content_type, file.display().to_string(), bytes.len())
}

/// FNV-1a, 64 bits: names change when contents do, which is all a cache needs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
