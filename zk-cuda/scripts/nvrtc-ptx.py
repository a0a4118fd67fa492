#!/usr/bin/env python3
"""Compiles a CUDA source file to PTX with NVRTC (libnvrtc through ctypes).

Used by build.rs when there is no nvcc: the CUDA 12 compiler wheels on
PyPI ship ptxas and libnvvm but no nvcc driver, while the NVRTC wheel is a
complete CUDA C++ to PTX compiler.

    nvrtc-ptx.py --nvrtc LIBNVRTC --arch compute_80 -I DIR --out OUT.ptx SRC.cu
"""
import argparse
import ctypes
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nvrtc", required=True, help="path of libnvrtc.so")
    ap.add_argument("--arch", default="compute_80")
    ap.add_argument("-I", dest="include", action="append", default=[])
    ap.add_argument("--out", required=True)
    ap.add_argument("src")
    args = ap.parse_args()

    lib = ctypes.CDLL(args.nvrtc)
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def check(what: str, code: int) -> None:
        if code != 0:
            raise SystemExit(f"nvrtc-ptx: {what} failed: {lib.nvrtcGetErrorString(code).decode()}")

    major, minor = ctypes.c_int(), ctypes.c_int()
    check("nvrtcVersion", lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)))

    with open(args.src, "rb") as f:
        source = f.read()
    prog = ctypes.c_void_p()
    check(
        "nvrtcCreateProgram",
        lib.nvrtcCreateProgram(ctypes.byref(prog), source, args.src.encode(), 0, None, None),
    )
    opts = [f"--gpu-architecture={args.arch}", "--std=c++17"]
    opts += [f"--include-path={d}" for d in args.include]
    c_opts = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
    result = lib.nvrtcCompileProgram(prog, len(opts), c_opts)

    log_size = ctypes.c_size_t()
    check("nvrtcGetProgramLogSize", lib.nvrtcGetProgramLogSize(prog, ctypes.byref(log_size)))
    if log_size.value > 1:
        log = ctypes.create_string_buffer(log_size.value)
        check("nvrtcGetProgramLog", lib.nvrtcGetProgramLog(prog, log))
        sys.stderr.write(log.value.decode(errors="replace"))
    check("nvrtcCompileProgram", result)

    ptx_size = ctypes.c_size_t()
    check("nvrtcGetPTXSize", lib.nvrtcGetPTXSize(prog, ctypes.byref(ptx_size)))
    ptx = ctypes.create_string_buffer(ptx_size.value)
    check("nvrtcGetPTX", lib.nvrtcGetPTX(prog, ptx))
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    with open(args.out, "wb") as f:
        f.write(ptx.value)
    print(f"nvrtc-ptx: NVRTC {major.value}.{minor.value}, {args.arch}, {len(ptx.value)} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
