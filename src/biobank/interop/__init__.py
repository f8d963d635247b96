"""Pure mappers to the formats the world reads (MIABIS, BBMRI-ERIC Directory, FHIR R4, DCAT-AP, Beacon v2),
and the thin routes that serve them."""
