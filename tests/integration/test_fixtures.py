"""The suites' own fixtures: one that starts a server (httpd, PostgreSQL,
stunnel: anything with .start()) before it yields must stop it even when
it fails before the yield, so the start and the yield stand inside one
try whose finally cleans up.  Otherwise a server that started but did not
answer, or a check after the start that failed, is left running."""
import ast
import glob
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def is_fixture(fn):
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            return True
        if isinstance(target, ast.Name) and target.id == "fixture":
            return True
    return False


def walk_here(node):
    """ast.walk without the bodies of functions defined inside (a factory
    the fixture yields runs later, in the test)."""
    if isinstance(node, (ast.FunctionDef, ast.Lambda)):
        return
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(c for c in ast.iter_child_nodes(n)
                    if not isinstance(c, (ast.FunctionDef, ast.Lambda)))


def calls_start(node):
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
               and n.func.attr == "start" for n in walk_here(node))


def has_yield(node):
    return any(isinstance(n, (ast.Yield, ast.YieldFrom))
               for n in ast.walk(node))


def unguarded_starts(source, name):
    """(file:line, fixture) of every .start() a fixture runs before its
    yield outside the try/finally around that yield."""
    bad = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef) or not is_fixture(fn):
            continue
        for stmt in fn.body:
            if has_yield(stmt):
                guarded = isinstance(stmt, ast.Try) and stmt.finalbody
                if not guarded and calls_start(stmt):
                    bad.append("%s:%d %s" % (name, stmt.lineno, fn.name))
                break
            if calls_start(stmt):
                bad.append("%s:%d %s" % (name, stmt.lineno, fn.name))
    return bad


def test_fixtures_stop_what_they_started():
    bad = []
    for path in sorted(glob.glob(os.path.join(HERE, "*.py"))):
        with open(path) as f:
            bad += unguarded_starts(f.read(), os.path.basename(path))
    assert not bad, ("fixtures that start a server before yield without "
                     "try/finally:\n" + "\n".join(bad))


def test_the_check_finds_an_unguarded_start():
    src = ("import pytest\n@pytest.fixture\ndef srv():\n"
           "    h = object()\n    h.start()\n    yield h\n    h.stop()\n")
    assert unguarded_starts(src, "x.py") == ["x.py:5 srv"]
    good = ("import pytest\n@pytest.fixture\ndef srv():\n"
            "    h = object()\n    try:\n        h.start()\n        yield h\n"
            "    finally:\n        h.stop()\n")
    assert unguarded_starts(good, "x.py") == []
