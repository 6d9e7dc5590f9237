#!/usr/bin/env python3
"""ABI discipline checks for librisk (STYLE.md "The ABI"; docs/abi.md).

  check-symbols.py symbols LIB MAP HEADER...
      The dynamic symbols LIB defines, the names in the linker version
      script MAP and the functions the HEADERs declare with RISK_API must be
      the same three sets; every export must carry a version of MAP.
  check-symbols.py soname LIB EXPECTED
      LIB's DT_SONAME must be EXPECTED.
  check-symbols.py static ARCHIVE LIB
      The global symbols the static ARCHIVE defines must be the ones the
      shared LIB exports: the internal helpers are local there too.

Standard library only; uses binutils' nm and readelf.
"""
import re
import subprocess
import sys


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def strip_comments(text):
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    return re.sub(r'//[^\n]*|#[^\n]*', ' ', text)


def header_functions(paths):
    """Names of the functions declared `RISK_API <type> name(`."""
    names = set()
    for path in paths:
        with open(path, encoding='utf-8') as f:
            text = strip_comments(f.read())
        for decl in re.finditer(r'\bRISK_API\b([^;{]*?)\(', text):
            m = re.search(r'(\w+)\s*$', decl.group(1))
            if m:
                names.add(m.group(1))
    return names


def map_symbols(path):
    """Names listed under `global:` in every version node of the map."""
    with open(path, encoding='utf-8') as f:
        text = re.sub(r'#[^\n]*', ' ', f.read())
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    names, versions, dups = set(), set(), set()
    for node in re.finditer(r'([\w.]+)\s*\{(.*?)\}\s*([\w.]*)\s*;', text, flags=re.S):
        versions.add(node.group(1))
        scope = 'global'
        for tok in re.findall(r'[\w*]+\s*:|[\w*]+\s*;', node.group(2)):
            word = tok.rstrip(':; \t\n')
            if tok.rstrip().endswith(':'):
                scope = word
            elif scope == 'global':
                if word in names:
                    dups.add(word)
                names.add(word)
    return names, versions, dups


def exported(lib):
    """(name, version) of each defined dynamic symbol of lib."""
    out = []
    for line in run('nm', '-D', '--defined-only', '--with-symbol-versions', lib).splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, sym = parts[1], parts[2]
        name, _, version = sym.partition('@')
        version = version.lstrip('@')
        if kind == 'A' and version in ('', name):   # a version node itself
            continue
        out.append((name, version))
    return out


def show(title, names):
    print(f'{title} ({len(names)}):')
    for n in sorted(names):
        print(f'  {n}')


def report(differences):
    """Print each non-empty (title, names); True when all are empty."""
    ok = True
    for title, names in differences:
        if names:
            ok = False
            show(title, names)
    return ok


def check_symbols(lib, mapfile, headers):
    exports = exported(lib)
    lib_names = {n for n, _ in exports}
    map_names, versions, dups = map_symbols(mapfile)
    hdr_names = header_functions(headers)
    ok = report([
        ('exported by the library but not in the map', lib_names - map_names),
        ('exported by the library but not declared RISK_API', lib_names - hdr_names),
        ('in the map but not defined by the library', map_names - lib_names),
        ('declared RISK_API but not defined by the library', hdr_names - lib_names),
        ('declared RISK_API but not in the map', hdr_names - map_names),
        ('in the map but not declared RISK_API', map_names - hdr_names),
        ('listed more than once in the map', dups),
        ('exported without a version of the map',
         {n for n, v in exports if v not in versions}),
        ('exported without the risk_ prefix',
         {n for n in lib_names if not n.startswith('risk_')}),
    ])
    print(f'library {len(lib_names)}, map {len(map_names)}, headers {len(hdr_names)}: '
          + ('the three sets agree' if ok else 'MISMATCH'))
    return ok


def check_static(archive, lib):
    defined = set()
    for line in run('nm', '-g', '--defined-only', archive).splitlines():
        parts = line.split()
        if len(parts) == 3:
            defined.add(parts[2])
    exports = {n for n, _ in exported(lib)}
    ok = report([('global in the archive but not exported by the shared library',
                  defined - exports),
                 ('exported by the shared library but not in the archive',
                  exports - defined)])
    print(f'archive {len(defined)} global symbols, shared library {len(exports)}: '
          + ('the same' if ok else 'MISMATCH'))
    return ok


def check_soname(lib, expected):
    m = re.search(r'\(SONAME\)\s+Library soname: \[([^\]]*)\]', run('readelf', '-d', lib))
    got = m.group(1) if m else None
    print(f'SONAME of {lib}: {got!r}, expected {expected!r}')
    return got == expected


def main(argv):
    if len(argv) >= 4 and argv[1] == 'symbols':
        return 0 if check_symbols(argv[2], argv[3], argv[4:]) else 1
    if len(argv) == 4 and argv[1] == 'static':
        return 0 if check_static(argv[2], argv[3]) else 1
    if len(argv) == 4 and argv[1] == 'soname':
        return 0 if check_soname(argv[2], argv[3]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
