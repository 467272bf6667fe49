#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""test-public-headers: client/physmem.h is a header an application can live with.

1. The cmocka program (both public headers in one C program) passes.
2. physmem.h compiles on its own, first and alone, as strict C (c99, c11) and
   as C++ (c++11, c++17), with -Wall -Wextra -Werror -pedantic.
3. The example at the top of physmem.h compiles (as the body of a function).
4. No struct whose layout would be ABI is visible: the only struct defined in
   it is physmem_segment (documented never to grow); sizeof() of every other
   struct it names fails to compile (incomplete type), and no function takes
   or returns a struct by value.

usage: public_headers.py --header client/physmem.h --cc CC [--cxx CXX] --cmocka PROGRAM
Exits 77 (skip) only when no C++ compiler exists, after the C checks passed.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

KEPT = {"physmem_segment"}      # plain structs that are ABI on purpose


def check(cond, what):
    if not cond:
        print(f"not ok - {what}")
        sys.exit(1)
    print(f"ok - {what}")


def compile_snippet(compiler, lang, std, header, body):
    """Compile '#include header' + body; return (ok, diagnostics)."""
    suffix = ".c" if lang == "c" else ".cpp"
    with tempfile.TemporaryDirectory(prefix="physmem-hdr-") as d:
        src = os.path.join(d, "t" + suffix)
        with open(src, "w") as f:
            f.write(f'#include "{os.path.basename(header)}"\n{body}\n')
        p = subprocess.run([compiler, "-x", lang, f"-std={std}", "-Wall", "-Wextra", "-Werror", "-pedantic",
                            "-fsyntax-only", "-I", os.path.dirname(header), src],
                           capture_output=True, text=True, timeout=120)
        return p.returncode == 0, p.stderr


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--header", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--cxx", default="")
    ap.add_argument("--cmocka", required=True)
    a = ap.parse_args()

    p = subprocess.run([a.cmocka], capture_output=True, text=True, timeout=60)
    sys.stdout.write(p.stdout + p.stderr)
    check(p.returncode == 0, "both public headers in one C program: the cmocka checks pass")

    text = open(a.header).read()
    start = text.index("/*\n * libphysmem:")
    first_comment = text[start:text.index("*/", start)]
    example = [line[3:] for line in first_comment.splitlines() if line.startswith(" *\t")]
    check(len(example) > 10, f"physmem.h opens with an example ({len(example)} lines)")
    body = ("#include <stdio.h>\n#include <string.h>\n"
            "static void program_device(uint64_t address, uint64_t length) { (void)address; (void)length; }\n"
            "int example(void);\nint example(void)\n{\n" + "\n".join(example) + "\n\treturn 0;\n}")
    for std in ("c99", "c11"):
        ok, err = compile_snippet(a.cc, "c", std, a.header, body)
        check(ok, f"the example of physmem.h compiles ({std}){err and ': ' + err}")

    code = strip_comments(text)
    defined = set(re.findall(r"\b(?:struct|union)\s+(\w+)\s*\{", code))
    check(defined == KEPT, f"physmem.h defines only the structs kept on purpose {sorted(KEPT)}: {sorted(defined)}")
    named = set(re.findall(r"\bstruct\s+(\w+)", code))
    opaque = sorted(named - KEPT)
    check({"physmem", "physmem_buffer", "physmem_info", "physmem_status"} <= set(opaque),
          f"the opaque structs are named: {opaque}")
    # A struct by value: 'struct x' followed by a name, not by '*' (or by 'const *').
    by_value = [m.group(0) for m in re.finditer(r"\bstruct\s+(\w+)\s+(?:const\s+)?(?!const\b)[A-Za-z_]\w*", code)
                if m.group(1) not in KEPT]
    check(not by_value, f"no struct is passed or returned by value: {by_value}")

    compilers = [(a.cc, "c", "c99"), (a.cc, "c", "c11")]
    if a.cxx:
        compilers += [(a.cxx, "c++", "c++11"), (a.cxx, "c++", "c++17")]
    for compiler, lang, std in compilers:
        ok, err = compile_snippet(compiler, lang, std, a.header, "int physmem_header_alone;")
        check(ok, f"physmem.h alone compiles as {lang} ({std}, -pedantic -Werror){err and ': ' + err}")
        ok, err = compile_snippet(compiler, lang, std, a.header,
                                  "static const struct physmem_segment seg = { 1, 2 };\n"
                                  "int seg_size[sizeof(seg) == 16 && sizeof(seg.address) == 8 ? 1 : -1];")
        check(ok, f"{lang}: struct physmem_segment is the documented {{address, length}} of 16 bytes{err and ': ' + err}")
        for name in opaque:
            ok, err = compile_snippet(compiler, lang, std, a.header, f"int size_of_it = (int)sizeof(struct {name});")
            check(not ok and "incomplete" in err, f"{lang}: struct {name} is opaque (sizeof does not compile)")

    if not a.cxx:
        print("SKIP: no C++ compiler (install g++) to check physmem.h as C++")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
