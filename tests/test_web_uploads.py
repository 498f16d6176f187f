"""Uploads: capped while streaming, typed by content, stored under generated names outside any
URL, per-user quota, and nothing left behind when refused."""
import io
import os
import shutil

import pytest

from tests.conftest import api_client, web_client
from xrfweb.paths import tmp_dir, uploads_dir
from xrfweb.projects.models import Dataset

pytestmark = pytest.mark.django_db
HDF5 = b"\x89HDF\r\n\x1a\n" + bytes(4096)


@pytest.fixture(autouse=True)
def empty_store():
    """Each test starts with no stored uploads, so it can count what it leaves."""
    for folder in (uploads_dir(), tmp_dir()):
        shutil.rmtree(folder)


def multipart(content: bytes, name: str, fields: dict) -> bytes:
    """A body as any client may send it: the file name exactly as given, unsanitised."""
    parts = [f'--B\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--B\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + b"--B--\r\n"


def upload(client, project, content, name="scan.h5", **fields):
    return client.post(f"/projects/{project.id}/upload/", multipart(content, name, fields),
                       content_type="multipart/form-data; boundary=B")


def leftovers():
    return sorted(os.listdir(tmp_dir())) + sorted(os.listdir(uploads_dir()))


def test_an_upload_is_kept_under_a_generated_name(project, alice):
    response = upload(web_client(alice), project, HDF5, pixel_nm="40")
    assert response.status_code == 201
    dataset = Dataset.objects.get(id=response.json()["id"])
    assert dataset.status == "uploaded" and dataset.kind == "hdf5"
    assert dataset.pixel_nm_given == 40.0 and dataset.original_name == "scan.h5"
    assert dataset.path.parent == uploads_dir() and dataset.path.read_bytes() == HDF5
    assert dataset.stored_name != "scan.h5" and os.listdir(tmp_dir()) == []


@pytest.mark.parametrize("name", ["../../etc/passwd.h5", "C:\\Windows\\system32\\x.h5",
                                  "a" * 400 + ".h5", "\x00evil.h5", "/tmp/x.h5"])
def test_dangerous_names_never_reach_the_filesystem(project, alice, name):
    response = upload(web_client(alice), project, HDF5, name=name)
    assert response.status_code == 201
    dataset = Dataset.objects.get()
    assert os.listdir(uploads_dir()) == [dataset.stored_name]
    assert "/" not in dataset.original_name and "\\" not in dataset.original_name
    assert len(dataset.original_name) <= 255


def test_a_file_without_a_usable_name_is_refused(project, alice):
    response = upload(web_client(alice), project, HDF5, name="..")
    assert response.status_code == 400 and response.json()["error"] == "choose a file to upload"
    assert leftovers() == []


def test_the_type_is_told_by_content_not_by_name(project, alice):
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    response = upload(web_client(alice), project, png, name="maps.h5")
    assert response.status_code == 400
    assert "is not a file xrfweb reads" in response.json()["error"]
    response = upload(web_client(alice), project, HDF5, name="notes.txt")
    assert response.status_code == 201 and response.json()["status"] == "uploaded"
    assert Dataset.objects.get().stored_name.endswith(".h5")


def test_an_oversize_upload_is_stopped_while_streaming(project, alice, settings):
    settings.XRFWEB_MAX_UPLOAD_MB = 1
    big = HDF5 + bytes(1024 * 1024 + 512 * 1024)  # 1.5 MB: within the declared-size slack
    response = upload(web_client(alice), project, big)
    assert response.status_code == 413
    assert "larger than the 1 MB upload limit" in response.json()["error"]
    assert leftovers() == [] and not Dataset.objects.exists()


def test_an_upload_declared_too_big_is_refused_before_reading(project, alice, settings):
    settings.XRFWEB_MAX_UPLOAD_MB = 1
    response = upload(web_client(alice), project, HDF5 + bytes(3 * 1024 * 1024))
    assert response.status_code == 413
    assert leftovers() == [] and not Dataset.objects.exists()


def test_the_api_refuses_oversize_uploads_in_json(project, alice, settings):
    settings.XRFWEB_MAX_UPLOAD_MB = 1
    response = api_client(alice).post(
        f"/api/v1/projects/{project.id}/datasets/",
        {"file": io.BytesIO(HDF5 + bytes(1024 * 1024 + 1000))}, format="multipart")
    assert response.status_code == 413 and "upload limit" in response.json()["error"]
    assert leftovers() == []


def test_each_user_has_a_quota(project, alice, bob, settings):
    settings.XRFWEB_USER_QUOTA_MB = 1
    half = HDF5 + bytes(600 * 1024)
    assert upload(web_client(alice), project, half).status_code == 201
    response = upload(web_client(alice), project, half)
    assert response.status_code == 400 and "1 MB storage quota" in response.json()["error"]
    assert upload(web_client(bob), project, half).status_code == 201  # bob's own quota
    assert Dataset.objects.count() == 2 and len(os.listdir(uploads_dir())) == 2
    assert os.listdir(tmp_dir()) == []


@pytest.mark.parametrize("pixel", ["abc", "-5", "0", "nan", "inf"])
def test_a_bad_pixel_size_is_refused_with_a_message(project, alice, pixel):
    response = upload(web_client(alice), project, HDF5, pixel_nm=pixel)
    assert response.status_code == 400 and "scan step" in response.json()["error"]
    assert leftovers() == []


def test_uploads_are_served_only_through_the_authorised_view(project, alice, charlie):
    response = upload(web_client(alice), project, HDF5, name="scan.h5")
    dataset = Dataset.objects.get(id=response.json()["id"])
    for url in (f"/static/{dataset.stored_name}", f"/static/uploads/{dataset.stored_name}",
                f"/uploads/{dataset.stored_name}", f"/media/{dataset.stored_name}"):
        assert web_client(alice).get(url).status_code == 404, url
    download = web_client(alice).get(f"/datasets/{dataset.id}/file")
    assert b"".join(download.streaming_content) == HDF5
    assert 'filename="scan.h5"' in download["Content-Disposition"]
    assert web_client(charlie).get(f"/datasets/{dataset.id}/file").status_code == 404
