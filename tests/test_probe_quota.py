"""A measured probe file counts towards the storage quota of the user who attached it, like any
file they upload (xrfweb.projects.services.ensure_room): an attach past it is refused with 400
naming the quota, and nothing is stored."""
import io
import os

import numpy as np
import pytest

from enhancer.probe import zone_plate_probe
from tests.conftest import api_client, make_dataset
from tests.test_measured_probe_web import attach, npy_bytes, stored_probes
from xrfweb.paths import tmp_dir, uploads_dir
from xrfweb.projects.models import Dataset, Project

HDF5 = b"\x89HDF\r\n\x1a\n"


def big_probe() -> bytes:
    """A zone plate's focus (200 nm FWHM, 10 nm pixels) in a 280 x 280 float64 array: 627 KB."""
    a = np.zeros((280, 280))
    a[30:251, 30:251] = zone_plate_probe(200, 10)
    return npy_bytes(a)


def upload_map(client, project, size):
    f = io.BytesIO(HDF5 + bytes(size))
    f.name = "big.h5"
    return client.post(f"/api/v1/projects/{project.id}/datasets/", {"file": f}, format="multipart")


@pytest.mark.django_db
def test_a_probe_counts_towards_the_quota_of_who_attached_it(project, alice, staff, settings):
    settings.XRFWEB_USER_QUOTA_MB = 1
    mine = Project.objects.create(name="staff's", owner=staff)
    alices, staffs = make_dataset(project, alice), make_dataset(mine, staff)
    api = api_client(staff)
    assert attach(api, alices.id, big_probe(), name="zp.npy").status_code == 201

    before = stored_probes()
    response = attach(api, staffs.id, big_probe(), name="second.npy")
    assert response.status_code == 400, response.content
    assert "1 MB storage quota" in response.json()["error"]
    assert stored_probes() == before and os.listdir(tmp_dir()) == []  # nothing stored
    staffs.refresh_from_db()
    assert staffs.measured_probe is None
    # An upload of a map counts the probe too; the dataset's owner is not charged for it.
    response = upload_map(api, mine, 600 * 1024)
    assert response.status_code == 400 and "1 MB storage quota" in response.json()["error"]
    assert upload_map(api_client(alice), project, 600 * 1024).status_code == 201
    assert Dataset.objects.count() == 3

    # Replacing one's own probe frees what it took; detaching frees it all.
    response = attach(api, alices.id, big_probe(), name="again.npy")
    assert response.status_code == 201 and response.json()["measured_probe"]["name"] == "again.npy"
    assert api.delete(f"/api/v1/datasets/{alices.id}/probe/").status_code == 200
    assert attach(api, staffs.id, big_probe(), name="second.npy").status_code == 201


@pytest.mark.django_db
def test_probes_attached_before_the_quota_counted_them_count_for_the_project_owner(project, alice):
    """Migration 0005: a probe row from 0004's days (no attached_by) is charged to the owner."""
    import importlib

    from django.apps import apps

    from xrfweb.projects.services import used_bytes

    old = make_dataset(project, alice)
    old.measured_probe = {"name": "zp.npy", "file": "x.npy", "pixel_nm": 5.0, "fwhm_nm": [40.0, 40.0],
                          "dataset_path": None, "size_bytes": 12345}
    old.save()
    before = used_bytes(alice)
    migration = importlib.import_module("xrfweb.projects.migrations.0005_measured_probe_attached_by")
    migration.owner_holds_old_probes(apps, None)
    old.refresh_from_db()
    assert old.measured_probe["attached_by"] == alice.id
    assert used_bytes(alice) == before + 12345


class _Upload:
    """A streamed upload as Django leaves it on disk (what keep_upload takes)."""

    def __init__(self, path, name):
        self.path, self.name, self.size = str(path), name, os.path.getsize(path)

    def temporary_file_path(self):
        return self.path


@pytest.mark.django_db(transaction=True)
def test_two_uploads_at_once_cannot_both_pass_the_quota(project, alice, settings, monkeypatch, held_messages):
    """Both pass the early check; under the lock on the user's row the second counts the first."""
    import threading

    from django.db import connection

    from xrfweb.projects import services

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write at a time; the race needs PostgreSQL (CI)")
    settings.XRFWEB_USER_QUOTA_MB = 1
    both_checked, real_sniff = threading.Barrier(2, timeout=30), services.sniff
    monkeypatch.setattr(services, "sniff", lambda path: both_checked.wait() is None or real_sniff(path))
    outcomes, stored_before = [], len(list(uploads_dir().iterdir()))

    def upload(i):
        path = tmp_dir() / f"race-{i}.h5"
        path.write_bytes(HDF5 + bytes(600 * 1024))
        try:
            outcomes.append(services.keep_upload(alice, project, _Upload(path, f"race-{i}.h5")))
        except Exception as e:  # noqa: BLE001 - the test reads what each upload met
            outcomes.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    kept = [o for o in outcomes if isinstance(o, Dataset)]
    refused = [str(o) for o in outcomes if not isinstance(o, Dataset)]
    assert len(kept) == 1 and len(refused) == 1, outcomes
    assert "1 MB storage quota" in refused[0]
    assert Dataset.objects.count() == 1
    assert sorted(p.name for p in tmp_dir().glob("race-*")) == []  # kept one renamed, the other removed
    assert len(list(uploads_dir().iterdir())) == stored_before + 1  # nothing half-kept
