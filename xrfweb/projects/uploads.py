"""Uploads: streamed to disk, capped while streaming, stored under generated names, typed by content."""
from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

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


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Streams each file to a temporary file next to the store (FILE_UPLOAD_TEMP_DIR) and stops
    the upload once it passes XRFWEB_MAX_UPLOAD_MB (Django itself caps nothing).

    The view reads request.upload_refused for the reason; the partial file is deleted (Django
    closes the handler's NamedTemporaryFile when an upload stops)."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0
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
        if self.received > max_upload_bytes():
            self.request.upload_refused = refusal()
            raise StopUpload(connection_reset=False)  # read and drop the rest; store nothing
        return super().receive_data_chunk(raw_data, start)


def refusal() -> str:
    return f"the file is larger than the {settings.XRFWEB_MAX_UPLOAD_MB} MB upload limit"
