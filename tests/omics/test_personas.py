"""The remaining omics endpoints, for the three personas: adding files and linking specimens."""

from __future__ import annotations

import pytest

from tests.omics.test_omics import SHA, _dataset, specimens  # noqa: F401


@pytest.mark.parametrize(
    ("persona", "status"), [("owner", 200), ("technician", 200), ("other", 404), ("outsider", 404)]
)
def test_adding_files_and_specimens(world, specimens, persona: str, status: int) -> None:  # noqa: F811
    public_id = _dataset(world.owner, specimens, specimens=[]).json()["public_id"]
    who = getattr(world, persona)
    files = who.post(
        f"/api/v1/omics/datasets/{public_id}/files", json=[{"uri": "s3://omics/extra.cram", "checksum": SHA}]
    )
    assert files.status_code == status
    linked = who.post(f"/api/v1/omics/datasets/{public_id}/specimens", json=[{"specimen": specimens[3]}])
    assert linked.status_code == status
    if status == 200:
        assert [s["sample_name"] for s in linked.json()["specimens"]] == [specimens[3]]


def test_a_repeated_file_and_an_unknown_specimen_are_named(world, specimens) -> None:  # noqa: F811
    public_id = _dataset(world.owner, specimens).json()["public_id"]
    again = world.owner.post(
        f"/api/v1/omics/datasets/{public_id}/files", json=[{"uri": "s3://omics/lung/cohort.vcf.gz", "checksum": SHA}]
    )
    assert again.status_code == 422 and again.json()["detail"][0]["loc"] == [0, "uri"]
    unknown = world.owner.post(f"/api/v1/omics/datasets/{public_id}/specimens", json=[{"specimen": "NOPE"}])
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == [0, "specimen"]


def test_anonymous_callers_change_nothing(client, world, specimens) -> None:  # noqa: F811
    public_id = _dataset(world.owner, specimens).json()["public_id"]
    assert client.post(f"/api/v1/omics/datasets/{public_id}/files", json=[]).status_code == 401
    assert client.get("/api/v1/omics/coverage").status_code == 401
