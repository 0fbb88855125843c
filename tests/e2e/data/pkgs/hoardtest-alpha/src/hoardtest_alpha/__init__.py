"""hoard e2e test package: a wheel that depends on hoardtest-beta."""
from hoardtest_beta import checksum

__version__ = "1.2.0"


def greet(name):
    return f"alpha says hello to {name} ({checksum(name.encode())})"
