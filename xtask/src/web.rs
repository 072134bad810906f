//! `cargo xtask web`: the UI bundle. Adds rustup's wasm32 target if missing, installs
//! `wasm-bindgen-cli` at exactly the `wasm-bindgen` version in Cargo.lock into the tools root
//! (once), builds `flowlens-web` for wasm32 (`wasm-release` profile), binds it with wasm-bindgen
//! and writes `web/dist/` (index.html, style.css, boot.js, pkg/web.js, pkg/web_bg.wasm), which the node
//! embeds when it is built. Prints the bundle's size, raw and gzipped (budget: 1 MB gzipped).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::process::{self, Step};

/// The gzipped bundle (wasm + js) must stay under this.
const BUDGET_GZIP_BYTES: u64 = 1_000_000;

/// The `wasm-bindgen` version Cargo.lock pins.
fn locked_wasm_bindgen(root: &Path) -> Result<String> {
    let lock = fs::read_to_string(root.join("Cargo.lock"))
        .map_err(|e| Error::Environment(format!("cannot read Cargo.lock: {e}")))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(version) = lines
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                return Ok(version.to_string());
            }
        }
    }
    Err(Error::Environment(
        "Cargo.lock has no wasm-bindgen package".to_string(),
    ))
}

fn ensure_wasm_target() -> Result<()> {
    let installed = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|s| s.join("lib/rustlib/wasm32-unknown-unknown").is_dir());
    if installed {
        println!("prerequisites: rustup target wasm32-unknown-unknown present");
        return Ok(());
    }
    if !process::on_path("rustup") {
        return Err(Error::Prerequisite(
            "the wasm32-unknown-unknown target is missing; install Rust with rustup and run \
             `rustup target add wasm32-unknown-unknown`"
                .to_string(),
        ));
    }
    Step::new("add the wasm32 target", "rustup")
        .args(["target", "add", "wasm32-unknown-unknown"])
        .run()
}

/// `wasm-bindgen` at `version`, installed into the tools root when missing or another version.
fn ensure_wasm_bindgen(version: &str) -> Result<PathBuf> {
    let root = process::tools_root()?;
    let bin = root.join("bin").join("wasm-bindgen");
    let current = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if current.as_deref() == Some(&format!("wasm-bindgen {version}")) {
        println!(
            "prerequisites: wasm-bindgen {version} from {}",
            bin.display()
        );
        return Ok(bin);
    }
    Step::new(
        &format!("install wasm-bindgen-cli {version}"),
        process::cargo(),
    )
    .args(["install", "wasm-bindgen-cli", "--version"])
    .arg(format!("={version}"))
    .arg("--root")
    .arg(root.to_string_lossy())
    .run()?;
    Ok(bin)
}

fn gzip_size(path: &Path) -> Result<u64> {
    let out = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .map_err(|e| Error::Environment(format!("cannot run gzip: {e}")))?;
    Ok(out.stdout.len() as u64)
}

/// Builds the bundle into `web/dist`.
pub fn run(_extra: &[String]) -> Result<()> {
    let root = process::repo_root()?;
    let target_dir = process::ensure_target_dir()?;
    ensure_wasm_target()?;
    let bindgen = ensure_wasm_bindgen(&locked_wasm_bindgen(&root)?)?;
    Step::cargo("build the UI (wasm32)")?
        .args([
            "build",
            "--locked",
            "--package",
            "flowlens-web",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm-release",
        ])
        .run()?;
    let wasm = target_dir.join("wasm32-unknown-unknown/wasm-release/web.wasm");
    let dist = root.join("web/dist");
    let _ = fs::remove_dir_all(&dist);
    Step::new("bind the UI", bindgen.to_string_lossy())
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--remove-name-section",
            "--out-name",
            "web",
            "--out-dir",
        ])
        .arg(dist.join("pkg").to_string_lossy())
        .arg(wasm.to_string_lossy())
        .run()?;
    for file in ["index.html", "style.css", "boot.js"] {
        fs::copy(root.join("web").join(file), dist.join(file))
            .map_err(|e| Error::Environment(format!("cannot copy web/{file}: {e}")))?;
    }
    let mut raw = 0;
    let mut gz = 0;
    for file in ["pkg/web_bg.wasm", "pkg/web.js"] {
        let path = dist.join(file);
        raw += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        gz += gzip_size(&path)?;
    }
    println!(
        "UI bundle in {}: wasm + js {raw} bytes, {gz} gzipped (budget {BUDGET_GZIP_BYTES})",
        dist.display()
    );
    if gz > BUDGET_GZIP_BYTES {
        return Err(Error::Environment(format!(
            "the UI bundle is {gz} bytes gzipped, over the {BUDGET_GZIP_BYTES}-byte budget"
        )));
    }
    Ok(())
}
