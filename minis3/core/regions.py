"""Which region a request belongs to, and what S3 answers when it reached the wrong one.

S3 is one global namespace of buckets over many regional fleets. DNS sends a
client to a region's endpoint; each request is also signed for a region (the
credential scope, ``20261126/eu-west-1/s3/aws4_request``). Two things can be
wrong, and S3 answers each so that an SDK can fix it by itself:

* **The bucket lives in another region** than the endpoint that got the
  request: ``301 PermanentRedirect``, with the endpoint to use in the body
  (``<Endpoint>``) and the bucket's region in ``x-amz-bucket-region``.
* **The signature names another region** than the one the request must be
  signed for: ``400 AuthorizationHeaderMalformed`` (or, for a presigned URL,
  ``AuthorizationQueryParametersError``) with ``<Region>`` naming the right one.

boto3's region redirector reads ``x-amz-bucket-region`` or ``<Region>``,
signs again for that region and resends, once. Creating a bucket has a rule of
its own (:func:`creation_region`). Pure: no I/O; the frontend asks the bucket
registry where a bucket lives and calls these.
"""
from __future__ import annotations

from . import errors as E

#: The region a CreateBucket without a LocationConstraint means (as in S3).
DEFAULT_REGION = "us-east-1"


def wrong_region(*, here: str, signed_for: str, bucket: str | None, bucket_region: str | None,
                 endpoint: str | None, presigned: bool = False) -> E.S3Error | None:
    """The error for a request that reached region ``here`` signed for
    ``signed_for``, about ``bucket`` (None: no bucket, e.g. ListBuckets) which
    lives in ``bucket_region`` (None: nowhere, or not known); ``endpoint`` is
    the host name to send the bucket's requests to. None: the request is in
    the right place."""
    if bucket is not None and bucket_region is not None and bucket_region != here:
        err = E.PermanentRedirect(Endpoint=endpoint or "", Bucket=bucket)
        err.headers["x-amz-bucket-region"] = bucket_region
        return err
    if signed_for != here:
        if presigned:
            err = E.AuthorizationQueryParametersError(
                f"Error parsing the X-Amz-Credential parameter; the region '{signed_for}' is wrong; "
                f"expecting '{here}'", Region=here)
        else:
            err = E.AuthorizationHeaderMalformed(
                f"The authorization header is malformed; the region '{signed_for}' is wrong; "
                f"expecting '{here}'", Region=here)
        if bucket_region is not None:
            err.headers["x-amz-bucket-region"] = bucket_region
        return err
    return None


def creation_region(constraint: str | None, *, here: str, regions: tuple[str, ...]) -> str:
    """The region a CreateBucket sent to region ``here`` creates its bucket in.

    As S3: no constraint means us-east-1, and naming us-east-1 is invalid.
    The us-east-1 endpoint (where S3's global endpoint goes) creates a bucket
    in any region; another region's endpoint only in its own, else
    IllegalLocationConstraintException. A region the topology does not
    have is InvalidLocationConstraint.
    """
    if constraint == DEFAULT_REGION:
        raise E.InvalidLocationConstraint(LocationConstraint=constraint)
    region = constraint or DEFAULT_REGION
    if here != DEFAULT_REGION and region != here:
        what = f"The {constraint} location constraint" if constraint else "The unspecified location constraint"
        raise E.IllegalLocationConstraintException(
            f"{what} is incompatible for the region specific endpoint this request was sent to.")
    if region not in regions:
        raise E.InvalidLocationConstraint(LocationConstraint=constraint or "")
    return region
