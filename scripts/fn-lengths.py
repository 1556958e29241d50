#!/usr/bin/env python3
"""Lists the longest Rust functions under src/ (lines from `fn` to its closing brace).

    scripts/fn-lengths.py [N] [DIR]     (default: 10 longest under src/)
A plain brace counter that skips strings, chars and comments: good enough for a report.
"""
import pathlib
import re
import sys

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(unsafe\s+)?(const\s+)?fn\s+(\w+)")


def strip(line, in_block):
    """The line without comments and string/char literals, and whether a block comment is open."""
    out, i = [], 0
    while i < len(line):
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            i, in_block = end + 2, False
        elif line.startswith("//", i):
            break
        elif line.startswith("/*", i):
            in_block, i = True, i + 2
        elif line[i] == '"':
            j = i + 1
            while j < len(line) and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            i = j + 1
        elif re.match(r"'(\\.|[^\\'])'", line[i:]):
            i += len(re.match(r"'(\\.|[^\\'])'", line[i:]).group(0))
        else:
            out.append(line[i])
            i += 1
    return "".join(out), in_block


def functions(path):
    lines = path.read_text().splitlines()
    found, in_block = [], False
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, started, j, block = 0, False, i, in_block
        while j < len(lines):
            code, block = strip(lines[j], block)
            if not started and ";" in code and "{" not in code:
                break  # a declaration without a body
            depth += code.count("{") - code.count("}")
            started = started or "{" in code
            if started and depth <= 0:
                found.append((j - i + 1, f"{path}:{i + 1}", m.group(6)))
                break
            j += 1
        i += 1
    return found


n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
root = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "src")
rows = sorted((f for p in root.rglob("*.rs") for f in functions(p)), reverse=True)
for length, where, name in rows[:n]:
    print(f"{length:5d}  {name:32s} {where}")
