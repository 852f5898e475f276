#!/usr/bin/env python3
"""Resident memory of a process by kind of mapping, from /proc/PID/smaps copies (issue #20's floor; docs/PERFORMANCE.md).
   bench/smaps-breakdown.py before.smaps [after.smaps]   -> MiB of Rss per group (and the difference)."""
import re, sys
from collections import defaultdict

HEADER = re.compile(r'^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$')

def group(name, perms):
    base = name.rsplit('/', 1)[-1]
    if name == '[heap]': return 'native heap [heap] (brk: malloc < 64 KiB)'
    if name.startswith('[stack'): return 'main thread stack'
    if name in ('[vdso]', '[vvar]', '[vsyscall]', '[vvar_vclock]'): return 'kernel pages (vdso, vvar)'
    if name.endswith('.safetensors'): return 'safetensors file map (weights shared with the page cache)'
    if name.startswith('/memfd:doublemapper'): return '.NET JIT code (doublemapper memfd)'
    if name.startswith('/memfd:'): return 'memfd ' + name[7:].split(' ')[0]
    if 'libtorch_cpu' in base: return 'libtorch_cpu.so ' + ('code' if 'x' in perms else 'data')
    if base.startswith(('libtorch', 'libc10', 'libgomp', 'libLibTorchSharp', 'libiomp', 'libmkl')): return 'other LibTorch libraries (' + ('code' if 'x' in perms else 'data') + ')'
    if 'dotnet' in name and base.endswith('.so'): return '.NET runtime .so (' + ('code' if 'x' in perms else 'data') + ')'
    if base.endswith('.dll'): return 'managed assemblies (.dll maps)'
    if base.endswith('.so') or '.so.' in base: return 'system .so (libc, libstdc++, ICU, ...)'
    if name == '': return 'anonymous (GC heap, malloc >= 64 KiB, thread stacks, LibTorch tensors)'
    return 'other file maps'

def read(path):
    groups, total, anon = defaultdict(float), 0.0, defaultdict(list)
    current = None
    for line in open(path):
        m = HEADER.match(line)
        if m:
            current = (group(m.group(4).strip(), m.group(3)), int(m.group(2), 16) - int(m.group(1), 16), m.group(4).strip(), m.group(3))
            continue
        if line.startswith('Rss:') and current:
            kb = int(line.split()[1]); groups[current[0]] += kb / 1024; total += kb / 1024
            if current[2] == '' and kb: anon[current[1] // 1024].append(kb)
    return groups, total, anon

a = read(sys.argv[1]); b = read(sys.argv[2]) if len(sys.argv) > 2 else None
keys = sorted(set(a[0]) | set(b[0] if b else {}), key=lambda k: -(b or a)[0].get(k, 0))
print('%-72s %9s' % ('mapping', 'before') + ('  %9s %9s' % ('after', 'change') if b else ''))
for k in keys:
    x = a[0].get(k, 0)
    print('%-72s %9.1f' % (k, x) + ('  %9.1f %+9.1f' % (b[0].get(k, 0), b[0].get(k, 0) - x) if b else ''))
print('%-72s %9.1f' % ('total Rss, MiB', a[1]) + ('  %9.1f %+9.1f' % (b[1], b[1] - a[1]) if b else ''))
# Anonymous mappings by size (KiB of address space -> resident KiB), the biggest: the GC's regions, stacks, tensors.
for label, (_, _, anon) in [('before', a)] + ([('after', b)] if b else []):
    top = sorted(((sum(v), size, len(v)) for size, v in anon.items()), reverse=True)[:12]
    print(f'anonymous, {label}: ' + ', '.join(f'{n}x {size} KiB map: {rss / 1024:.1f} MiB' for rss, size, n in top))
