"""hoard e2e test package: only an sdist is published, so pip builds a wheel
(in an isolated build environment fetched from the test index) and keeps it
in its wheel cache."""
from hoardtest_alpha import greet

__version__ = "2.0.3"


def main():
    return greet("gamma")
