"""Omics pages: list with coverage, registration form, dataset page with the VCF check."""

from __future__ import annotations

from tests.omics.test_omics import SHA, _vcf, specimens  # noqa: F401


def test_register_and_check_a_vcf_in_the_browser(web, specimens) -> None:  # noqa: F811
    user = web("tech")
    assert user.get("/omics").status_code == 200
    saved = user.post(
        "/omics",
        {
            "biobank": "BBA",
            "kind": "WES",
            "title": "Exomes",
            "platform": "NovaSeq",
            "files": f"s3://omics/exomes.vcf.gz {SHA} 1000 VCF",
            "specimens": specimens[0],
        },
    )
    assert saved.status_code == 303
    url = saved.headers["location"]
    page = user.get(url)
    assert "Exomes" in page.text and specimens[0] in page.text
    checked = user.client.post(
        url + "/vcf", data={"csrf_token": user.csrf}, files={"file": ("x.vcf", _vcf(specimens[:2]))}
    )
    assert checked.status_code == 200 and "VCF checked" in checked.text
    refused = user.client.post(
        url + "/vcf", data={"csrf_token": user.csrf}, files={"file": ("x.vcf", _vcf(["NOBODY"]))}
    )
    assert refused.status_code == 422 and "NOBODY" in refused.text


def test_a_bad_registration_shows_its_errors(web, specimens) -> None:  # noqa: F811
    user = web("owner")
    page = user.post(
        "/omics", {"biobank": "BBA", "kind": "WGS", "title": "X", "platform": "Y", "files": "s3://a/b.vcf md5:zz"}
    )
    assert page.status_code == 422 and "checksum" in page.text


def test_other_biobanks_do_not_see_the_dataset(web, specimens) -> None:  # noqa: F811
    owner = web("owner")
    saved = owner.post("/omics", {"biobank": "BBA", "kind": "WGS", "title": "Genomes", "platform": "NovaSeq"})
    assert web("other").get(saved.headers["location"]).status_code == 404
    assert "Genomes" not in web("outsider").get("/omics").text
