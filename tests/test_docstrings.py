"""Source hygiene: every public name has a docstring, and no source file grows past 500 lines.

Both checks read the sources with ``ast`` and import nothing, so they run in well under a second.
"Public" means a module-level function or class whose name does not start with ``_``, and every
method or property of such a class whose name does not start with ``_`` (dunders included in
that exclusion). ``@overload`` stubs and ``@x.setter`` / ``@x.deleter`` halves of a property are
exempt, since the docstring lives on the implementation / getter.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

DOC_PACKAGES = ("taaf", "export", "benchmarks", "hardware")
SIZE_PACKAGES = DOC_PACKAGES
MAX_LINES = 500

# Generated output, not source.
SKIP_DIRS = (Path("benchmarks") / "results",)

_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


def source_files(packages=DOC_PACKAGES) -> list[Path]:
    """All ``*.py`` files of ``packages`` (relative to the repo root), minus generated output."""
    files = []
    for pkg in packages:
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = path.relative_to(REPO)
            if any(rel.is_relative_to(skip) for skip in SKIP_DIRS):
                continue
            files.append(rel)
    return files


def _is_public(name: str) -> bool:
    return not name.startswith("_")


def _decorator_names(node) -> set[str]:
    """Trailing names of the decorators (``typing.overload`` -> ``overload``, ``x.setter`` -> ``setter``)."""
    names = set()
    for dec in node.decorator_list:
        if isinstance(dec, ast.Call):
            dec = dec.func
        if isinstance(dec, ast.Attribute):
            names.add(dec.attr)
        elif isinstance(dec, ast.Name):
            names.add(dec.id)
    return names


def _exempt(node) -> bool:
    return bool(_decorator_names(node) & {"overload", "setter", "deleter"})


def _has_doc(node) -> bool:
    doc = ast.get_docstring(node)
    return bool(doc and doc.strip())


def _module_level(body):
    """Module-level statements, looking inside top-level ``if`` / ``try`` blocks too."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            yield from _module_level(stmt.body)
            yield from _module_level(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody):
                yield from _module_level(block)
            for handler in stmt.handlers:
                yield from _module_level(handler.body)
        else:
            yield stmt


def undocumented(rel: Path) -> list[str]:
    """``path:line name`` for every public name in ``rel`` without a docstring."""
    tree = ast.parse((REPO / rel).read_text(encoding="utf-8"), filename=str(rel))
    missing = []
    for node in _module_level(tree.body):
        if isinstance(node, _FUNCS) and _is_public(node.name) and not _exempt(node):
            if not _has_doc(node):
                missing.append(f"{rel.as_posix()}:{node.lineno} {node.name}")
        elif isinstance(node, ast.ClassDef) and _is_public(node.name):
            if not _has_doc(node):
                missing.append(f"{rel.as_posix()}:{node.lineno} {node.name}")
            for member in node.body:
                if (isinstance(member, _FUNCS) and _is_public(member.name)
                        and not _exempt(member) and not _has_doc(member)):
                    missing.append(f"{rel.as_posix()}:{member.lineno} {node.name}.{member.name}")
    return missing


def oversized(rel: Path, limit: int = MAX_LINES) -> str | None:
    """``path: N lines`` when ``rel`` is longer than ``limit`` lines, else None."""
    n = len((REPO / rel).read_text(encoding="utf-8").splitlines())
    return f"{rel.as_posix()}: {n} lines" if n > limit else None


def test_source_packages_exist():
    for pkg in set(DOC_PACKAGES) | set(SIZE_PACKAGES):
        assert (REPO / pkg / "__init__.py").is_file(), pkg


def test_every_public_name_has_a_docstring():
    missing = [entry for rel in source_files(DOC_PACKAGES) for entry in undocumented(rel)]
    assert not missing, (f"{len(missing)} public name(s) without a docstring:\n"
                         + "\n".join(missing))


def test_no_source_file_exceeds_the_size_limit():
    offenders = [o for rel in source_files(SIZE_PACKAGES) if (o := oversized(rel))]
    assert not offenders, (f"source files over {MAX_LINES} lines:\n" + "\n".join(offenders))
