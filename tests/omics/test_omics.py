"""Omics datasets: registration with files, QC and specimens; VCF header checks and sample mapping;
coverage per collection; the three personas."""

from __future__ import annotations

import gzip
import json

import pytest
from sqlalchemy.orm import Session

from biobank.institutions import service as institutions
from tests.factories import make_donor, make_specimen

SHA = "sha256:" + "ab" * 32
VCF_HEADER = (
    "##fileformat=VCFv4.2\n"
    "##reference=GRCh38\n"
    "##contig=<ID=chr1,length=248956422>\n"
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Total Depth">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{samples}\n"
    "chr1\t10177\t.\tA\tAC\t100\tPASS\tDP=30\tGT\t{genotypes}\n"
)


@pytest.fixture
def specimens(db: Session, world) -> list[str]:  # type: ignore[no-untyped-def]
    biobank = institutions.get_biobank(db, world.biobank_a)
    collection = institutions.get_collection(db, world.collection_a)
    barcodes = []
    for n in range(4):
        donor = make_donor(db, biobank)
        barcodes.append(make_specimen(db, collection, donor=donor.public_id, barcode=f"WGS-{n:04d}").barcode)
    db.commit()
    return barcodes


def _dataset(persona, refs: list[str], **overrides):  # type: ignore[no-untyped-def]
    body = {
        "biobank": "BBA",
        "kind": "WGS",
        "title": "Lung cohort genomes",
        "platform": "Illumina NovaSeq 6000",
        "reference_genome": "GRCh38",
        "qc_metrics": {"mean_coverage": 32.5, "contamination": 0.01},
        "files": [{"uri": "s3://omics/lung/cohort.vcf.gz", "size_bytes": 123456, "checksum": SHA, "format": "VCF"}],
        "specimens": [{"specimen": s, "qc_metrics": {"coverage": 30}} for s in refs[:2]],
    } | overrides
    return persona.post("/api/v1/omics/datasets", json=body)


@pytest.mark.parametrize(
    ("persona", "status"), [("owner", 201), ("technician", 201), ("other", 422), ("outsider", 422)]
)
def test_registering_a_dataset_is_for_the_biobanks_writers(world, specimens, persona: str, status: int) -> None:
    response = _dataset(getattr(world, persona), specimens)
    assert response.status_code == status, response.text
    if status == 201:
        body = response.json()
        assert body["files"][0]["checksum"] == SHA
        assert [s["sample_name"] for s in body["specimens"]] == specimens[:2]
        assert body["specimens"][0]["qc_metrics"] == {"coverage": 30}


def test_anonymous_callers_see_no_datasets(client, world, specimens) -> None:
    assert client.get("/api/v1/omics/datasets").status_code == 401
    assert client.post("/api/v1/omics/datasets", json={}).status_code == 401


def test_reading_a_dataset_is_for_members(world, specimens) -> None:
    public_id = _dataset(world.owner, specimens).json()["public_id"]
    assert world.technician.get(f"/api/v1/omics/datasets/{public_id}").status_code == 200
    assert world.other.get(f"/api/v1/omics/datasets/{public_id}").status_code == 404
    assert world.outsider.get(f"/api/v1/omics/datasets/{public_id}").status_code == 404
    assert [d["public_id"] for d in world.owner.get("/api/v1/omics/datasets").json()] == [public_id]
    assert world.other.get("/api/v1/omics/datasets").json() == []


def test_bad_files_and_unknown_specimens_are_named(world, specimens) -> None:
    bad = _dataset(world.owner, specimens, files=[{"uri": "cohort.vcf", "checksum": "abc"}])
    assert bad.status_code == 422
    assert {tuple(e["loc"][:3]) for e in bad.json()["detail"]} == {("files", 0, "uri"), ("files", 0, "checksum")}
    unknown = _dataset(world.owner, specimens, specimens=[{"specimen": "NOPE-1"}])
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["specimens", 0, "specimen"]


def _vcf(samples: list[str]) -> bytes:
    return VCF_HEADER.format(samples="\t".join(samples), genotypes="\t".join("0/1" for _ in samples)).encode()


def _attach(persona, public_id: str, content: bytes, **fields):  # type: ignore[no-untyped-def]
    return persona.post(
        f"/api/v1/omics/datasets/{public_id}/vcf", files={"file": ("cohort.vcf.gz", content)}, data=fields
    )


def test_a_vcf_header_is_checked_and_its_samples_mapped_to_specimens(world, specimens) -> None:
    public_id = _dataset(world.owner, specimens, specimens=[]).json()["public_id"]
    response = _attach(world.owner, public_id, gzip.compress(_vcf(specimens[:3])), uri="s3://omics/lung/all.vcf.gz")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["samples"] == specimens[:3] and report["linked"] == 3
    assert report["reference"] == "GRCh38" and report["contigs"] == 1
    dataset = world.owner.get(f"/api/v1/omics/datasets/{public_id}").json()
    assert {s["sample_name"] for s in dataset["specimens"]} == set(specimens[:3])
    mapped = _attach(world.owner, public_id, _vcf(["S1"]), sample_map=json.dumps({"S1": specimens[3]}))
    assert mapped.status_code == 200 and mapped.json()["linked"] == 1


def test_an_unmapped_vcf_sample_names_its_line_and_column(world, specimens) -> None:
    public_id = _dataset(world.owner, specimens, specimens=[]).json()["public_id"]
    response = _attach(world.owner, public_id, _vcf([specimens[0], "PATIENT-X"]))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["vcf", "line", 6, "column", 11] and error["value"] == "PATIENT-X"


def test_a_broken_vcf_header_is_refused(world, specimens) -> None:
    public_id = _dataset(world.owner, specimens, specimens=[]).json()["public_id"]
    no_format = _attach(world.owner, public_id, _vcf(specimens[:1]).replace(b"##fileformat=VCFv4.2\n", b""))
    assert no_format.status_code == 422
    assert no_format.json()["detail"][0]["loc"] == ["vcf", "line", 1]
    bad_header = _attach(world.owner, public_id, _vcf(specimens[:1]).replace(b"\tQUAL\t", b"\tQUALITY\t"))
    assert bad_header.json()["detail"][0]["loc"] == ["vcf", "line", 6, "column", 6]
    duplicate = _attach(world.owner, public_id, _vcf([specimens[0], specimens[0]]))
    assert duplicate.json()["detail"][0]["loc"] == ["vcf", "line", 6, "column", 11]


def test_coverage_per_collection(client, world, specimens) -> None:
    _dataset(world.owner, specimens)
    _dataset(world.owner, specimens, kind="RNA-seq", title="Transcriptomes", specimens=[{"specimen": specimens[0]}])
    rows = {r["collection"]: r for r in world.owner.get("/api/v1/omics/coverage").json()}
    lung = rows[world.collection_a]
    assert (lung["specimens"], lung["with_omics"], lung["share"]) == (4, 2, 0.5)
    assert {layer["kind"]: layer["specimens"] for layer in lung["layers"]} == {"RNA-seq": 1, "WGS": 2}
    assert world.other.get("/api/v1/omics/coverage").json()[0]["collection"] == world.collection_b
    page = client.get(f"/api/v1/catalogue/collections/{world.collection_a}").json()
    assert page["omics_layers"] == ["RNA-seq", "WGS"] and "omics" in page["data_available"]
    assert page["coverage"]["with_omics"] == {"value": None, "display": "< 10", "suppressed": True}
