"""Evidence in an S3-compatible store, against a real S3-speaking server process.

moto's standalone server is started as a subprocess on 127.0.0.1 (no patched client: the
application talks HTTP to it through django-storages and boto3, as it would to MinIO or AWS),
and the ``evidence`` storage alias is pointed at it the way the environment does in production.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import boto3
import pytest

from investigations import actions, custody
from investigations.models import Alert, AlertKind, Evidence, Integrity

from .evidence_helpers import PDF, upload

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

KEYS = {"access_key": "custos-test", "secret_key": "custos-test-secret", "region_name": "eu-central-1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """A moto S3 server process for this module; its URL."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "AWS_ACCESS_KEY_ID": KEYS["access_key"], "AWS_SECRET_ACCESS_KEY": KEYS["secret_key"]},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)  # noqa: S310 (our own server on loopback)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"the moto server did not start (exit {server.poll()}); see {log.name}")
            time.sleep(0.2)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def bucket(s3_endpoint, settings):
    """A fresh bucket, and the ``evidence`` alias on it (as ``EVIDENCE_S3_*`` would configure it)."""
    name = f"evidence-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
        region_name=KEYS["region_name"],
    )
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": KEYS["region_name"]})
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": s3_endpoint,
                "location": "evidence",
                "file_overwrite": False,
                "default_acl": None,
                **KEYS,
            },
        },
    }
    return client, name


def _objects(client, name: str) -> list[str]:
    return [entry["Key"] for entry in client.list_objects_v2(Bucket=name).get("Contents", [])]


def test_evidence_round_trip_through_s3(bucket, open_case, member):
    client, name = bucket
    item = actions.evidence_upload(actor=member, case=open_case, upload=upload(PDF, "interview.pdf"))
    assert _objects(client, name) == [f"evidence/{item.stored_name}"]
    stored = client.get_object(Bucket=name, Key=f"evidence/{item.stored_name}")["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == item.sha256 == hashlib.sha256(PDF).hexdigest()
    with actions.evidence_download(actor=member, evidence=item) as handle:
        assert handle.read() == PDF
    assert actions.evidence_verify_due().failed == []
    assert Evidence.objects.get(pk=item.pk).integrity == Integrity.INTACT


def test_an_object_changed_or_deleted_in_the_bucket_is_detected_and_alerted(bucket, open_case, member):
    client, name = bucket
    changed = actions.evidence_upload(actor=member, case=open_case, upload=upload(PDF, "a.pdf"))
    deleted = actions.evidence_upload(actor=member, case=open_case, upload=upload(PDF + b"%2", "b.pdf"))
    client.put_object(Bucket=name, Key=f"evidence/{changed.stored_name}", Body=PDF.replace(b"Catalog", b"Catalug"))
    client.delete_object(Bucket=name, Key=f"evidence/{deleted.stored_name}")
    run = actions.evidence_verify_due()
    assert sorted(run.failed) == sorted([changed.pk, deleted.pk])
    assert Evidence.objects.get(pk=changed.pk).integrity == Integrity.MISMATCH
    assert Evidence.objects.get(pk=deleted.pk).integrity == Integrity.MISSING
    assert Alert.objects.filter(kind=AlertKind.EVIDENCE_INTEGRITY).count() == 2


def test_a_saved_query_result_goes_to_the_bucket(bucket, succeeded_query, lead):
    client, name = bucket
    saved = actions.evidence_save_query_result(actor=lead, query=succeeded_query)
    assert sorted(_objects(client, name)) == sorted(f"evidence/{item.stored_name}" for item in saved)
    for item in saved:
        assert custody.rehash(item.stored_name).sha256 == item.sha256


def test_the_environment_configures_the_s3_store():
    """``EVIDENCE_S3_*`` in the environment give the alias its backend and options."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "EVIDENCE_S3_BUCKET": "case-evidence",
        "EVIDENCE_S3_ENDPOINT_URL": "https://objects.example.org:9000",
        "EVIDENCE_S3_REGION": "eu-central-1",
        "EVIDENCE_S3_ACCESS_KEY_ID": "key-id",
        "EVIDENCE_S3_SECRET_ACCESS_KEY": "secret",
    }
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.STORAGES['evidence']))"
    )
    output = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    configured = json.loads(output.stdout.strip().splitlines()[-1])
    assert configured["BACKEND"] == "storages.backends.s3.S3Storage"
    options = configured["OPTIONS"]
    assert options["bucket_name"] == "case-evidence" and options["endpoint_url"] == "https://objects.example.org:9000"
    keys = (options["region_name"], options["access_key"], options["secret_key"])
    assert keys == ("eu-central-1", "key-id", "secret")
    assert options["file_overwrite"] is False and options["default_acl"] is None
