"""hoard e2e test package: a wheel carrying a data file."""
import hashlib
import os

__version__ = "0.9.1"


def checksum(data):
    return hashlib.sha256(data).hexdigest()[:12]


def words():
    here = os.path.dirname(__file__)
    with open(os.path.join(here, "words.txt")) as f:
        return f.read().split()
