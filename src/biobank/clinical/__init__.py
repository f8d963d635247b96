"""Clinical data: diagnoses, observations, treatments and outcomes; imports with mappings; data quality."""
