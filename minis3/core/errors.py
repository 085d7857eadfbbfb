"""S3 errors as values.

Every error a client can see is a subclass of :class:`S3Error` carrying S3's
code name, its HTTP status and a default message. Handlers raise them; one
place (``minis3.frontend.app``) turns them into the XML body with the request
id. Nothing here knows about HTTP libraries.
"""
from __future__ import annotations


class S3Error(Exception):
    code = "InternalError"
    status = 500
    message = "We encountered an internal error. Please try again."

    def __init__(self, message: str | None = None, *, resource: str | None = None,
                 **extra: str):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.resource = resource
        # Extra elements S3 adds to some errors (e.g. <BucketName>, <Key>,
        # <StringToSign>, <CanonicalRequest>).
        self.extra = extra
        self.headers: dict[str, str] = {}


def _e(name: str, status: int, message: str) -> type[S3Error]:
    cls = type(name, (S3Error,), {"code": name, "status": status, "message": message})
    globals()[name] = cls
    return cls


# The names below are S3's own (see "Error responses" in the S3 API reference).
AccessDenied = _e("AccessDenied", 403, "Access Denied")
AuthorizationHeaderMalformed = _e("AuthorizationHeaderMalformed", 400,
                                  "The authorization header is malformed.")
AuthorizationQueryParametersError = _e("AuthorizationQueryParametersError", 400,
                                       "Query-string authentication parameters are malformed.")
BadDigest = _e("BadDigest", 400, "The Content-MD5 or checksum you specified did not match what we received.")
BucketAlreadyExists = _e("BucketAlreadyExists", 409,
                         "The requested bucket name is not available.")
BucketAlreadyOwnedByYou = _e("BucketAlreadyOwnedByYou", 409,
                             "Your previous request to create the named bucket succeeded and you already own it.")
BucketNotEmpty = _e("BucketNotEmpty", 409, "The bucket you tried to delete is not empty")
EntityTooLarge = _e("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.")
EntityTooSmall = _e("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size.")
IncompleteBody = _e("IncompleteBody", 400,
                    "You did not provide the number of bytes specified by the Content-Length HTTP header.")
InternalError = _e("InternalError", 500, "We encountered an internal error. Please try again.")
InvalidAccessKeyId = _e("InvalidAccessKeyId", 403,
                        "The AWS Access Key Id you provided does not exist in our records.")
InvalidArgument = _e("InvalidArgument", 400, "Invalid Argument")
InvalidBucketName = _e("InvalidBucketName", 400, "The specified bucket is not valid.")
InvalidDigest = _e("InvalidDigest", 400, "The Content-MD5 or checksum you specified is not valid.")
IllegalLocationConstraintException = _e(
    "IllegalLocationConstraintException", 400,
    "The location constraint is incompatible for the region specific endpoint this request was sent to.")
InvalidLocationConstraint = _e("InvalidLocationConstraint", 400,
                               "The specified location-constraint is not valid.")
InvalidURI = _e("InvalidURI", 400, "Couldn't parse the specified URI.")
InvalidPart = _e("InvalidPart", 400, "One or more of the specified parts could not be found. The part may not have "
                 "been uploaded, or the specified entity tag may not match the part's entity tag.")
InvalidPartOrder = _e("InvalidPartOrder", 400, "The list of parts was not in ascending order. The parts list must "
                      "be specified in order by part number.")
InvalidPartNumber = _e("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")
InvalidRange = _e("InvalidRange", 416, "The requested range is not satisfiable")
InvalidRequest = _e("InvalidRequest", 400, "Invalid Request")
InvalidStorageClass = _e("InvalidStorageClass", 400, "The storage class you specified is not valid")
KeyTooLongError = _e("KeyTooLongError", 400, "Your key is too long")
MalformedPolicy = _e("MalformedPolicy", 400, "Policies must be valid JSON and the first byte must be '{'")
MalformedXML = _e("MalformedXML", 400,
                  "The XML you provided was not well-formed or did not validate against our published schema")
MetadataTooLarge = _e("MetadataTooLarge", 400,
                      "Your metadata headers exceed the maximum allowed metadata size.")
MethodNotAllowed = _e("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
MissingContentLength = _e("MissingContentLength", 411, "You must provide the Content-Length HTTP header.")
MissingSecurityHeader = _e("MissingSecurityHeader", 400, "Your request is missing a required header.")
NoSuchBucket = _e("NoSuchBucket", 404, "The specified bucket does not exist")
NoSuchKey = _e("NoSuchKey", 404, "The specified key does not exist.")
NoSuchUpload = _e("NoSuchUpload", 404, "The specified upload does not exist.")
NotImplemented_ = _e("NotImplemented", 501,
                     "A header you provided implies functionality that is not implemented")
PermanentRedirect = _e("PermanentRedirect", 301,
                       "The bucket you are attempting to access must be addressed using the specified endpoint. "
                       "Please send all future requests to this endpoint.")
PreconditionFailed = _e("PreconditionFailed", 412,
                        "At least one of the pre-conditions you specified did not hold")
RequestHeaderSectionTooLarge = _e("RequestHeaderSectionTooLarge", 400,
                                  "Your request header section exceeds the maximum allowed size.")
RequestTimeout = _e("RequestTimeout", 400,
                    "Your socket connection to the server was not read from or written to within the timeout "
                    "period. Idle connections will be closed.")
RequestTimeTooSkewed = _e("RequestTimeTooSkewed", 403,
                          "The difference between the request time and the current time is too large.")
ServiceUnavailable = _e("ServiceUnavailable", 503, "Service is unable to handle request.")
SignatureDoesNotMatch = _e("SignatureDoesNotMatch", 403,
                           "The request signature we calculated does not match the signature you provided. "
                           "Check your key and signing method.")
SlowDown = _e("SlowDown", 503, "Please reduce your request rate.")
XAmzContentSHA256Mismatch = _e("XAmzContentSHA256Mismatch", 400,
                               "The provided 'x-amz-content-sha256' header does not match what was computed.")
ConditionalRequestConflict = _e("ConditionalRequestConflict", 409,
                                "A conflicting conditional operation is currently in progress against this resource.")
InvalidObjectState = _e("InvalidObjectState", 403, "The operation is not valid for the current state of the object.")
BadRequest = _e("BadRequest", 400, "Bad Request")
InvalidTag = _e("InvalidTag", 400, "The tag provided was not a valid tag.")
NoSuchTagSet = _e("NoSuchTagSet", 404, "The TagSet does not exist")
# 304 is not an error in S3's sense, but it ends a request early exactly like one.
NotModified = _e("NotModified", 304, "Not Modified")
NoSuchVersion = _e("NoSuchVersion", 404,
                   "The specified version does not exist.")
IllegalVersioningConfigurationException = _e(
    "IllegalVersioningConfigurationException", 400,
    "The versioning configuration specified in the request is invalid.")
# Between the frontend and a metadata replica only (never sent to a client):
# an unversioned write refused in a bucket that keeps versions.
VersionedBucket = _e("VersionedBucket", 409, "The bucket keeps versions: this write must keep the one it replaces.")
# Access: bucket policies, Block Public Access, Object Ownership and ACLs.
NoSuchBucketPolicy = _e("NoSuchBucketPolicy", 404, "The bucket policy does not exist")
NoSuchPublicAccessBlockConfiguration = _e("NoSuchPublicAccessBlockConfiguration", 404,
                                          "The public access block configuration was not found")
OwnershipControlsNotFoundError = _e("OwnershipControlsNotFoundError", 404, "The bucket ownership controls were not found")
AccessControlListNotSupported = _e("AccessControlListNotSupported", 400, "The bucket does not allow ACLs")
AccessForbidden = _e("AccessForbidden", 403, "CORSResponse: This CORS request is not allowed.")
NoSuchCORSConfiguration = _e("NoSuchCORSConfiguration", 404, "The CORS configuration does not exist")
NoSuchLifecycleConfiguration = _e("NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist")
MalformedPOSTRequest = _e("MalformedPOSTRequest", 400,
                          "The body of your POST request is not well-formed multipart/form-data.")
InvalidPolicyDocument = _e("InvalidPolicyDocument", 400, "Invalid Policy: Invalid JSON.")
MaxPostPreDataLengthExceededError = _e("MaxPostPreDataLengthExceededError", 400,
                                       "Your POST request fields preceding the upload file were too large.")
UnexpectedContent = _e("UnexpectedContent", 400, "This request does not support content")
MalformedACLError = _e("MalformedACLError", 400,
                       "The XML you provided was not well-formed or did not validate against our published schema.")
UnresolvableGrantByEmailAddress = _e("UnresolvableGrantByEmailAddress", 400,
                                     "The e-mail address you provided does not match any account on record.")
InvalidBucketAclWithObjectOwnership = _e("InvalidBucketAclWithObjectOwnership", 400,
                                         "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting")
# Encryption at rest (core/sse.py).
InvalidEncryptionAlgorithmError = _e("InvalidEncryptionAlgorithmError", 400,
                                     "The encryption request you specified is not valid. The valid value is AES256.")
# AWS KMS's own error, passed through by S3 for a key it cannot find (a dot in S3's code).
KMSNotFound = type("KMSNotFound", (S3Error,), {"code": "KMS.NotFoundException", "status": 400,
                                               "message": "Invalid keyId"})
# Object Lock (core/objectlock.py).
InvalidBucketState = _e("InvalidBucketState", 409, "The request is not valid with the current state of the bucket.")
ObjectLockConfigurationNotFoundError = _e("ObjectLockConfigurationNotFoundError", 404,
                                          "Object Lock configuration does not exist for this bucket")
NoSuchObjectLockConfiguration = _e("NoSuchObjectLockConfiguration", 404,
                                   "The specified object does not have a ObjectLock configuration")
