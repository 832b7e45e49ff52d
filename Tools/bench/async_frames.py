#!/usr/bin/env python3
"""The frame size of every async function in a binary, largest first.

    Tools/bench/async_frames.py .build/release/spool-lab [--top 40] [--match SpoolEngine]

Each call of an async Swift function allocates its frame (every value that lives across one of
its `await`s, and those of the synchronous code inlined into it) from the task's allocator; a
frame that does not fit the allocator's current slab (about 1 KB) takes a new slab from
`malloc`, and one over 1,032 bytes is served outside glibc's per-thread cache. The size is
stored in the function's "async function pointer" (symbol suffix `Tu`): a 32-bit relative
address, then the 32-bit context size, which this script reads from the ELF file (`nm`,
`readelf`, and `swift demangle` for the names).
"""
import argparse
import struct
import subprocess


def sections(binary):
    """(address, file offset, size, name) of each section."""
    out = subprocess.run(["readelf", "-SW", binary], check=True, capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 6 and fields[0].startswith("[") and fields[0] != "[Nr]":
            try:
                found.append((int(fields[3], 16), int(fields[4], 16), int(fields[5], 16), fields[1]))
            except ValueError:
                continue
    return found


def frame_sizes(binary):
    symbols = subprocess.run(["nm", "--defined-only", binary], check=True, capture_output=True, text=True).stdout
    layout = [s for s in sections(binary) if s[3] != ".bss"]
    data = open(binary, "rb").read()
    sizes = []
    for line in symbols.splitlines():
        fields = line.split()
        if len(fields) != 3 or not fields[2].endswith("Tu"):
            continue
        address = int(fields[0], 16)
        for start, offset, size, _ in layout:
            if start <= address < start + size:
                position = offset + address - start
                _, context_size = struct.unpack("<iI", data[position:position + 8])
                sizes.append((context_size, fields[2]))
                break
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("--top", type=int, default=40, help="how many to print (default 40)")
    parser.add_argument("--match", default="", help="only names containing this text")
    args = parser.parse_args()
    sizes = sorted(frame_sizes(args.binary), reverse=True)
    names = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(name for _, name in sizes),
                           check=True, capture_output=True, text=True).stdout.splitlines()
    shown = 0
    for (size, _), name in zip(sizes, names):
        name = name.removeprefix("async function pointer to ")
        if args.match in name:
            print(f"{size:7,}  {name}")
            shown += 1
            if shown == args.top:
                break


if __name__ == "__main__":
    main()
