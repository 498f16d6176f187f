"""Uploads: streamed to disk, capped while streaming, stored under generated names, typed by content."""
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import JsonResponse, QueryDict
from django.utils.datastructures import MultiValueDict

from enhancer import UserError
from xrfweb.paths import tmp_dir

# What a file is, by its first bytes (never by its name or the browser's Content-Type).
MAGIC = [
    (b"\x89HDF\r\n\x1a\n", "hdf5", ".h5"),
    (b"II*\x00", "tiff", ".tiff"),
    (b"MM\x00*", "tiff", ".tiff"),
    (b"II+\x00", "tiff", ".tiff"),  # BigTIFF
    (b"MM\x00+", "tiff", ".tiff"),
    (b"PK\x03\x04", "zip", ".zip"),  # a TIFF set
    (b"\x93NUMPY", "npy", ".npy"),
]
HDF5_USERBLOCK_OFFSETS = (512, 1024, 2048, 4096)  # HDF5 may start after a user block


def sniff(path) -> tuple[str, str] | None:
    """(kind, suffix) of a file by content, or None when it is none we read."""
    with open(path, "rb") as f:
        head = f.read(8)
        for magic, kind, suffix in MAGIC:
            if head.startswith(magic):
                return kind, suffix
        for offset in HDF5_USERBLOCK_OFFSETS:
            f.seek(offset)
            if f.read(8) == MAGIC[0][0]:
                return "hdf5", ".h5"
    return None


def max_upload_bytes() -> int:
    return settings.XRFWEB_MAX_UPLOAD_MB * 1024 * 1024


def small_limit_bytes() -> int:
    """Django's own limit on a request body (2.5 MB): what every request gets, signed in or not,
    except a signed-in user's request to an upload view."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def takes_large_uploads(view):
    """Marks a view that takes maps or models: there, and only for a signed-in user (session or
    API token), a body may reach XRFWEB_MAX_UPLOAD_MB (UploadLimitMiddleware)."""
    view.takes_large_uploads = True
    return view


def _signed_in(request) -> bool:
    if request.user.is_authenticated:
        return True
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.exceptions import AuthenticationFailed

    try:
        return TokenAuthentication().authenticate(request) is not None  # reads headers only
    except AuthenticationFailed:
        return False


class UploadLimitMiddleware:
    """Before any view or the CSRF check reads a body: a signed-in user's request to an upload
    view may be large; any other request declaring more than Django's small limit is answered
    413 unread (nothing stored), and the upload handler stops a body that streams past it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "takes_large_uploads", False) and _signed_in(request):
            request.upload_limit_bytes = max_upload_bytes()
            return None
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > small_limit_bytes():
            return JsonResponse({"error": too_big()}, status=413)
        return None


def too_big() -> str:
    return (f"the request body is larger than {small_limit_bytes() / 2 ** 20:.1f} MB; only "
            "signed-in uploads may be larger")


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Streams each file to a temporary file next to the store (FILE_UPLOAD_TEMP_DIR) and stops
    the upload once it passes its limit: XRFWEB_MAX_UPLOAD_MB in a signed-in upload view
    (request.upload_limit_bytes), Django's small limit anywhere else (Django itself caps no
    file part).

    An upload view reads request.upload_refused for the reason; the partial file is deleted
    (Django closes the handler's NamedTemporaryFile when an upload stops). Anywhere else the
    request fails with RequestDataTooBig (400)."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0
        self.limit = getattr(self.request, "upload_limit_bytes", None)
        if self.limit is None:
            if content_length and content_length > small_limit_bytes():
                raise RequestDataTooBig(too_big())
            return None
        if content_length and content_length > max_upload_bytes() + 1024 * 1024:
            # Declared too big: answer without reading (or storing) any of it.
            self.request.upload_refused = refusal()
            return QueryDict(), MultiValueDict()
        return None

    def new_file(self, *args, **kwargs):
        tmp_dir()  # make sure it exists
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.limit is None and self.received > small_limit_bytes():
            self.file.close()  # deletes the partial file
            raise RequestDataTooBig(too_big())
        if self.received > max_upload_bytes():
            self.request.upload_refused = refusal()
            raise StopUpload(connection_reset=False)  # read and drop the rest; store nothing
        return super().receive_data_chunk(raw_data, start)


class UploadRefused(UserError):
    """The upload handler stopped an oversize upload (nothing kept): 413 with its reason."""
    http_status = 413


def uploaded_file(request, files, missing: str | None):
    """The multipart field 'file' of an upload view's parsed body (`files`: its FILES, parsed
    first, which is when the handler above may refuse it): UploadRefused with the handler's
    reason, else UserError(missing) when there is no file (missing=None: none is asked for)."""
    refused = getattr(request, "upload_refused", None)
    if refused:
        raise UploadRefused(refused)
    uploaded = files.get("file")
    if uploaded is None and missing:
        raise UserError(missing)
    return uploaded


def refusal() -> str:
    return f"the file is larger than the {settings.XRFWEB_MAX_UPLOAD_MB} MB upload limit"
