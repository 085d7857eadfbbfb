"""What the adversarial parser tests share (test modules import no other test module)."""
from minis3.core import errors as E


def value_or_s3_error(fn, *args, **kw):
    """Call ``fn``: a value, or an S3 error (anything else, a 500 in the making, fails the test)."""
    try:
        fn(*args, **kw)
    except E.S3Error:
        pass
