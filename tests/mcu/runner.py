"""A tiny test runner for the shared firmware cases, for MicroPython (which has no pytest).

Runs every ``test_*`` function of the named modules and prints ``PASS name`` / ``FAIL name: why``
per case, then ``micropython: N passed, N failed``.  Under CPython, pytest runs the same
functions (tests/test_mcu_cases.py).
"""

import sys


def cases(module_names: list[str]) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for module_name in module_names:
        module = __import__(module_name)
        for name in sorted(dir(module)):
            if name.startswith("test_"):
                found.append((module_name + "." + name, getattr(module, name)))
    return found


def main(module_names: list[str]) -> int:
    """Run the cases; return how many failed."""
    passed = 0
    failed = 0
    for name, case in cases(module_names):
        try:
            case()  # type: ignore[operator]
        except Exception as exc:
            failed += 1
            print("FAIL %s: %s %s" % (name, type(exc).__name__, exc))
            print_exception = getattr(sys, "print_exception", None)
            if print_exception is not None:
                print_exception(exc)
        else:
            passed += 1
            print("PASS " + name)
    print("%s: %d passed, %d failed" % (sys.implementation.name, passed, failed))
    return failed
