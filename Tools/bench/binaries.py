"""Command lines shared by the scripts that compare `spool-lab` binaries (ab.py, callgrind.py):
`[options] NAME=PATH ... [-- arguments for bench workflows]`."""
import os
import sys


def parse(parser, argv):
    """Parses `argv` up to `--` with `parser` (which has a `binaries` positional of NAME=PATH),
    and returns (args, [(name, path)], the arguments after `--`)."""
    split = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:split]), argv[split + 1:]
    named = []
    for spec in args.binaries:
        name, sep, path = spec.partition("=")
        if not sep or not os.access(path, os.X_OK):
            sys.exit(f"{spec!r}: expected NAME=PATH of an executable")
        named.append((name, path))
    return args, named, extra
