#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a loop.

Usage: check-modules.py [--services] CRATE_SRC_DIR...

Every `crate::…` and `super::…` path in a source file (tests and comments
left out) is an edge from that file's module to the module the path names;
an edge to an ancestor (a module's own `mod.rs`) or a descendant does not
count. Any strongly connected group of two or more modules is reported.

With `--services` (the domain crate), two more rules over whole subdomains
(a top-level module and everything under it):
- the vocabulary — every module but the services — runs one way: no two
  subdomains' models, ports and errors import each other round a loop;
- no service imports another subdomain's service: a service module
  (`impl …Service` / `…Delivery` / `Housekeeping`, or the root `service`
  composition, which may use them all) calls no other.
"""
import collections
import os
import re
import sys


def modules(root):
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            if name.endswith(".rs"):
                path = os.path.relpath(os.path.join(directory, name), root)
                module = path[:-3].replace("/", "::")
                if module.endswith("::mod"):
                    module = module[: -len("::mod")]
                if module in ("lib", "main"):
                    module = ""
                found[module] = path
    return found


def source(path):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"(?s)#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text)
    return re.sub(r"(?m)//.*$", "", text)


def paths(text):
    """`a::b::c` paths after `crate::` / `super::`, braces expanded one level."""
    for match in re.finditer(r"\b(crate|super)((?:::super)*)::(\{[^}]*\}|[\w:]+)", text):
        base, supers, rest = match.group(1), match.group(2), match.group(3)
        depth = (1 if base == "super" else 0) + supers.count("super")
        items = [rest]
        if rest.startswith("{"):
            items = [p.strip() for p in rest[1:-1].split(",")]
        for item in items:
            item = item.split(" as ")[0].strip()
            if item and not item.startswith("{"):
                yield base, depth, [p for p in item.split("::") if p]


def graph(root):
    found = modules(root)
    edges = collections.defaultdict(set)
    for module, path in found.items():
        if module == "" or module.split("::")[0] == "testing":
            continue
        parts = module.split("::")
        is_dir = path.endswith("mod.rs")
        for base, depth, segs in paths(source(os.path.join(root, path))):
            if base == "crate":
                prefix = []
            else:
                # `super` of a file module a::b is a; of a directory module a is ''.
                own = parts if is_dir else parts[:-1]
                prefix = own[: len(own) - (depth - 1)] if depth >= 1 else own
                if is_dir:
                    prefix = parts[: len(parts) - depth]
                else:
                    prefix = parts[: len(parts) - depth]
            full = prefix + segs
            target = None
            for k in range(len(full), 0, -1):
                candidate = "::".join(full[:k])
                if candidate in found:
                    target = candidate
                    break
            if target is None or target == module:
                continue
            if module.startswith(target + "::") or target.startswith(module + "::"):
                continue
            edges[module].add(target)
    return found, edges


def cycles(nodes, edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


SERVICE_IMPL = re.compile(r"(?m)^impl (\w+Service|\w+Delivery|Housekeeping)\b")


def service_modules(root, found):
    return {
        module
        for module, path in found.items()
        if module in ("service",) or SERVICE_IMPL.search(source(os.path.join(root, path)))
    }


def check_services(root, found, edges):
    """The two subdomain rules of `--services`; returns the problems."""
    services = service_modules(root, found)
    problems = []
    top = collections.defaultdict(set)
    for module, targets in edges.items():
        for target in targets:
            a, b = module.split("::")[0], target.split("::")[0]
            if a == b:
                continue
            if module not in services:
                top[a].add(b)
            elif module != "service" and target in services:
                problems.append(f"service {module} imports service {target}")
    for loop in cycles(list(top), top):
        problems.append("subdomain vocabularies import each other in a loop: " + " <-> ".join(loop))
    return problems, len(services)


def main():
    failed = False
    args = sys.argv[1:]
    with_services = "--services" in args
    for root in [a for a in args if a != "--services"]:
        found, edges = graph(root)
        loops = cycles(list(found), edges)
        for loop in loops:
            failed = True
            print(f"{root}: modules import each other in a loop: {' <-> '.join(loop)}")
        if not loops:
            print(f"{root}: {len(found)} modules, {sum(map(len, edges.values()))} imports, no loop")
        if with_services:
            problems, count = check_services(root, found, edges)
            for problem in problems:
                failed = True
                print(f"{root}: {problem}")
            if not problems:
                print(f"{root}: {count} service modules call no other service; subdomain vocabularies run one way")
    sys.exit(1 if failed else 0)


main()
