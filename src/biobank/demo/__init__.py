"""A synthetic demonstration consortium: `biobank demo`."""
