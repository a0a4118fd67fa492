//! Compiles the host shim (always) and, with feature `cuda`, the kernels
//! to PTX for `compute_80`, embedded by `src/cuda.rs`.
//!
//! The CUDA compiler is, in order: `$NVCC`; NVRTC 12.2 in the toolchain
//! venv (`$ZK_CUDA_TOOLCHAIN`, default `$HOME/.cache/agent-ledger/nvrtc`,
//! made by `scripts/install-nvcc.sh`); `nvcc` on `PATH`. PTX needs no GPU.
//! The build runs the venv's Python and loads its library, so a venv not
//! owned by the building user, or writable by group or others, is refused.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The toolchain venv under `$HOME`.
const DEFAULT_TOOLCHAIN: &str = ".cache/agent-ledger/nvrtc";
const ARCH: &str = "compute_80";

fn main() {
    for f in ["cuda/curve25519.cuh", "cuda/ct_fixed_base.cuh", "cuda/host.c", "cuda/kernels.cu", "scripts/nvrtc-ptx.py"] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=ZK_CUDA_TOOLCHAIN");

    cc::Build::new().file("cuda/host.c").include("cuda").std("c11").warnings(true).extra_warnings(true).compile("zk_cuda_host");

    if env::var_os("CARGO_FEATURE_CUDA").is_some() {
        let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("kernels.ptx");
        build_ptx(&out);
    }
}

fn build_ptx(out: &Path) {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let cuda_dir = manifest.join("cuda");
    let src = cuda_dir.join("kernels.cu");

    if let Some(nvcc) = env::var_os("NVCC") {
        return run_nvcc(Path::new(&nvcc), &cuda_dir, &src, out);
    }
    let toolchain = env::var_os("ZK_CUDA_TOOLCHAIN")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(DEFAULT_TOOLCHAIN)));
    if let Some(nvrtc) = toolchain.as_deref().and_then(find_nvrtc) {
        let toolchain = toolchain.as_deref().unwrap_or(Path::new("."));
        trusted(toolchain, out);
        let python = toolchain.join("bin/python");
        let mut cmd = Command::new(&python);
        cmd.arg(manifest.join("scripts/nvrtc-ptx.py"))
            .arg("--nvrtc")
            .arg(&nvrtc)
            .args(["--arch", ARCH, "-I"])
            .arg(&cuda_dir)
            .arg("--out")
            .arg(out)
            .arg(&src);
        // libnvrtc loads libnvrtc-builtins from its own directory.
        if let Some(dir) = nvrtc.parent() {
            cmd.env("LD_LIBRARY_PATH", dir);
        }
        return run(cmd, "NVRTC");
    }
    if Command::new("nvcc").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return run_nvcc(Path::new("nvcc"), &cuda_dir, &src, out);
    }
    panic!(
        "zk-cuda: feature `cuda` needs a CUDA compiler to build its PTX and none was found.\n\
         Run zk-cuda/scripts/install-nvcc.sh (installs NVRTC 12.2 from PyPI into $HOME/{DEFAULT_TOOLCHAIN}),\n\
         or set NVCC=/path/to/nvcc, or ZK_CUDA_TOOLCHAIN to a venv holding nvidia-cuda-nvrtc-cu12."
    );
}

fn run_nvcc(nvcc: &Path, cuda_dir: &Path, src: &Path, out: &Path) {
    let mut cmd = Command::new(nvcc);
    cmd.args(["-ptx", &format!("-arch={ARCH}"), "-O3", "-std=c++17", "-I"]).arg(cuda_dir).arg("-o").arg(out).arg(src);
    run(cmd, "nvcc");
}

fn run(mut cmd: Command, what: &str) {
    match cmd.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("zk-cuda: {what} failed ({status}): {cmd:?}"),
        Err(e) => panic!("zk-cuda: could not run {what} ({e}): {cmd:?}"),
    }
}

/// `libnvrtc.so.12` of the `nvidia-cuda-nvrtc-cu12` wheel in a venv.
fn find_nvrtc(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let entries = std::fs::read_dir(&lib).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"))
        .find(|p| p.is_file())
        .filter(|_| venv.join("bin/python").is_file())
}

/// Refuses a toolchain the building user does not alone control: the venv
/// folder and its `bin` and `lib` folders (what holds the Python it runs and
/// the library it loads) must be owned by the owner of `out` (this build's
/// output, so the building user) and not writable by group or others.
fn trusted(venv: &Path, out: &Path) {
    use std::os::unix::fs::MetadataExt;
    let me = out.parent().and_then(|d| std::fs::metadata(d).ok()).map(|m| m.uid());
    for p in [venv.to_path_buf(), venv.join("bin"), venv.join("lib")] {
        let Ok(m) = std::fs::metadata(&p) else {
            panic!("zk-cuda: cannot read {}", p.display());
        };
        if Some(m.uid()) != me || m.mode() & 0o022 != 0 {
            panic!(
                "zk-cuda: refusing the CUDA toolchain at {}: {} is not owned by the building user or is writable by group or others",
                venv.display(),
                p.display()
            );
        }
    }
}
